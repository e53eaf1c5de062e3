"""Queueing outbound mail: an ``Outbox`` row in the caller's transaction.

Whatever changes the database and wants to tell someone by mail calls ``enqueue`` in the
same transaction, so the change and its mail commit together or not at all; the worker
(``qmail.outbound.delivery``) delivers later, with retries, so a failing relay never rolls back a
task.  ``Date`` is stamped here, from the caller's clock.

A mail that cannot be built (``enqueue_composed``: an address the standard library will not
write into a header, a name it cannot encode) never undoes the change it announces: its row
is queued already ``failed``, with the reason, and the other recipients get theirs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlmodel import Session

from qmail import models
from qmail.core.compose import body_text
from qmail.core.headers import wire_bytes
from qmail.people import Someone

log = logging.getLogger(__name__)


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
    message_id, raw, text = _serialized(message, now)
    ids = (task_id, branch_id, about_message_id)
    row = models.Outbox(**outbox_row(kind, recipient, message_id, now, *ids))
    row.raw, row.text = raw, text
    session.add(row)
    return row


def enqueue_composed(
    session: Session,
    compose: Callable[[], EmailMessage],
    message_id: str,
    kind: str,
    recipient: models.Person,
    now: datetime,
    task_id: int | None = None,
    branch_id: int | None = None,
    about_message_id: int | None = None,
) -> models.Outbox:
    """Queue the mail ``compose()`` builds, or, when it cannot be built, a ``failed`` row.

    ``message_id`` is the Message-ID the mail was to have (without brackets): it names the
    failed row.  Composing is pure, so whatever it raises is about this one mail.
    """
    ids = (task_id, branch_id, about_message_id)
    row = models.Outbox(**outbox_row(kind, recipient, message_id, now, *ids))
    try:
        row.message_id, row.raw, row.text = _serialized(compose(), now)
    except Exception as error:
        row.state = "failed"
        row.last_error = not_composed(error, message_id, recipient.email)
    session.add(row)
    return row


def not_composed(error: Exception, message_id: str, recipient: str) -> str:
    """Why the mail ``message_id`` to ``recipient`` could not be built; logged once."""
    reason = " ".join(f"not composed: {type(error).__name__}: {error}".split())
    log.warning("<%s> to %s: %s", message_id, recipient, reason)
    return reason


def _serialized(message: EmailMessage, now: datetime) -> tuple[str, bytes, str]:
    """The Message-ID, the bytes as sent and the text part of ``message``; stamps ``Date``."""
    if "Date" not in message:
        message["Date"] = format_datetime(now)
    message_id = str(message["Message-ID"]).strip().strip("<>")
    return message_id, wire_bytes(message), body_text(message)


OUTBOX_COLUMNS = (  # what ``outbox_row`` gives
    "kind",
    "task_id",
    "branch_id",
    "about_message_id",
    "person_id",
    "recipient",
    "message_id",
    "raw",
    "text",
    "state",
    "attempts",
    "next_attempt_at",
    "locked_until",
    "last_error",
    "created_at",
    "sent_at",
)


def outbox_row(
    kind: str,
    recipient: Someone,
    message_id: str,
    now: datetime,
    task_id: int | None = None,
    branch_id: int | None = None,
    about_message_id: int | None = None,
) -> dict[str, Any]:
    """The columns of a new ``Outbox`` row, due now, with nothing to send yet (for
    ``insert`` of many at once, or ``models.Outbox(**row)``)."""
    return {
        "kind": kind,
        "task_id": task_id,
        "branch_id": branch_id,
        "about_message_id": about_message_id,
        "person_id": recipient.id,
        "recipient": recipient.email,
        "message_id": message_id,
        "raw": b"",
        "text": "",
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "locked_until": None,
        "last_error": "",
        "created_at": now,
        "sent_at": None,
    }
