"""Queueing outbound mail: an ``Outbox`` row in the caller's transaction.

Whatever changes the database and wants to tell someone by mail calls ``enqueue`` in the
same transaction, so the change and its mail commit together or not at all; the worker
(``qmail.outbound.delivery``) delivers later, with retries, so a failing relay never rolls back a
task.  ``Date`` is stamped here, from the caller's clock.

A mail that cannot be built (``enqueue_composed``: an address the standard library will not
write into a header, a name it cannot encode) never undoes the change it announces: its row
is queued already ``failed``, with the reason, and the other recipients get theirs.

A notification's row holds no mail: it names the stencil its readers share
(``OutboxStencil``, written once by ``write_stencil``) and its recipient's own values.
Whoever needs the mail (delivery, listings, routing) reads it through ``mail_bytes`` or
``mail_text``, which fill it in (``qmail.core.stencil.fill``) or give the stored bytes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlmodel import Session

from qmail import models
from qmail.core.compose import body_text
from qmail.core.headers import wire_bytes
from qmail.core.stencil import Stencil, fill, fill_text, personal_from_json, with_files
from qmail.people import Someone

log = logging.getLogger(__name__)


def new_message_id(domain: str, drawn: bytes | None = None) -> str:
    """A fresh Message-ID for a mail we send (without angle brackets): 128 random bits,
    ``drawn`` by the caller (``os.urandom``, for many mails at once) or drawn here."""
    return f"qmail.{(drawn or os.urandom(16)).hex()}@{domain}"


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
    "stencil_id",
    "personal",
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
        "stencil_id": None,
        "personal": None,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "locked_until": None,
        "last_error": "",
        "created_at": now,
        "sent_at": None,
    }


STENCIL_COLUMNS = ("head", "boundary", "text", "html", "files", "mixed", "files_from")


def stencil_row(stencil: Stencil, files_from: int | None = None) -> dict[str, Any]:
    """The columns of an ``OutboxStencil`` row keeping ``stencil``; its files are kept
    by stencil ``files_from`` instead, when given (they are the same files)."""
    return {
        "head": stencil.head,
        "boundary": stencil.boundary.decode("ascii"),
        "text": stencil.text,
        "html": stencil.html,
        "files": b"" if files_from is not None else stencil.files,
        "mixed": stencil.mixed.decode("ascii"),
        "files_from": files_from,
    }


def stencil_of(session: Session, stencil_id: int) -> Stencil:
    """The ``Stencil`` kept as ``OutboxStencil`` ``stencil_id`` (read once per session:
    every reader of a message names the same one)."""
    kept = session.get(models.OutboxStencil, stencil_id)
    assert kept is not None
    stencil = Stencil(
        bytes(kept.head),
        kept.boundary.encode("ascii"),
        kept.text,
        kept.html,
        files=bytes(kept.files),
        mixed=kept.mixed.encode("ascii"),
    )
    if kept.files_from is None:
        return stencil
    files = session.get(models.OutboxStencil, kept.files_from)
    assert files is not None
    return with_files(stencil, bytes(files.files), files.mixed.encode("ascii"))


def mail_bytes(session: Session, row: models.Outbox) -> bytes:
    """The mail of an outbox row as it is sent: its stencil filled in, or its ``raw``."""
    if row.stencil_id is None or row.personal is None:
        return bytes(row.raw)
    return fill(stencil_of(session, row.stencil_id), personal_from_json(row.personal))[0]


def mail_text(session: Session, row: models.Outbox) -> str:
    """The text part of an outbox row's mail, as its recipient got it."""
    kept = session.get(models.OutboxStencil, row.stencil_id) if row.stencil_id else None
    return sent_text(row.text, kept.text if kept else None, row.personal)


def sent_text(text: str, stencil_text: str | None, personal: str | None) -> str:
    """The text of a mail as it was sent, from an outbox row's ``text``, its stencil's
    ``text`` and its ``personal`` values (for reads that join the two tables)."""
    if stencil_text is None or personal is None:
        return text
    return fill_text(stencil_text, personal_from_json(personal))
