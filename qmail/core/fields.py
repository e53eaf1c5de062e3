r"""Header fields read from raw bytes: of a mail, of a MIME part, and the parameters in them.

Flanker and the standard library each read headers their own way, and both stumble over
what real mail programs write (a quoted RFC 2231 value, a Latin-1 file name percent-encoded
as UTF-8); so the fields and the file name of every part are read here, from the bytes that
were sent, the same way whichever parser found the part.  Pure: never raises on bad input.
"""

from __future__ import annotations

import email.utils
import re
import urllib.parse
from collections.abc import Iterator

from qmail.core.charsets import decode_text, decode_words

Fields = list[tuple[str, str]]

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_NEWLINE = re.compile(rb"\r?\n")
# RFC 5322 field names: printable ASCII except the colon.
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:(.*)", re.DOTALL)
# One parameter: a name, "=", then a quoted string (with backslash escapes) or a token.
_PARAMETER = re.compile(r'\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)', re.DOTALL)
# What an RFC 2231 extended value starts with: charset'language'.
_EXTENDED = re.compile(r"([\w.:-]+)'[\w-]*'")


def split_head(raw: bytes) -> tuple[bytes, bytes]:
    r"""Split a message or part into its header block and its body.

    >>> split_head(b"A: 1\r\nB: 2\r\n\r\nbody\r\n"), split_head(b"\r\nno headers")
    ((b'A: 1\r\nB: 2', b'body\r\n'), (b'', b'no headers'))
    """
    if raw.startswith((b"\r\n", b"\n")):
        return b"", raw.split(b"\n", 1)[1]
    match = _BLANK_LINE.search(raw)
    if match is None:
        return raw, b""
    return raw[: match.start()], raw[match.end() :]


def head_of(raw: bytes) -> bytes:
    r"""The header block of ``raw``, as ``split_head`` gives it, without copying the body.

    >>> head_of(b"A: 1\r\n\r\nbody"), head_of(b"\nno headers"), head_of(b"A: 1")
    (b'A: 1', b'', b'A: 1')
    """
    if raw.startswith((b"\r\n", b"\n")):
        return b""
    match = _BLANK_LINE.search(raw)
    return raw if match is None else raw[: match.start()]


def header_fields(raw: bytes) -> Fields:
    r"""The unfolded header fields of ``raw`` in order; stops at the first non-header line.

    >>> header_fields(b"From x\r\nSubject: a\r\n  b\r\nX-Y:1\r\n\r\nbody")
    [('Subject', 'a  b'), ('X-Y', '1')]
    """
    fields: list[tuple[str, bytes]] = []
    for number, line in enumerate(_lines(head_of(raw))):
        match = _FIELD.fullmatch(line)
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + line)
        elif match:
            fields.append((match.group(1).decode("ascii"), match.group(2)))
        elif not (number == 0 and line.startswith(b"From ")):  # an mbox separator line
            break
    return [(name, decode_text(value).strip()) for name, value in fields]


def _lines(head: bytes) -> Iterator[bytes]:
    """The lines of ``head`` one by one (a mail with no body can be all header block)."""
    start = 0
    for newline in _NEWLINE.finditer(head):
        yield head[start : newline.start()]
        start = newline.end()
    yield head[start:]


def first(fields: Fields, name: str) -> str | None:
    """The value of the first field called ``name`` (lower case), ``None`` if there is none.

    >>> first([("Subject", "a"), ("subject", "b")], "subject"), first([], "to")
    ('a', None)
    """
    return next((value for key, value in fields if key.lower() == name), None)


def parameters(value: str) -> list[tuple[str, str]]:
    r"""The ``name=value`` parameters after the first ``;`` of a field, names in lower case.

    Quoted values lose their quotes and backslash escapes; an unquoted value runs to the
    next ``;``, so ``boundary=----=_Part`` keeps its ``=``.

    >>> parameters('text/plain; Charset="utf-8"; format=flowed; x="a\\"b;c"; junk')
    [('charset', 'utf-8'), ('format', 'flowed'), ('x', 'a"b;c')]
    """
    found = []
    position = value.find(";")
    while position >= 0:
        match = _PARAMETER.match(value, position + 1)
        if match is not None:
            name, raw = match.group(1).lower(), match.group(2).strip()
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:].removesuffix('"'), flags=re.DOTALL)
            found.append((name, raw))
        position = value.find(";", match.end() if match else position + 1)
    return found


