"""Bringing an existing mailbox in: every message through the same pipeline as SMTP mail.

``qmail import mbox PATH`` and ``qmail import maildir PATH`` read the mailbox with the
stdlib ``mailbox`` module and hand each message's raw bytes to ``pipeline.accept`` as if
it had been sent to the intake address by its From address, oldest first, so replies find
the tasks their In-Reply-To names.  Nobody is notified about old mail.  A message already
imported (same Message-ID) is skipped by the raw store, so an import can be run again
after an interruption.  Nothing here parses or routes: the pipeline does.
"""

from __future__ import annotations

import mailbox
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from qmail.context import Context
from qmail.core.mail import Envelope
from qmail.errors import QmailError
from qmail.inbound import pipeline


@dataclass
class ImportCounts:
    """What became of the imported messages, by outcome state."""

    total: int = 0
    states: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0

    def add(self, outcome: pipeline.Outcome) -> None:
        self.total += 1
        if outcome.duplicate:
            self.duplicates += 1
        else:
            self.states[outcome.state] = self.states.get(outcome.state, 0) + 1


def open_mailbox(kind: str, path: Path) -> mailbox.Mailbox:  # type: ignore[type-arg]
    """The mailbox at ``path``; a clear error when it is not one."""
    if kind == "mbox":
        if not path.is_file():
            raise QmailError(f"not an mbox file: {path}")
        return mailbox.mbox(path, create=False)
    if not (path / "cur").is_dir() and not (path / "new").is_dir():
        raise QmailError(f"not a Maildir (no cur/ or new/): {path}")
    return mailbox.Maildir(path, factory=None, create=False)


def read_mailbox(kind: str, path: Path) -> list[bytes]:
    """Every message's bytes, oldest first (by Date; undated ones keep their place)."""
    box = open_mailbox(kind, path)
    try:
        raws = [_bytes(box, key) for key in box.iterkeys()]
    finally:
        box.close()
    return sorted(raws, key=_date_of)


def _bytes(box: mailbox.Mailbox, key: str) -> bytes:  # type: ignore[type-arg]
    raw = box.get_bytes(key)
    # mbox stores LF line ends; the pipeline stores what it is given, as SMTP would get it.
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _date_of(raw: bytes) -> datetime:
    header = _header(raw, b"date")
    try:
        moment = parsedate_to_datetime(header) if header else None
    except (TypeError, ValueError):
        moment = None
    if moment is None:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _header(raw: bytes, name: bytes) -> str:
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line.lower().startswith(name + b":"):
            return line[len(name) + 1 :].decode("utf-8", "replace").strip()
    return ""


def envelope_for(raw: bytes, intake: str) -> Envelope:
    """As if the message had come to the intake address from its From address."""
    senders = getaddresses([_header(raw, b"from")])
    sender = senders[0][1] if senders else ""
    return Envelope(sender or "import", (intake,))  # "" would read as a bounce


def import_messages(
    context: Context,
    raws: list[bytes],
    progress: Callable[[], None] = lambda: None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ImportCounts:
    """File every message; ``progress`` is called after each one."""
    counts = ImportCounts()
    intake = context.settings.mail.intake_addresses[0]
    for raw in raws:
        envelope = envelope_for(raw, intake)
        counts.add(pipeline.accept(raw, envelope, context, now(), notify=False))
        progress()
    return counts
