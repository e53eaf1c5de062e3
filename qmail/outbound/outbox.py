"""Queueing outbound mail: an ``Outbox`` row in the caller's transaction.

Whatever changes the database and wants to tell someone by mail calls ``enqueue`` in the
same transaction, so the change and its mail commit together or not at all; the worker
(``qmail.outbound.delivery``) delivers later, with retries, so a failing relay never rolls back a
task.  ``Date`` is stamped here, from the caller's clock.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlmodel import Session

from qmail import models
from qmail.core.compose import body_text
from qmail.core.headers import POLICY


def new_message_id(domain: str) -> str:
    """A fresh Message-ID for a mail we send (without angle brackets)."""
    return f"qmail.{uuid.uuid4().hex}@{domain}"


def enqueue(
    session: Session,
    message: EmailMessage,
    kind: str,
    recipient: models.Person,
    now: datetime,
    task_id: int | None = None,
    branch_id: int | None = None,
    about_message_id: int | None = None,
) -> models.Outbox:
    """Queue ``message`` for ``recipient``; its Message-ID header names the row."""
    if "Date" not in message:
        message["Date"] = format_datetime(now)
    message_id = str(message["Message-ID"]).strip().strip("<>")
    raw = message.as_bytes(policy=POLICY)
    row = models.Outbox(
        **outbox_row(kind, recipient, message_id, raw, body_text(message), now)
        | {"task_id": task_id, "branch_id": branch_id, "about_message_id": about_message_id}
    )
    session.add(row)
    return row


def outbox_row(
    kind: str, recipient: models.Person, message_id: str, raw: bytes, text: str, now: datetime
) -> dict[str, Any]:
    """The columns of a new ``Outbox`` row (for ``insert`` of many at once), due now."""
    return {
        "kind": kind,
        "task_id": None,
        "branch_id": None,
        "about_message_id": None,
        "person_id": recipient.id,
        "recipient": recipient.email,
        "message_id": message_id,
        "raw": raw,
        "text": text,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "locked_until": None,
        "last_error": "",
        "created_at": now,
        "sent_at": None,
    }