def parameter(value: str, name: str) -> str | None:
    """One parameter of a field, RFC 2231 continuations and charsets decoded; ``None`` if absent.

    Continuations (``name*0*``, ``name*1``) are joined in order; an extended value
    (``name*=charset'lang'%XX``) is decoded from its own charset, also when a mail program
    put it in quotes (``filename*="iso-8859-1''Fr%F6sche.txt"``); a plain value may hold
    RFC 2047 encoded words, as Outlook writes them.

    >>> parameter('attachment; filename*="iso-8859-1' "''" 'Fr%F6sche.txt"', "filename")
    'Frösche.txt'
    >>> parameter("inline; FILENAME*1=e.txt; filename*0*=utf-8''Gr%C3%BC%C3%9F", "filename")
    'Grüße.txt'
    >>> parameter('a; name="=?utf-8?B?0KHRh9GR0YI=?=.pdf"', "name"), parameter("a", "name")
    ('Счёт.pdf', None)
    """
    pieces: list[tuple[int, str, bool]] = []
    plain = None
    for key, raw in parameters(value):
        match = re.fullmatch(rf"{re.escape(name)}(?:\*(\d{{1,3}}))?(\*)?", key)
        if match is None:
            continue
        if match.group(1) is None and match.group(2) is None:
            plain = raw if plain is None else plain
        else:
            pieces.append((int(match.group(1) or 0), raw, match.group(2) is not None))
    if not pieces:
        return None if plain is None else decode_words(plain)
    return _extended(sorted(pieces, key=lambda piece: piece[0]))


def _extended(pieces: list[tuple[int, str, bool]]) -> str:
    """Join RFC 2231 pieces: percent escapes of encoded ones, in the first piece's charset."""
    head = pieces[0][1]
    charset = None
    match = _EXTENDED.match(head) if pieces[0][2] else None
    if match is not None:
        charset = match.group(1)
        pieces[0] = (pieces[0][0], head[match.end() :], True)
    data = b"".join(
        urllib.parse.unquote_to_bytes(text) if encoded else text.encode("utf-8")
        for _, text, encoded in pieces
    )
    return decode_text(data, charset)


def file_name(fields: Fields) -> str:
    """A part's file name: ``filename`` of ``Content-Disposition``, else ``name`` of its type.

    >>> file_name([("Content-Type", 'image/png; name="a.png"'), ("X", "y")])
    'a.png'
    >>> file_name([("Content-Type", "text/plain"), ("Content-Disposition", "inline")])
    ''
    """
    disposition = first(fields, "content-disposition") or ""
    content_type = first(fields, "content-type") or ""
    for found in (
        parameter(disposition, "filename"),
        parameter(content_type, "name"),
        parameter(content_type, "filename"),
    ):
        if found and found.strip():
            return found
    return ""


def fields_of(items: list[tuple[str, str]]) -> Fields:
    r"""Header fields as the stdlib keeps them (folded, raw bytes as surrogates), unfolded.

    >>> fields_of([("Subject", "caf\udce9\r\n au lait")])
    [('Subject', 'café au lait')]
    """
    return [
        (name, decode_text(re.sub(r"\r?\n", "", value).encode("utf-8", "surrogateescape")).strip())
        for name, value in items
    ]


def address_pairs(value: str) -> list[tuple[str, str]]:
    """``(name, address)`` pairs of an address header, RFC 5322 comments read as comments.

    A comment is not part of a display name (``"Jan" <jan@x.nl> (Sales)`` is Jan); the old
    form ``jan@x.nl (Jan Jansen)`` has no display name, so there the comment names the
    person, as RFC 822 mail programs meant it.

    >>> address_pairs('"Jan" (NL) <jan@x.nl> (Sales, Utrecht), piet@x.nl (Piet (de) Vries)')
    [('Jan', 'jan@x.nl'), ('Piet (de) Vries', 'piet@x.nl')]
    >>> address_pairs('"Kees (Inkoop)" <kees@x.nl>, <wim@x.nl> (Wim), Team: a@x.nl (A);')
    [('Kees (Inkoop)', 'kees@x.nl'), ('Wim', 'wim@x.nl'), ('', 'a@x.nl')]
    """
    mailboxes = []
    for text, comments in _uncommented(value):
        text = text.strip()
        bare = re.fullmatch(r"<?([^<>\";:\s]+)>?", text)  # an address without a display name
        if comments and bare:
            name = " ".join(" ".join(comments).split())
            quoted = name.replace("\\", "\\\\").replace('"', '\\"')
            text = f'"{quoted}" <{bare.group(1).strip()}>'
        mailboxes.append(text)
    return email.utils.getaddresses([", ".join(mailboxes)])


def _uncommented(value: str) -> list[tuple[str, list[str]]]:
    """Split an address list at its top-level commas: each piece without comments, and them."""
    pieces: list[tuple[str, list[str]]] = []
    text: list[str] = []
    comments: list[str] = []
    comment: list[str] = []
    depth, quoted, angle, escaped = 0, False, False, False
    for char in value:
        if escaped:
            (comment if depth else text).append(char)
            escaped = False
        elif char == "\\":
            escaped = True
            if not depth:
                text.append(char)
        elif depth:
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth:
                comment.append(char)
            else:
                comments.append("".join(comment))
                comment = []
                text.append(" ")
        elif quoted:
            text.append(char)
            quoted = char != '"'
        elif char == "(":
            depth = 1
        elif char == "," and not angle:
            pieces.append(("".join(text), comments))
            text, comments = [], []
        else:
            text.append(char)
            quoted = char == '"'
            angle = (angle or char == "<") and char != ">"
    if comment:
        comments.append("".join(comment))
    pieces.append(("".join(text), comments))
    return pieces
