"""Outbound mail as people may see it: the ``qmail outbox list`` listing and the outbox page.

Mail about a hidden branch is listed on the page only to its members.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from sqlalchemy import exists, or_
from sqlmodel import Session, col, select

from qmail.access import Reader, branch_visible
from qmail.models import Branch, Outbox
from qmail.outbound.outbox import mail_bytes


def outbox_subject(raw: bytes) -> str:
    """The decoded Subject of ``raw``, on one line (for listings)."""
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    return " ".join(str(headers.get("Subject", "")).split())


def list_outbox(
    session: Session,
    state: str | None = None,
    limit: int | None = None,
    reader: Reader | None = None,
) -> list[Outbox]:
    """Outbound mail, newest first, optionally in one ``state``.

    With a ``reader`` (the web page), mail about a hidden branch is listed only to its
    members: a team member outside it must not learn from the outbox that it exists.
    The operator's CLI lists everything.
    """
    query = select(Outbox).order_by(col(Outbox.id).desc()).limit(limit)
    if state:
        query = query.where(Outbox.state == state)
    if reader is not None:
        about_visible = exists(
            select(Branch.id).where(Branch.id == Outbox.branch_id, branch_visible(reader))
        )
        query = query.where(or_(col(Outbox.branch_id).is_(None), about_visible))
    return list(session.exec(query).all())


OUTBOX_SIZE = 200


@dataclass(frozen=True)
class OutboxLine:
    """One outbound mail as the outbox page shows it (without its bytes)."""

    created_at: datetime
    kind: str
    recipient: str
    subject: str
    state: str
    attempts: int
    last_error: str


def outbox_lines(session: Session, person: Reader) -> list[OutboxLine]:
    """The newest outbound mails ``person`` may know of."""
    rows = list_outbox(session, limit=OUTBOX_SIZE, reader=person)
    return [
        OutboxLine(
            row.created_at,
            row.kind,
            row.recipient,
            outbox_subject(mail_bytes(session, row)),
            row.state,
            row.attempts,
            row.last_error,
        )
        for row in rows
    ]
