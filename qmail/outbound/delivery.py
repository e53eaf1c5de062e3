"""The outbound edge (notify): delivers ``Outbox`` rows through a transport, with retries.

Notifications are ``Outbox`` rows written in the same transaction as the change they
announce, so a failing relay never rolls back a task.  This module only delivers them: it
never composes mail, never decides who is notified and never sends inside a transaction.

One round of ``send_pending``:

1. claim: due ``pending`` rows get a lease (``locked_until = now + lease``), committed
   before anything is sent.  On PostgreSQL the candidates are read ``FOR UPDATE SKIP
   LOCKED``; on every database each row is then taken by a guarded ``UPDATE … WHERE id = ?
   AND (locked_until IS NULL OR locked_until < now)`` whose row count says whether this
   worker won it, so concurrent workers (or threads on SQLite) never hold the same row.
2. send each row's mail (``outbox.mail_bytes``: a notification is filled in from its
   stencil, in the claiming transaction) outside any transaction: ``MaildirTransport``
   (development default) or ``SmtpTransport`` (a relay).
3. record: ``sent``; a temporary failure (4xx, connection refused, timeout) stays
   ``pending`` with ``next_attempt_at = now + backoff(attempts)``; a permanent failure (5xx)
   becomes ``failed`` with ``last_error`` (shown by ``qmail outbox list``), and so does a
   temporary one still failing ``GIVE_UP_AFTER`` after the mail was queued.

The one unavoidable window: if the process dies after the relay accepted a mail and before
``sent`` is committed, the lease expires and a later round sends the mail again.  Maildir
delivery is idempotent (the file name comes from the recipient and Message-ID, so the second
delivery overwrites the first); over SMTP the recipient may get a second copy with the same
Message-ID, which mail clients de-duplicate.  Nothing is lost: a row leaves ``pending`` only
once its outcome is committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiosmtplib
from sqlalchemy import literal_column, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from qmail.config import OutboundSettings, Settings
from qmail.db import session_scope
from qmail.models import Outbox, utcnow
from qmail.outbound.outbox import mail_bytes

log = logging.getLogger(__name__)
T = TypeVar("T")
Leased = TypeVar("Leased", bound=SQLModel)

FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(days=2)
LEASE = timedelta(minutes=5)
BATCH = 50
SMTP_TIMEOUT = 60.0


class DeliveryError(Exception):
    """A transport could not deliver; the message (the relay's reply) becomes ``last_error``."""


class TemporaryDeliveryError(DeliveryError):
    """Worth trying again later: 4xx, connection refused, timeout, relay misconfigured."""


class PermanentDeliveryError(DeliveryError):
    """A retry cannot fix it (5xx about this mail or recipient): the row becomes ``failed``."""


class Transport(Protocol):
    async def send(self, recipient: str, mail_from: str, raw: bytes) -> None:
        """Deliver ``raw`` to ``recipient`` or raise a ``DeliveryError``."""


@dataclass
class Counts:
    """What one round did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.retried + self.failed


def backoff(attempts: int, jitter: float = 0.0) -> timedelta:
    """The wait after the ``attempts``-th failed try: 30 s, doubling, at most an hour.

    ``jitter`` in [0, 1) adds up to 10 %, so workers that failed together (a relay outage)
    do not all retry in the same second.

    >>> [int(backoff(n).total_seconds()) for n in (1, 2, 3, 8, 50)]
    [30, 60, 120, 3600, 3600]
    """
    delay = min(FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 16), LONGEST_RETRY)
    return delay * (1 + 0.1 * jitter)


def bounce_address(settings: Settings) -> str:
    """The envelope sender of our mail: bounces come back to the tracker's domain."""
    return f"bounces@{settings.mail.domain}"


def message_id_of(raw: bytes) -> str:
    """The Message-ID header of ``raw`` (empty when missing)."""
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    return str(headers.get("Message-ID", "")).strip()


class MaildirTransport:
    """Writes each mail as a file under ``<path>/new/`` (development; nothing leaves the host).

    ``mailbox.Maildir.add`` invents a fresh name each time, which would duplicate a mail
    re-delivered after a crash, so the file is named after the recipient and Message-ID and
    written the Maildir way ourselves: into ``tmp/``, then renamed over ``new/<name>``.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    async def send(self, recipient: str, mail_from: str, raw: bytes) -> None:
        try:
            await asyncio.to_thread(self.deliver, recipient, raw)
        except OSError as error:
            raise TemporaryDeliveryError(f"maildir {self.path}: {error}") from error

    def deliver(self, recipient: str, raw: bytes) -> Path:
        """Write ``raw`` to ``new/`` (idempotent per recipient and Message-ID)."""
        for folder in ("tmp", "new", "cur"):
            (self.path / folder).mkdir(parents=True, exist_ok=True)
        name = maildir_name(recipient, raw)
        target = self.path / "new" / name
        seen = next((self.path / "cur").glob(name + ":*"), None)  # a mail client read it
        if seen is not None:
            return seen
        temporary = self.path / "tmp" / f"{name}.{os.getpid()}.{threading.get_ident()}"
        with open(temporary, "wb") as file:
            file.write(raw)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
        return target


def maildir_name(recipient: str, raw: bytes) -> str:
    """A stable file name for one mail to one recipient (no ``:`` or ``/``)."""
    identity = message_id_of(raw).encode() or hashlib.sha256(raw).hexdigest().encode()
    digest = hashlib.sha256(recipient.lower().encode() + b"\n" + identity).hexdigest()
    return f"qmail-{digest[:40]}"


class SmtpTransport:
    """Sends through the configured relay with aiosmtplib, one connection per mail.

    ``starttls = false`` means plain SMTP, not opportunistic TLS: a relay advertising
    STARTTLS with a certificate we cannot verify would otherwise stop all mail.  Mail to an
    internationalised address goes in an SMTPUTF8 session (``needs_smtputf8``); a relay
    without SMTPUTF8 leaves it pending with the reason, like any relay misconfiguration.
    """

    def __init__(self, outbound: OutboundSettings, timeout: float = SMTP_TIMEOUT) -> None:
        self.outbound = outbound
        self.timeout = timeout

    def options(self) -> dict[str, Any]:
        """The connection options passed to ``aiosmtplib.send``."""
        outbound = self.outbound
        login = bool(outbound.username)
        return {
            "hostname": outbound.host,
            "port": outbound.port,
            "start_tls": outbound.starttls,
            "username": outbound.username if login else None,
            "password": outbound.password if login else None,
            "timeout": self.timeout,
        }

    async def send(self, recipient: str, mail_from: str, raw: bytes) -> None:
        options = self.options()
        if needs_smtputf8(recipient, mail_from, raw):
            options["mail_options"] = ["SMTPUTF8"]
        try:
            await aiosmtplib.send(raw, sender=mail_from, recipients=[recipient], **options)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise classify(error) from error


def needs_smtputf8(recipient: str, mail_from: str, raw: bytes) -> bool:
    """Whether a mail can only travel in an SMTPUTF8 session (RFC 6531): an internationalised
    address, or UTF-8 headers (our bodies are always 7bit, so any 8-bit byte is a header's).

    >>> needs_smtputf8("jörg@client.test", "bounces@x.test", b"To: x"), needs_smtputf8(
    ...     "ann@client.test", "bounces@x.test", b"To: ann@client.test")
    (True, False)
    """
    return not (recipient.isascii() and mail_from.isascii() and raw.isascii())


# Refusals about the relay session rather than this mail: a retry after the operator fixes
# the password or the relay succeeds, so they must not fail every queued mail for good.
_SESSION_REFUSALS = (
    aiosmtplib.SMTPAuthenticationError,
    aiosmtplib.SMTPConnectResponseError,
    aiosmtplib.SMTPHeloError,
)


def classify(error: BaseException) -> DeliveryError:
    """An aiosmtplib/socket error as temporary (4xx, network) or permanent (5xx)."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused) and error.recipients:
        error = error.recipients[0]
    if isinstance(error, aiosmtplib.SMTPResponseException):
        text = f"{error.code} {error.message}"
        if isinstance(error, _SESSION_REFUSALS) or not 500 <= error.code < 600:
            return TemporaryDeliveryError(text)
        return PermanentDeliveryError(text)
    return TemporaryDeliveryError(f"{type(error).__name__}: {error}")


def transport_for(settings: Settings) -> Transport:
    """The transport ``outbound.transport`` names."""
    if settings.outbound.transport == "smtp":
        return SmtpTransport(settings.outbound)
    return MaildirTransport(settings.path(settings.outbound.maildir))


def claim_due(session: Session, now: datetime, lease: timedelta, limit: int) -> list[Outbox]:
    """Lease up to ``limit`` due pending rows to this worker, oldest first; commits the claim."""
    return claim_leased(session, Outbox, now, lease, limit)


def claim_mails(
    session: Session, now: datetime, lease: timedelta, limit: int
) -> list[tuple[Outbox, bytes | DeliveryError]]:
    """``claim_due``, and each row's mail as it is sent (or why it cannot be: a bug, which
    must fail that row rather than stall the queue)."""
    claimed: list[tuple[Outbox, bytes | DeliveryError]] = []
    for row in claim_due(session, now, lease, limit):
        try:
            claimed.append((row, mail_bytes(session, row)))
        except Exception as error:
            log.exception("%s to %s: not filled in", row.message_id, row.recipient)
            claimed.append((row, PermanentDeliveryError(f"not filled in: {error!r}")))
    return claimed


def claim_leased(
    session: Session,
    table: type[Leased],
    now: datetime,
    lease: timedelta,
    limit: int,
    *where: Any,
) -> list[Leased]:
    """Lease up to ``limit`` due ``pending`` rows of ``table`` (``Outbox``, or any table with
    its ``state``, ``next_attempt_at`` and ``locked_until`` columns) that also meet
    ``where``, oldest first; commits the claim, so no other worker takes them meanwhile."""
    due = (
        # Written out, not bound: the databases then read by the partial index of pending
        # rows (``ix_outbox_due``), which a parameter's value cannot promise to match.
        col(table.state) == literal_column("'pending'"),  # type: ignore[attr-defined]
        col(table.next_attempt_at) <= now,  # type: ignore[attr-defined]
        or_(col(table.locked_until).is_(None), col(table.locked_until) < now),  # type: ignore[attr-defined]
    )
    candidates = session.exec(
        select(table.id)  # type: ignore[attr-defined]
        .where(*due, *where)
        .order_by(col(table.id))  # type: ignore[attr-defined]
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's write lock serializes
    ).all()
    claimed = []
    connection = session.connection()
    for row_id in candidates:
        taken = connection.execute(
            update(table)
            .where(col(table.id) == row_id, *due)  # type: ignore[attr-defined]
            .values(locked_until=now + lease)
        )
        if taken.rowcount == 1:
            claimed.append(row_id)
    session.commit()
    if not claimed:
        return []
    query = select(table).where(col(table.id).in_(claimed)).order_by(col(table.id))  # type: ignore[attr-defined]
    return list(session.exec(query).all())


def record(
    session: Session, row: Outbox, error: DeliveryError | None, now: datetime, jitter: float = 0.0
) -> str:
    """Store the outcome of one attempt and release the lease; returns the outcome's name."""
    attempts = row.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "locked_until": None}
    if error is None:
        outcome = "sent"
        values.update(state="sent", sent_at=now, last_error="")
    elif isinstance(error, PermanentDeliveryError):
        outcome = "failed"
        values.update(state="failed", last_error=_one_line(error))
    elif now - row.created_at >= GIVE_UP_AFTER:
        outcome = "failed"
        reason = f"gave up after {attempts} attempts over {GIVE_UP_AFTER.days} days"
        values.update(state="failed", last_error=f"{reason}: {_one_line(error)}")
    else:
        outcome = "retried"
        next_attempt = now + backoff(attempts, jitter)
        values.update(next_attempt_at=next_attempt, last_error=_one_line(error))
    session.connection().execute(update(Outbox).where(col(Outbox.id) == row.id).values(**values))
    return outcome


def release(session: Session, rows: list[Outbox]) -> None:
    """Give claimed rows back unsent, for the next round."""
    ids = [row.id for row in rows]
    session.connection().execute(
        update(Outbox).where(col(Outbox.id).in_(ids)).values(locked_until=None)
    )


async def send_pending(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    now_fn: Callable[[], datetime] = utcnow,
    lease: timedelta = LEASE,
    limit: int = BATCH,
    rng: random.Random | None = None,
) -> Counts:
    """One round: claim due rows, send each (no transaction open), record each outcome.

    Rows still unsent when half the lease has passed are released rather than sent late:
    their lease might expire mid-send and another worker would send them too.
    ``rng`` adds jitter to the backoff; without one the schedule is exact (tests).
    """
    claimed_at = now_fn()
    claimed = await asyncio.to_thread(_in_session, engine, claim_mails, claimed_at, lease, limit)
    counts = Counts()
    mail_from = bounce_address(settings)
    for index, (row, raw) in enumerate(claimed):
        if now_fn() >= claimed_at + lease / 2:
            rest = [row for row, _ in claimed[index:]]
            await asyncio.to_thread(_in_session, engine, release, rest)
            break
        error = (
            raw
            if isinstance(raw, DeliveryError)
            else await _attempt(transport, mail_from, row, raw)
        )
        jitter = rng.random() if rng is not None else 0.0
        outcome = await asyncio.to_thread(_in_session, engine, record, row, error, now_fn(), jitter)
        setattr(counts, outcome, getattr(counts, outcome) + 1)
        log.info("%s to %s: %s %s", row.message_id, row.recipient, outcome, error or "")
    return counts


async def _attempt(
    transport: Transport, mail_from: str, row: Outbox, raw: bytes
) -> DeliveryError | None:
    try:
        await transport.send(row.recipient, mail_from, raw)
    except DeliveryError as error:
        return error
    except Exception as error:  # a bug in a transport must not stall the queue
        log.exception("%s to %s: delivery crashed", row.message_id, row.recipient)
        return TemporaryDeliveryError(f"{type(error).__name__}: {error}")
    return None


def _in_session(engine: Engine, work: Callable[..., T], *args: Any) -> T:
    """Run ``work(session, *args)`` in one short transaction (called in a worker thread)."""
    with session_scope(engine) as session:
        return work(session, *args)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
