"""The mail flow on one screen: ingest -> parse -> scrub -> route -> trim -> store -> notify.

(Scrubbing our own tokens out comes right after parsing, so that no later stage can keep
or show one.  Routing comes before trimming because what to trim depends on it: a forward
that opens a task keeps the forwarded mail, and a reply loses exactly the notification it
quotes.)

``accept()`` is the single way in for the SMTP handler, ``qmail import``, ``qmail
quarantine retry`` and the tests.  It stores the raw bytes first and commits, so that
``250`` means "durably kept"; everything after that either posts the mail, holds it (its
sender may not post where it went: kept, shown to the team, and answered with a 5xx that
says what to do instead) or quarantines it with the reason.  Nothing accepted is dropped.
One log line per message, Message-ID first, never a body.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session

from qmail import models
from qmail.context import Context
from qmail.core.addresses import TokenAddress, parse_recipient
from qmail.core.authres import judge_sender
from qmail.core.commands import parse_commands
from qmail.core.known_quotes import remove_known_quotes
from qmail.core.mail import Content, Envelope, Hold, Ignore, NewTask, Recipient, Reject, Trimmed
from qmail.core.parse import parse_mail, read_message_id
from qmail.core.route import is_forward, route_mail, task_number
from qmail.core.secrets import scrub_mail, scrub_secrets
from qmail.core.trim import trim_reply
from qmail.db import session_scope
from qmail.errors import TemporaryFailure
from qmail.inbound import store
from qmail.outbound import notifications
from qmail.threads import posting

log = logging.getLogger(__name__)

RACE_RETRIES = 5


@dataclass(frozen=True)
class Outcome:
    """What became of one inbound mail; ``reject`` is set when the sender gets a 5xx."""

    raw_mail_id: int
    state: str
    task_number: int | None = None
    duplicate: bool = False
    reject: Reject | None = None
    taken_elsewhere: bool = False


def accept(
    raw: bytes, envelope: Envelope, context: Context, now: datetime, notify: bool = True
) -> Outcome:
    """Store ``raw`` durably, then process it; raises ``TemporaryFailure`` on an outage.

    ``notify=False`` files the mail without telling anyone (importing old mail).
    """
    message_id = read_message_id(raw)
    try:
        with session_scope(context.engine) as session:
            raw_mail, is_new = store.save_raw(
                session, raw, message_id, envelope.mail_from, envelope.rcpt_tos, now
            )
            raw_mail_id = raw_mail.id
    except (OperationalError, DBAPIError) as error:
        log.warning("<%s> not stored, asking the sender to retry: %s", message_id, error)
        raise TemporaryFailure("database unavailable") from error
    assert raw_mail_id is not None
    if not is_new:
        log.info("<%s> duplicate of raw mail %s, stored once", message_id, raw_mail_id)
        return Outcome(raw_mail_id, raw_mail.state, duplicate=True)
    return process(raw_mail_id, context, now, notify)


def process(raw_mail_id: int, context: Context, now: datetime, notify: bool = True) -> Outcome:
    """Parse, trim, route and store one raw mail; a crash quarantines it.

    Several ingest processes on one PostgreSQL can race (two first mails from the same new
    address both create the person): the loser's transaction fails on a unique constraint
    and is simply run again, seeing the winner's rows.  The database being unavailable or
    busy is no fault of the mail: it stays ``pending`` and the worker's sweep takes it again.
    """
    try:
        return _process_with_retries(raw_mail_id, context, now, notify)
    except OperationalError as error:
        log.warning("raw mail %s left pending, the database is busy: %s", raw_mail_id, error)
        return Outcome(raw_mail_id, "pending")
    except Exception as error:
        log.exception("raw mail %s quarantined", raw_mail_id)
        reason = f"{type(error).__name__}: {error}"
        try:
            with session_scope(context.engine) as session:
                store.quarantine(session, raw_mail_id, reason, now)
        except Exception:  # the raw mail stays "pending": the worker's sweep retries it
            log.exception("raw mail %s left pending: quarantine not writable", raw_mail_id)
        return Outcome(raw_mail_id, "quarantined")


def _process_with_retries(
    raw_mail_id: int, context: Context, now: datetime, notify: bool
) -> Outcome:
    for attempt in range(1, RACE_RETRIES + 1):
        try:
            with session_scope(context.engine) as session:
                return _process(session, raw_mail_id, context, now, notify)
        except IntegrityError:
            if attempt == RACE_RETRIES:
                raise
            log.info("raw mail %s raced another writer; processing it again", raw_mail_id)
    raise AssertionError("unreachable")


def _process(
    session: Session, raw_mail_id: int, context: Context, now: datetime, notify: bool
) -> Outcome:
    taken = store.claim(session, raw_mail_id)
    raw_mail = session.get(models.RawMail, raw_mail_id)
    assert raw_mail is not None
    if not taken:  # done meanwhile, or being processed elsewhere right now
        return Outcome(raw_mail_id, raw_mail.state, taken_elsewhere=True)
    parsed = parse_mail(raw_mail.raw)
    if isinstance(parsed, Reject):
        return _rejected(raw_mail, parsed)
    # Our tokens quoted back to us (a sign-in link, a reply address) go before anything
    # else sees the mail: nothing below can store, show or send one to someone else.
    mail = scrub_mail(parsed)
    recipients = resolve_recipients(json.loads(raw_mail.rcpt_tos), context)
    number = task_number(mail.subject)
    sender = mail.sender.email if mail.sender else ""
    check = judge_sender(mail.auth_results, context.settings.mail.trusted_authserv_id, sender)
    known = store.known_for(session, mail, recipients, number, context.settings, check)
    route = route_mail(mail, recipients, known, raw_mail.mail_from)
    if isinstance(route, Reject):
        return _rejected(raw_mail, route)
    if isinstance(route, Hold):
        return _held(session, raw_mail, route, now)
    # A forward that opens a task: the forwarded mail is the task, not history to hide.
    forwarded = isinstance(route, NewTask) and is_forward(mail.subject)
    trimmed = Trimmed(mail.text) if forwarded else trim_reply(mail.text)
    sent = [scrub_secrets(text) for text in store.sent_texts(session, mail)]
    trimmed = remove_known_quotes(trimmed, sent)
    rest, commands = parse_commands(trimmed.text)
    content = Content(trimmed, commands, rest)
    incoming = posting.Incoming(mail, content, raw_mail.id)
    posted = posting.apply_route(session, route, incoming, context.settings, now)
    raw_mail.state = "ignored" if isinstance(route, Ignore) else "done"
    if notify and not isinstance(route, Ignore):  # automatic mail never sets anything off
        new_task = isinstance(route, NewTask)
        notifications.after_post(
            session,
            context,
            posted.message_id,
            new_task,
            now,
            posted.refused,
            posted.refused_commands,
        )
    log.info(
        "<%s> %s -> task %s (%s)",
        raw_mail.message_id,
        raw_mail.state,
        posted.task_number,
        type(route).__name__,
    )
    return Outcome(raw_mail_id, raw_mail.state, posted.task_number)


def _held(session: Session, raw_mail: models.RawMail, held: Hold, now: datetime) -> Outcome:
    store.hold(session, raw_mail, held, now)
    log.info("<%s> held: %s", raw_mail.message_id, held.reason)
    assert raw_mail.id is not None
    return Outcome(raw_mail.id, "held", reject=held.reject)


def _rejected(raw_mail: models.RawMail, reject: Reject) -> Outcome:
    raw_mail.state = "rejected"
    log.info("<%s> rejected: %s", raw_mail.message_id, reject.reply)
    assert raw_mail.id is not None
    return Outcome(raw_mail.id, "rejected", reject=reject)


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
