"""The mail flow on one screen: ingest -> parse -> scrub -> route -> trim -> store -> notify.

(Scrubbing our own tokens out comes right after parsing, so that no later stage can keep
or show one.  Routing comes before trimming because what to trim depends on it: a forward
that opens a task keeps the forwarded mail, and a reply loses exactly the notification it
quotes.)

Two steps, which may run in different processes.  The SMTP server only keeps the raw
bytes (``qmail.inbound.spool``): ``250`` means "durably kept".  ``process_pending`` then
files kept mail in batches, several mails per transaction, claimed so that however many
workers run, each mail is filed exactly once.  Every mail ends posted, ignored
(automatic mail), held (its sender may not post where it went: kept and shown to the
team, never bounced by us) or quarantined with the reason.  Nothing accepted is dropped.
``accept()`` does both steps at once, for ``qmail import`` and the tests.  One log line
per message, Message-ID first, never a body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session, col

from qmail import models
from qmail.context import Context
from qmail.core.addresses import TokenAddress, parse_recipient
from qmail.core.authres import judge_sender
from qmail.core.commands import parse_commands
from qmail.core.known_quotes import remove_known_quotes
from qmail.core.mail import (
    Content,
    Envelope,
    Hold,
    Ignore,
    Mail,
    NewTask,
    Recipient,
    Reject,
    Trimmed,
)
from qmail.core.parse import parse_mail
from qmail.core.route import is_forward, route_mail, task_number
from qmail.core.secrets import scrub_mail, scrub_secrets
from qmail.core.trim import trim_reply
from qmail.db import session_scope
from qmail.errors import TemporaryFailure
from qmail.inbound import facts, store
from qmail.outbound import notifications
from qmail.people import find_person
from qmail.threads import posting

log = logging.getLogger(__name__)

RACE_RETRIES = 5
BATCH = 50  # mails filed per transaction


@dataclass(frozen=True)
class Outcome:
    """What became of one inbound mail; ``reject`` is what a sender would have been told."""

    raw_mail_id: int
    state: str
    task_number: int | None = None
    duplicate: bool = False
    reject: Reject | None = None
    taken_elsewhere: bool = False


def accept(
    raw: bytes, envelope: Envelope, context: Context, now: datetime, notify: bool = True
) -> Outcome:
    """Store ``raw`` durably, then file it; raises ``TemporaryFailure`` on an outage.

    ``notify=False`` files the mail without telling anyone (importing old mail).
    """
    mail = store.Spooled.of(raw, envelope, now)
    (kept,) = keep([mail], context)
    if not kept.is_new:
        log.info("<%s> duplicate of raw mail %s, stored once", mail.message_id, kept.raw_mail_id)
        return Outcome(kept.raw_mail_id, kept.state, duplicate=True)
    return process(kept.raw_mail_id, context, now, notify)


def keep(mails: list[store.Spooled], context: Context) -> list[store.Kept]:
    """Commit the raw mails in one transaction; ``TemporaryFailure`` if the database fails."""
    try:
        with context.turns.urgent(), session_scope(context.engine) as session:
            return store.save_raws(session, mails)
    except (OperationalError, DBAPIError) as error:
        ids = ", ".join(f"<{mail.message_id}>" for mail in mails)
        log.warning("%s not stored, asking the sender to retry: %s", ids, error)
        raise TemporaryFailure("database unavailable") from error


def process_pending(
    context: Context,
    now: datetime,
    limit: int = BATCH,
    notify: bool = True,
    among: Sequence[int] | None = None,
) -> list[Outcome]:
    """File up to ``limit`` pending mails, oldest first, in one transaction.

    One that fails is quarantined and the others are filed all the same: the batch is
    filed without a savepoint per mail (two statements and the session's bookkeeping for
    each), and should a mail fail, the transaction is rolled back and the batch filed
    again, each mail in a savepoint, the one that failed quarantined without being filed
    again.  One that raced another process (two first mails from the same new address
    both creating the person, on PostgreSQL) is filed again on its own, seeing the
    winner's rows.  The database being unavailable or busy is no fault of the mails: the
    transaction rolls back and they stay ``pending`` for the next round.  ``among``: only
    these mails (an import files what it kept, not what the SMTP server keeps meanwhile).
    """
    context.turns.after_urgent()  # the SMTP server's commit first: 250s wait on it
    batch = _Batch(context, now, notify)
    try:
        try:
            with session_scope(context.engine) as session:
                batch.claimed = store.claim_pending(session, limit, among)
                batch.file(session)
        except _Failed as failed:  # rolled back: again, each mail in a savepoint
            batch.failed = failed
            with session_scope(context.engine) as session:
                claimed = store.claim_pending(session, len(batch.claimed), batch.claimed)
                batch.file_each(session, claimed)
    except OperationalError as error:
        log.warning("pending mail left for later, the database is busy: %s", error)
        return []
    raced = batch.raced
    return batch.outcomes + [process(raw_mail_id, context, now, notify) for raw_mail_id in raced]


class _Failed(Exception):
    """A mail of a batch filed without savepoints failed: ``error`` is why."""

    def __init__(self, raw_mail_id: int, error: Exception) -> None:
        super().__init__(raw_mail_id, error)
        self.raw_mail_id, self.error = raw_mail_id, error


class _Batch:
    """The mails one ``process_pending`` claimed, and what became of them."""

    def __init__(self, context: Context, now: datetime, notify: bool) -> None:
        self.context, self.now, self.notify = context, now, notify
        self.claimed: list[int] = []
        self.failed: _Failed | None = None
        self.outcomes: list[Outcome] = []
        self.raced: list[int] = []

    def file(self, session: Session) -> None:
        """File every claimed mail; ``_Failed`` (the transaction to roll back) if one fails."""
        for raw_mail_id in self.claimed:
            try:
                outcome = _file(session, raw_mail_id, self.context, self.now, self.notify)
                session.flush()  # (what the mail changed in the ORM fails here, not later)
            except OperationalError:
                raise
            except Exception as error:
                raise _Failed(raw_mail_id, error) from error
            self.outcomes.append(outcome)

    def file_each(self, session: Session, claimed: list[int]) -> None:
        """File the mails each in a savepoint: one that fails is quarantined alone."""
        self.outcomes = []
        for raw_mail_id in claimed:
            try:
                if self.failed is not None and raw_mail_id == self.failed.raw_mail_id:
                    raise self.failed.error
                with session.begin_nested():
                    self.outcomes.append(
                        _file(session, raw_mail_id, self.context, self.now, self.notify)
                    )
            except IntegrityError:
                session.expunge_all()  # (rows kept by ``db.attach`` were rolled back too)
                _release(session, raw_mail_id)
                self.raced.append(raw_mail_id)
            except OperationalError:
                raise
            except Exception as error:
                session.expunge_all()
                self.outcomes.append(_quarantined(session, raw_mail_id, error, self.now))


def file_kept(
    context: Context, raw_mail_ids: Sequence[int], now: datetime, notify: bool = True
) -> list[Outcome]:
    """File these kept mails, ``BATCH`` per transaction (left pending: a busy database)."""
    outcomes: list[Outcome] = []
    for start in range(0, len(raw_mail_ids), BATCH):
        batch = raw_mail_ids[start : start + BATCH]
        outcomes += process_pending(context, now, len(batch), notify, batch)
    return outcomes


def process(
    raw_mail_id: int, context: Context, now: datetime, notify: bool = True, retry: bool = False
) -> Outcome:
    """File one pending raw mail in its own transaction; a crash quarantines it.

    A race with another writer (a unique constraint) is run again, up to ``RACE_RETRIES``
    times.  The database being unavailable or busy leaves it as it was (``pending``).
    ``retry``: the mail is quarantined or held, and goes back to the queue in the same
    transaction that files it (``store.reopen``; ``qmail quarantine retry``).
    """
    try:
        return _process_with_retries(raw_mail_id, context, now, notify, retry)
    except OperationalError as error:
        log.warning("raw mail %s left as it was, the database is busy: %s", raw_mail_id, error)
        return Outcome(raw_mail_id, "pending")
    except Exception as error:
        try:
            with session_scope(context.engine) as session:
                return _quarantined(session, raw_mail_id, error, now)
        except Exception:  # the raw mail stays "pending": the worker takes it again
            log.exception("raw mail %s left pending: quarantine not writable", raw_mail_id)
        return Outcome(raw_mail_id, "quarantined")


def _process_with_retries(
    raw_mail_id: int, context: Context, now: datetime, notify: bool, retry: bool
) -> Outcome:
    for attempt in range(1, RACE_RETRIES + 1):
        try:
            with session_scope(context.engine) as session:
                if retry:
                    store.reopen(session, raw_mail_id, now)
                if not store.claim(session, raw_mail_id):  # filed meanwhile, or being filed
                    raw_mail = session.get(models.RawMail, raw_mail_id)
                    assert raw_mail is not None
                    return Outcome(raw_mail_id, raw_mail.state, taken_elsewhere=True)
                return _file(session, raw_mail_id, context, now, notify)
        except IntegrityError:
            if attempt == RACE_RETRIES:
                raise
            log.info("raw mail %s raced another writer; processing it again", raw_mail_id)
    raise AssertionError("unreachable")


def _release(session: Session, raw_mail_id: int) -> None:
    session.connection().execute(
        update(models.RawMail).where(col(models.RawMail.id) == raw_mail_id).values(state="pending")
    )


def _quarantined(session: Session, raw_mail_id: int, error: Exception, now: datetime) -> Outcome:
    log.error("raw mail %s quarantined", raw_mail_id, exc_info=error)
    store.quarantine(session, raw_mail_id, f"{type(error).__name__}: {error}", now)
    return Outcome(raw_mail_id, "quarantined")


def _file(
    session: Session, raw_mail_id: int, context: Context, now: datetime, notify: bool
) -> Outcome:
    """Parse, scrub, route, trim, post and notify one claimed raw mail."""
    raw_mail = store.read_raw(session, raw_mail_id)
    parsed = parse_mail(raw_mail.raw)
    if isinstance(parsed, Reject):
        return _refused(session, raw_mail, parsed, now)
    # Our tokens quoted back to us (a sign-in link, a reply address) go before anything
    # else sees the mail: nothing below can store, show or send one to someone else.
    mail = scrub_mail(parsed)
    recipients = resolve_recipients(json.loads(raw_mail.rcpt_tos), context)
    number = task_number(mail.subject)
    sender = find_person(session, mail.sender.email) if mail.sender else None
    check = judge_sender(mail.auth_results, context.settings.mail.trusted_authserv_id, _email(mail))
    known = facts.known_for(session, mail, recipients, number, context.settings, check, sender)
    route = route_mail(mail, recipients, known, raw_mail.mail_from)
    if isinstance(route, Reject):
        return _refused(session, raw_mail, route, now)
    if isinstance(route, Hold):
        return _held(session, raw_mail, route, now)
    # A forward that opens a task: the forwarded mail is the task, not history to hide.
    forwarded = isinstance(route, NewTask) and is_forward(mail.subject)
    trimmed = Trimmed(mail.text) if forwarded else trim_reply(mail.text)
    sent = [scrub_secrets(text) for text in facts.sent_texts(session, mail)]
    trimmed = remove_known_quotes(trimmed, sent)
    rest, commands = parse_commands(trimmed.text)
    content = Content(trimmed, commands, rest)
    incoming = posting.Incoming(mail, content, raw_mail.id, sender)
    posted = posting.apply_route(session, route, incoming, context.settings, now)
    state = "ignored" if isinstance(route, Ignore) else "done"
    store.set_state(session, raw_mail.id, state)
    if notify and not isinstance(route, Ignore):  # automatic mail never sets anything off
        new_task = isinstance(route, NewTask)
        notifications.after_post(
            session,
            context,
            posted.message,
            new_task,
            now,
            posted.refused,
            posted.refused_commands,
        )
    log.info(
        "<%s> %s -> task %s (%s)",
        raw_mail.message_id,
        state,
        posted.task_number,
        type(route).__name__,
    )
    return Outcome(raw_mail_id, state, posted.task_number)


def _email(mail: Mail) -> str:
    return mail.sender.email if mail.sender else ""


def _held(session: Session, raw_mail: store.Raw, held: Hold, now: datetime) -> Outcome:
    store.hold(session, raw_mail.id, held, now)
    log.info("<%s> held: %s", raw_mail.message_id, held.reason)
    return Outcome(raw_mail.id, "held", reject=held.reject)


def _refused(session: Session, raw_mail: store.Raw, reject: Reject, now: datetime) -> Outcome:
    """Mail we cannot file (unreadable, or for no discussion that exists): it was already
    answered 250, so it is quarantined with what a sender would have been told."""
    store.quarantine(session, raw_mail.id, f"refused: {reject.reply}", now)
    log.info("<%s> quarantined: %s", raw_mail.message_id, reject.reply)
    return Outcome(raw_mail.id, "quarantined", reject=reject)


def resolve_recipients(rcpt_tos: list[str], context: Context) -> tuple[Recipient, ...]:
    """Our envelope recipients as routing values; tokens verified, others dropped."""
    recipients = (recipient_for(address, context) for address in rcpt_tos)
    return tuple(recipient for recipient in recipients if recipient is not None)


def recipient_for(address: str, context: Context) -> Recipient | None:
    """What ``address`` means to us: an intake, a verified reply target, or ``None``."""
    mail = context.settings.mail
    parsed = parse_recipient(address, mail.domain, mail.intake_addresses)
    if isinstance(parsed, TokenAddress):
        return context.tokens.read(parsed.token)
    return parsed
