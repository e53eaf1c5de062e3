r"""Large bodies set aside while flanker reads a mail's structure, and put back after.

Flanker holds a mail as one ``str`` plus a ``StringIO`` copy of it (four bytes a
character) and copies a part again each time it is asked for its text: a 25 MB mail cost
about 300 MB to parse.  Flanker is only needed for the structure, which lives in header
fields, boundaries and blank lines; the bulk of a large mail is body lines that cannot
be any of these (a base64 attachment: 76 letters a line).  So ``hollow`` replaces each
long run of such lines with one short marker line before flanker sees the mail, and
``Hollowed.restore`` puts the bytes that were sent back into every piece read from it.

A line can be set aside when it cannot start or end a header block, a field or a part:
it is not blank, does not start with white space (a folded field) or ``-`` (a boundary),
and holds no ``:`` (a field).  Flanker's scanner finds exactly the same boundaries,
Content-Type fields and blank lines, in the same order, in the hollowed mail.  A mail
that already contains the marker's word is left whole.  Pure: bytes in, bytes out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Runs shorter than this stay: not worth a marker.
MIN_RUN = 16 * 1024

# A whole line (up to its line end) that can be set aside.
_LINE = rb"[^\s:\-][^:\r\n]*+(?=\r?\n|\Z)"
_RUN = re.compile(rb"^%s(?:\r?\n%s)*+" % (_LINE, _LINE), re.MULTILINE)
_WORD = b"qmailhollow"
_MARKER = re.compile(_WORD + rb"([0-9]+)x")


@dataclass(frozen=True)
class Hollowed:
    """A mail with long runs of body lines replaced by markers, and the way back.

    ``text`` is the hollowed mail; ``runs`` the ``(start, end)`` of each run in ``raw``,
    marker ``N`` standing for ``runs[N]``.
    """

    text: bytes
    raw: bytes
    runs: tuple[tuple[int, int], ...] = ()

    def restore(self, piece: bytes) -> bytes:
        r"""A piece of ``text`` with the lines its markers stand for back in place.

        >>> hollowed = hollow(b"A: 1\r\n\r\n" + b"QUJD\r\n" * 3 + b"--end", min_run=10)
        >>> hollowed.text
        b'A: 1\r\n\r\nqmailhollow0x\r\n--end'
        >>> hollowed.restore(hollowed.text) == hollowed.raw
        True
        """
        if not self.runs:
            return piece
        raw = memoryview(self.raw)
        pieces: list[bytes | memoryview] = []
        position = 0
        for marker in _MARKER.finditer(piece):
            start, end = self.runs[int(marker.group(1))]
            pieces += [piece[position : marker.start()], raw[start:end]]
            position = marker.end()
        if not pieces:
            return piece
        pieces.append(piece[position:])
        return b"".join(pieces)

    def span(self, piece: bytes) -> tuple[int, int] | None:
        r"""Where in ``raw`` the restored ``piece`` lies, when it holds one marker.

        Then the piece need not be restored to be read: ``raw[start:end]`` is it.

        >>> hollowed = hollow(b"A: 1\r\n\r\n" + b"QUJD\r\n" * 3 + b"--end", min_run=10)
        >>> start, end = hollowed.span(b"\r\nqmailhollow0x\r\n")
        >>> hollowed.raw[start:end]
        b'\r\nQUJD\r\nQUJD\r\nQUJD\r\n'
        """
        markers = list(_MARKER.finditer(piece))
        if len(markers) != 1:
            return None
        marker = markers[0]
        run_start, run_end = self.runs[int(marker.group(1))]
        start, end = run_start - marker.start(), run_end + len(piece) - marker.end()
        before, after = piece[: marker.start()], piece[marker.end() :]
        if self.raw[start:run_start] != before or self.raw[run_end:end] != after:
            return None  # not a piece of ``text`` as it was
        return start, end


def hollow(raw: bytes, min_run: int = MIN_RUN) -> Hollowed:
    r"""``raw`` with every run of at least ``min_run`` bytes of body lines set aside.

    >>> hollow(b"A: 1\r\n\r\nshort\r\nbody", min_run=100).text
    b'A: 1\r\n\r\nshort\r\nbody'
    >>> hollow(b"A: 1\r\n\r\nqmailhollow0x\r\n" * 9, min_run=1).runs
    ()
    """
    if len(raw) < min_run or _WORD in raw:
        return Hollowed(raw, raw)
    view = memoryview(raw)
    pieces: list[bytes | memoryview] = []
    runs: list[tuple[int, int]] = []
    position = 0
    for run in _RUN.finditer(raw):
        if run.end() - run.start() < min_run:
            continue
        pieces += [view[position : run.start()], b"%s%dx" % (_WORD, len(runs))]
        runs.append(run.span())
        position = run.end()
    if not runs:
        return Hollowed(raw, raw)
    pieces.append(view[position:])
    return Hollowed(b"".join(pieces), raw, tuple(runs))
