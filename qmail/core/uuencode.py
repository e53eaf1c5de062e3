r"""uuencoded files: the ``begin 644 name`` ... ``end`` blocks of older mail programs.

Netscape, Eudora and Pine sent attachments as ``Content-Transfer-Encoding: x-uuencode``
(or ``uuencode``, ``x-uue``); Outlook and older clients put uuencoded blocks straight into a
plain-text body.  ``find_files`` finds the whole blocks in a list of lines, ``lift_files``
takes them out of a text and ``decode_body`` undoes the transfer encoding of a part.  A
block is only taken when every line up to its ``end`` decodes: a broken one stays where it
was, so nothing is lost.  ``binascii.a2b_uu`` decodes the lines; pure, never raises.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

UU_ENCODINGS = frozenset({"x-uuencode", "uuencode", "x-uue", "uue"})

# "begin", the octal Unix mode, the file name (which may hold spaces).
_BEGIN = re.compile(r"begin ([0-7]{3,4}) +(\S(?:.*\S)?)\s*")
_END = re.compile(r"end\s*")
# A uuencoded line: characters from space to backtick only.
_LINE = re.compile(r"[ -`]*")


@dataclass(frozen=True)
class UuFile:
    """One decoded block: the name and mode of its ``begin`` line and where it stood."""

    name: str
    mode: int
    content: bytes
    first: int
    last: int


def decode_line(line: str) -> bytes | None:
    """The bytes of one uuencoded line, ``None`` when it is not one.

    An empty line is the empty line whose trailing space a mail server stripped.

    >>> decode_line("#86)C"), decode_line("`"), decode_line(""), decode_line("Mary had a lamb")
    (b'abc', b'', b'', None)
    """
    line = line.rstrip("\r\n")
    if not line.strip():
        return b""
    if not _LINE.fullmatch(line):
        return None
    try:
        return binascii.a2b_uu(line)
    except binascii.Error:
        return None


def find_files(lines: Sequence[str]) -> list[UuFile]:
    """The whole uuencoded blocks in ``lines``, in order.

    >>> [(f.name, f.mode, f.content, f.first, f.last)
    ...  for f in find_files(["hi", "begin 644 a b.txt", "#86)C", "`", "end", "bye"])]
    [('a b.txt', 420, b'abc', 1, 4)]
    >>> find_files(["begin 644 cut.txt", "#86)C"]), find_files(["begin 644 x", "no", "end"])
    ([], [])
    """
    files = []
    index = 0
    while index < len(lines):
        found = _read_block(lines, index)
        if found is None:
            index += 1
        else:
            files.append(found)
            index = found.last + 1
    return files


def _read_block(lines: Sequence[str], first: int) -> UuFile | None:
    """The block whose ``begin`` line is ``lines[first]``, if it decodes up to its ``end``."""
    begin = _BEGIN.fullmatch(lines[first])
    if begin is None:
        return None
    chunks: list[bytes] = []
    for number in range(first + 1, len(lines)):
        if _END.fullmatch(lines[number]):
            mode = int(begin.group(1), 8)
            return UuFile(begin.group(2), mode, b"".join(chunks), first, number)
        chunk = decode_line(lines[number])
        if chunk is None:
            return None
        chunks.append(chunk)
    return None


def lift_files(text: str) -> tuple[str, tuple[UuFile, ...]]:
    r"""``text`` without its uuencoded blocks, and the files they held.

    The blank line that set a block apart from the text goes with it.

    >>> lift_files("See file.\n\nbegin 600 a.txt\n#86)C\n`\nend\n\nBye")
    ('See file.\n\nBye', (UuFile(name='a.txt', mode=384, content=b'abc', first=2, last=5),))
    """
    if "begin " not in text:
        return text, ()
    lines = text.split("\n")
    files = find_files(lines)
    kept: list[str] = []
    position = 0
    for found in files:
        kept.extend(lines[position : found.first])
        position = found.last + 1
        after = lines[position] if position < len(lines) else ""
        if kept and not kept[-1].strip() and not after.strip():
            position += 1
    kept.extend(lines[position:])
    return "\n".join(kept), tuple(files)


def decode_body(body: bytes) -> UuFile | None:
    r"""The file in a part sent with a uuencode transfer encoding: its one whole block.

    ``None`` when the body holds no block or more than one: then it is kept as sent.

    >>> decode_body(b"begin 644 a.txt\r\n#86)C\r\n`\r\nend\r\n").content
    b'abc'
    >>> decode_body(b"SGVsbG8=") is None
    True
    """
    files = find_files(body.decode("latin-1").split("\n"))
    return files[0] if len(files) == 1 else None
