"""Reading a mailbox to import, one message at a time, oldest first.

``read_mailbox`` reads an mbox file or a Maildir in two passes and never holds more than
one message: the first pass notes where each message is and its Date (24 bytes a
message: 1 M messages take 24 MB), the second hands the messages over in date order,
each read from disk when it is asked for.  Undated messages come first, in their
mailbox order; so do messages of the same moment.

The mbox is split as the standard library's ``mailbox.mbox`` splits it: every line
starting with ``From `` opens a message, the blank line before it belongs to no message,
and a ``>From`` line stays as it is.  A Maildir's messages are the files in ``cur/``,
then ``new/`` (files whose name starts with a dot are not messages).  Each message comes
with CRLF line ends, as SMTP would hand it over.  Nothing here parses more than a Date.
"""

from __future__ import annotations

import heapq
import os
from array import array
from collections.abc import Iterator
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO

from qmail.errors import QmailError

HEAD_LINES = 1000  # lines of a header block searched for the Date field
UNDATED = float("-inf")


class Messages:
    """The messages of a mailbox, oldest first: ``len()`` of them, read while iterated."""

    def __init__(self, kind: str, path: Path) -> None:
        self.kind, self.path = kind, path
        self._dates = array("d")
        self._starts = array("q")  # mbox: where each message is; Maildir: its name
        self._ends = array("q")
        self._names = bytearray()  # Maildir: every file name, one after the other
        if kind == "mbox":
            with path.open("rb") as file:
                self._index_mbox(file)
        else:
            self._index_maildir()

    def __len__(self) -> int:
        return len(self._dates)

    def __iter__(self) -> Iterator[bytes]:
        if self.kind == "mbox":
            with self.path.open("rb") as file:
                for index in _oldest_first(self._dates):
                    file.seek(self._starts[index])
                    file.readline()  # the "From " line
                    raw = file.read(max(0, self._ends[index] - file.tell()))
                    yield crlf(raw)
        else:
            for index in _oldest_first(self._dates):
                name = self._names[self._starts[index] : self._ends[index]]
                yield crlf((self.path / os.fsdecode(bytes(name))).read_bytes())

    def _index_mbox(self, file: BinaryIO) -> None:
        """One pass over the lines: where messages start and end, and their heads."""
        position, last_was_empty = 0, False
        head: list[bytes] | None = None  # the header lines of the message being read
        for line in file:
            if line.startswith(b"From "):
                if len(self._ends) < len(self._starts):
                    self._ends.append(position - 1 if last_was_empty else position)
                self._starts.append(position)
                head = [] if head is None else _dated(head, self._dates)
                last_was_empty = False
            else:
                if head is not None and _in_head(head):
                    head.append(line)
                last_was_empty = line == b"\n"
            position += len(line)
        if len(self._ends) < len(self._starts):
            self._ends.append(position - 1 if last_was_empty else position)
        if head is not None:
            _dated(head, self._dates)

    def _index_maildir(self) -> None:
        """Every message file's name and Date, ``cur/`` first."""
        for folder in ("cur", "new"):
            if not (self.path / folder).is_dir():
                continue
            with os.scandir(self.path / folder) as entries:
                for entry in entries:
                    if entry.name.startswith(".") or not entry.is_file():
                        continue
                    name = os.fsencode(f"{folder}/{entry.name}")
                    self._starts.append(len(self._names))
                    self._names += name
                    self._ends.append(len(self._names))
                    with open(entry.path, "rb") as file:
                        _dated(_head_lines(file), self._dates)


def read_mailbox(kind: str, path: Path) -> Messages:
    """The messages of the mbox file or Maildir at ``path``; a clear error if it is none."""
    if kind == "mbox" and not path.is_file():
        raise QmailError(f"not an mbox file: {path}")
    if kind != "mbox" and not (path / "cur").is_dir() and not (path / "new").is_dir():
        raise QmailError(f"not a Maildir (no cur/ or new/): {path}")
    return Messages(kind, path)


def crlf(raw: bytes) -> bytes:
    r"""``raw`` with CRLF line ends, as SMTP would hand it over (mbox stores LF).

    >>> crlf(b"A: 1\nB: 2\r\n\nbody")
    b'A: 1\r\nB: 2\r\n\r\nbody'
    """
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _in_head(head: list[bytes]) -> bool:
    """Whether ``line`` still belongs to the header block being collected in ``head``."""
    # The blank line that ends it is kept as its last line.
    return len(head) < HEAD_LINES and not (head and head[-1] in (b"\n", b"\r\n"))


def _head_lines(file: BinaryIO) -> list[bytes]:
    """The header block of a message file, as lines, up to its blank line."""
    head: list[bytes] = []
    for line in file:
        if not _in_head(head):
            break
        head.append(line)
    return head


def _dated(head: list[bytes], dates: array[float]) -> list[bytes]:
    """Note the Date of the message whose header lines are ``head``; a fresh head."""
    dates.append(date_of(b"".join(head)))
    return []


def date_of(head: bytes) -> float:
    r"""The moment a message's Date field names, as a timestamp; ``UNDATED`` without one.

    A date without a zone is taken as UTC.

    >>> date_of(b"Subject: x\r\nDate: Tue, 4 Jun 2024 10:00:00 +0200\r\n\r\n")
    1717488000.0
    >>> date_of(b"Date: soon\n") == date_of(b"Subject: x\n\nDate: Tue, 4 Jun 2024\n") == UNDATED
    True
    """
    for line in crlf(head).split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"date:"):
            value = line[5:].decode("utf-8", "replace").strip()
            try:
                moment = parsedate_to_datetime(value) if value else None
            except (TypeError, ValueError):
                moment = None
            if moment is None:
                return UNDATED
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return UNDATED


def _oldest_first(dates: array[float]) -> Iterator[int]:
    """The positions of ``dates`` in date order, ties in mailbox order.

    A mailbox is mostly in the order mail came in: the messages dated no earlier than all
    before them are in order already; only the others are sorted (a list of those alone),
    and the two runs are merged as they are read.
    """
    late: list[int] = []
    latest = UNDATED
    for index, date in enumerate(dates):
        if date >= latest:
            latest = date
        else:
            late.append(index)
    if not late:
        return iter(range(len(dates)))
    late.sort(key=dates.__getitem__)
    is_late = bytearray(len(dates))
    for index in late:
        is_late[index] = 1
    in_order = (index for index in range(len(dates)) if not is_late[index])
    return heapq.merge(in_order, late, key=lambda index: (dates[index], index))
