"""Bringing an existing mailbox in: every message through the same pipeline as SMTP mail.

``qmail import mbox PATH`` and ``qmail import maildir PATH`` read the mailbox one message
at a time (``mailboxes.py``: a mailbox of any size in flat memory) and hand each
message's raw bytes to the pipeline as if it had been sent to the intake address by its
From address, oldest first, so replies find the tasks their In-Reply-To names: ``CHUNK``
messages kept in one transaction, then filed in batches, before the next are read.
Nobody is notified about old mail.  A message already imported (same Message-ID) is
skipped by the raw store, so an import can be run again after an interruption.  Nothing
here parses or routes: the pipeline does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import getaddresses
from itertools import islice

from qmail.context import Context
from qmail.core.mail import Envelope
from qmail.inbound import pipeline, store
from qmail.inbound.mailboxes import read_mailbox

CHUNK = 200  # messages kept per transaction, and read ahead

__all__ = ["ImportCounts", "envelope_for", "import_messages", "read_mailbox"]


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


def batched(items: Iterable[bytes], size: int) -> Iterable[tuple[bytes, ...]]:
    """``itertools.batched`` (Python 3.12)."""
    it = iter(items)
    while part := tuple(islice(it, size)):
        yield part


def _header(raw: bytes, name: bytes) -> str:
    """The first ``name`` field of ``raw``'s header block, unfolded no further."""
    end = raw.find(b"\r\n\r\n")
    for line in raw[: end if end != -1 else len(raw)].split(b"\r\n"):
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
    raws: Iterable[bytes],
    progress: Callable[[], None] = lambda: None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    chunk: int = CHUNK,
) -> ImportCounts:
    """File every message, ``chunk`` at a time, each chunk before the next is read;
    ``progress`` follows each message."""
    counts = ImportCounts()
    for part in batched(raws, chunk):
        _import(context, list(part), counts, progress, now())
    return counts


def _import(
    context: Context,
    raws: list[bytes],
    counts: ImportCounts,
    progress: Callable[[], None],
    now: datetime,
) -> None:
    intake = context.settings.mail.intake_addresses[0]
    mails = [store.Spooled.of(raw, envelope_for(raw, intake), now) for raw in raws]
    kept = pipeline.keep(mails, context)
    for copy in (one for one in kept if not one.is_new):  # imported before, or twice here
        counts.add(pipeline.Outcome(copy.raw_mail_id, copy.state, duplicate=True))
        progress()
    new = [one.raw_mail_id for one in kept if one.is_new]
    for outcome in pipeline.file_kept(context, new, now, notify=False):
        counts.add(outcome)
        progress()
