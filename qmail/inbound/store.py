"""What inbound mail leaves in the database before it is filed: the raw bytes (kept once
per Message-ID, for replay), held and quarantined mail, and the facts routing needs.
Filing a routed mail into a thread is ``qmail.threads.posting``.

Functions take the ``Session`` first and never commit: the caller owns the transaction
(one per inbound message).  The same statements run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, update
from sqlmodel import Session, col, select

from qmail import db, models
from qmail.core.mail import (
    Envelope,
    Hold,
)
from qmail.core.parse import read_message_id
from qmail.core.storable import storable_text

# --- raw mail ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Spooled:
    """One raw mail to keep: its bytes and its envelope, as the SMTP session gave them."""

    raw: bytes
    message_id: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    received_at: datetime

    @classmethod
    def of(cls, raw: bytes, envelope: Envelope, now: datetime) -> Spooled:
        """``raw`` as it came in with ``envelope``, named by its Message-ID."""
        return cls(raw, read_message_id(raw), envelope.mail_from, envelope.rcpt_tos, now)


@dataclass(frozen=True)
class Kept:
    """Where a spooled mail is: its row, and whether this delivery stored it (not a copy)."""

    raw_mail_id: int
    is_new: bool
    state: str


_KEPT = ("raw", "mail_from", "rcpt_tos", "state", "received_at")


def save_raws(session: Session, mails: Sequence[Spooled]) -> list[Kept]:
    """Store each mail once per Message-ID, in order; several in one transaction.

    A Message-ID already stored (a sender retrying, the same mail delivered to two of our
    addresses, two processes receiving it at once) keeps the first copy: ``is_new`` is
    false and ``state`` tells what became of it.  ``INSERT … ON CONFLICT DO NOTHING`` on
    both databases, so a race with another process needs no retry.
    """
    kept: list[Kept] = []
    connection = session.connection()
    # (built and compiled once: the SMTP server runs it for every mail it accepts)
    keep = db.prepared_insert_or_skip(session, models.RawMail, ("message_id",), _KEPT, "id")
    for mail in mails:
        values = {
            "message_id": mail.message_id,
            "raw": mail.raw,
            "mail_from": storable_text(mail.mail_from)[:998],  # a NUL from MAIL FROM, say
            "rcpt_tos": json.dumps([storable_text(rcpt) for rcpt in mail.rcpt_tos]),
            "state": "pending",
            "received_at": mail.received_at,
        }
        cursor = keep.run(session, values)
        inserted = cursor.fetchone()
        cursor.close()
        if inserted is not None:
            kept.append(Kept(inserted[0], True, "pending"))
            continue
        raw_mail_id, state = connection.execute(
            select(models.RawMail.id, models.RawMail.state).where(
                models.RawMail.message_id == mail.message_id
            )
        ).one()
        kept.append(Kept(raw_mail_id, False, state))
    return kept


def save_raw(
    session: Session,
    raw: bytes,
    message_id: str,
    mail_from: str,
    rcpt_tos: tuple[str, ...],
    now: datetime,
) -> Kept:
    """``save_raws`` for one mail."""
    (kept,) = save_raws(session, [Spooled(raw, message_id, mail_from, rcpt_tos, now)])
    return kept


def claim(session: Session, raw_mail_id: int) -> bool:
    """Take one pending raw mail for this transaction; ``False`` if it is not there to take."""
    return claim_pending(session, 1, [raw_mail_id]) == [raw_mail_id]


def claim_pending(session: Session, limit: int, among: Sequence[int] | None = None) -> list[int]:
    """Take up to ``limit`` pending raw mails, oldest first (only ``among`` these), for
    this transaction.

    The first statement of a processing transaction: the mails move to ``processing``,
    and until that transaction ends nobody else takes them.  If it rolls back (a crash,
    an outage), they are ``pending`` again.  On PostgreSQL rows another worker holds are
    skipped (``SKIP LOCKED``), so any number of workers share the queue; on SQLite the
    claim waits for the one writer and then sees what that writer did.  So a mail is filed
    exactly once, however many workers look at it.
    """
    taken = (
        select(models.RawMail.id)
        .where(models.RawMail.state == "pending")
        .order_by(col(models.RawMail.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if among is not None:
        taken = taken.where(col(models.RawMail.id).in_(among))
    result = session.connection().execute(
        update(models.RawMail)
        .where(col(models.RawMail.id).in_(taken.scalar_subquery()))
        .values(state="processing")
        .returning(col(models.RawMail.id))
    )
    return sorted(raw_mail_id for raw_mail_id in result.scalars() if raw_mail_id is not None)


# Built once (executed with parameters, compiled once): every filed mail runs them.
_READ_RAW = db.Prepared(
    select(
        models.RawMail.message_id,
        models.RawMail.raw,
        models.RawMail.mail_from,
        models.RawMail.rcpt_tos,
    ).where(col(models.RawMail.id) == bindparam("raw_mail_id"))
)
_SET_STATE = db.Prepared(
    update(models.RawMail)
    .where(col(models.RawMail.id) == bindparam("raw_mail_id"))
    .values(state=bindparam("new_state"))
)


@dataclass(frozen=True)
class Raw:
    """A kept mail as filing reads it: its bytes and its envelope."""

    id: int
    message_id: str
    raw: bytes
    mail_from: str
    rcpt_tos: str  # JSON, as stored


def read_raw(session: Session, raw_mail_id: int) -> Raw:
    """The kept mail, read in Core: filing changes only its state (``set_state``)."""
    cursor = _READ_RAW.run(session, {"raw_mail_id": raw_mail_id})
    (row,) = cursor.fetchall()
    cursor.close()
    message_id, raw, mail_from, rcpt_tos = row
    return Raw(raw_mail_id, message_id, bytes(raw), mail_from, rcpt_tos)


def set_state(session: Session, raw_mail_id: int, state: str) -> None:
    _SET_STATE.run(session, {"raw_mail_id": raw_mail_id, "new_state": state}).close()


_TASK_OF = db.Prepared(  # the task of a branch
    select(models.Branch.task_id).where(col(models.Branch.id) == bindparam("branch_id"))
)
_QUARANTINE = insert(models.Quarantine)  # (built once, executed with the row's values)


def quarantine(session: Session, raw_mail_id: int, reason: str, now: datetime) -> None:
    """Keep a mail that failed to process, with the reason, for ``qmail quarantine retry``
    (an entry still open for it, from an earlier failure, is resolved: one open a mail)."""
    set_state(session, raw_mail_id, "quarantined")
    _resolve(session, raw_mail_id, now)
    session.connection().execute(
        _QUARANTINE, {"raw_mail_id": raw_mail_id, "reason": reason, "created_at": now}
    )


def reopen(session: Session, raw_mail_id: int, now: datetime) -> None:
    """Put a quarantined or held mail back in the queue, its open entries resolved, in the
    transaction that then claims and files it: no worker can take it in between (nor file
    it a second time), and if filing fails all of it rolls back."""
    _resolve(session, raw_mail_id, now)
    session.connection().execute(
        update(models.RawMail)
        .where(
            col(models.RawMail.id) == raw_mail_id,
            col(models.RawMail.state).in_(("quarantined", "held")),
        )
        .values(state="pending")
    )


def _resolve(session: Session, raw_mail_id: int, now: datetime) -> None:
    session.connection().execute(
        update(models.Quarantine)
        .where(
            col(models.Quarantine.raw_mail_id) == raw_mail_id,
            col(models.Quarantine.resolved_at).is_(None),
        )
        .values(resolved_at=now)
    )


def hold(session: Session, raw_mail_id: int, held: Hold, now: datetime) -> None:
    """Keep a mail whose sender may not post where it went, and show it to the team.

    It is listed by ``qmail quarantine list`` with the reason, and, when the discussion it
    went to is known, noted on that branch (an event only its team members see).
    """
    set_state(session, raw_mail_id, "held")
    connection = session.connection()
    connection.execute(
        _QUARANTINE,
        {"raw_mail_id": raw_mail_id, "reason": f"held: {held.reason}", "created_at": now},
    )
    found = _TASK_OF.read(session, {"branch_id": held.branch_id}) if held.branch_id else []
    if found:
        ((task_id,),) = found
        connection.execute(
            insert(models.Event).values(
                task_id=task_id,
                branch_id=held.branch_id,
                kind="held",
                detail=held.reason,
                raw_mail_id=raw_mail_id,
                created_at=now,
            )
        )
