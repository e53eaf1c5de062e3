"""Pick the readable text and the attachments out of a mail's MIME tree.

``parse.py`` turns flanker's tree (or the stdlib's, ``fallback.py``) into plain ``Part``
values; this module chooses the body the way a mail client shows it: text/plain before
HTML in multipart/alternative, HTML turned into text when that is all there is, every
other leaf an attachment.  A signed mail is its signed content (``signed.py``);
uuencoded blocks in a plain-text body become attachments (``uuencode.py``).  It never
imports flanker and never raises on odd trees.
"""

from __future__ import annotations

import binascii
import quopri
import re
from dataclasses import dataclass, replace

from qmail.core.charsets import decode_text
from qmail.core.html import html_to_text
from qmail.core.mail import Attachment
from qmail.core.signed import is_signature, unarmour
from qmail.core.storable import (
    storable_content_type,
    storable_file_name,
    storable_id,
    storable_text,
)
from qmail.core.uuencode import UU_ENCODINGS, decode_body, lift_files

_BODY_TYPES = ("text/plain", "text/html")

# Extensions for unnamed attachments; a fixed table, not ``mimetypes``, whose answers
# depend on the files of the host it runs on.
_EXTENSIONS = {
    "message/rfc822": ".eml",
    "text/html": ".html",
    "text/calendar": ".ics",
    "text/csv": ".csv",
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/json": ".json",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
}
# Types for files that carry only a name (uuencoded blocks in a text): the table above the
# other way round, and a few names older mail programs sent that way.
_TYPES = {extension: kind for kind, extension in _EXTENSIONS.items()} | {
    ".txt": "text/plain",
    ".jpeg": "image/jpeg",
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
}


@dataclass(frozen=True)
class Part:
    """One node of the MIME tree, with the payload already transfer-decoded."""

    content_type: str
    payload: bytes = b""
    charset: str | None = None
    disposition: str = ""
    filename: str = ""
    content_id: str | None = None
    children: tuple[Part, ...] = ()

    @property
    def is_text(self) -> bool:
        """Readable as text: text/* and the plain-text reports inside bounces."""
        return self.content_type.startswith("text/") or self.content_type in (
            "message/delivery-status",
            "message/disposition-notification",
        )

    @property
    def is_body(self) -> bool:
        """Text a person wrote, as opposed to a file (a text part with a name is a file)."""
        return (
            self.content_type in _BODY_TYPES
            and self.disposition != "attachment"
            and not self.filename
        )


def transfer_decode(encoding: str | None, body: bytes) -> bytes:
    r"""Undo a Content-Transfer-Encoding, forgiving broken base64 padding.

    >>> transfer_decode("base64", b"SGVsbG8"), transfer_decode("Quoted-Printable", b"caf=C3=A9")
    (b'Hello', b'caf\xc3\xa9')
    >>> transfer_decode("8bit", b"as is"), transfer_decode("base64", b"!")
    (b'as is', b'')
    """
    encoding = (encoding or "").strip().lower()
    if encoding == "quoted-printable":
        return quopri.decodestring(body)
    if encoding != "base64":
        return body
    return decode_base64(body)


def decode_base64(raw: bytes, start: int = 0, end: int | None = None) -> bytes:
    r"""The base64 text of ``raw[start:end]`` decoded where it lies; faults forgiven.

    >>> decode_base64(b"Subject: x\r\n\r\nSGVs\r\nbG8=\r\n", 14), decode_base64(b"SGVs=bG8")
    (b'Hello', b'Hello')
    """
    end = len(raw) if end is None else end
    padding = raw.find(b"=", start, end)
    if padding == -1 or not raw[padding:end].strip(b"= \t\r\n"):
        # Padding only at the end: the decoder skips line ends itself, with no copy.
        try:
            return binascii.a2b_base64(memoryview(raw)[start:end])
        except binascii.Error:  # a broken last group: forgiven below
            pass
    return _forgiving_base64(raw[start:end])


def _forgiving_base64(body: bytes) -> bytes:
    r"""Base64 with every stray character and ``=`` dropped, the last group mended.

    >>> _forgiving_base64(b"SGVs=bG8"), _forgiving_base64(b"SGVsbG8hI")
    (b'Hello', b'Hello!')
    """
    letters = re.sub(rb"[^A-Za-z0-9+/]", b"", body)
    letters = letters[: len(letters) - (len(letters) % 4 == 1)]
    try:
        return binascii.a2b_base64(letters + b"=" * (-len(letters) % 4))
    except binascii.Error:  # pragma: no cover - the input is clean base64 by now
        return b""


def transfer_decoded(part: Part, encoding: str | None) -> Part:
    """``part`` with its payload transfer-decoded; a uuencoded file keeps its ``begin`` name.

    A uuencode body that is not one whole block stays as sent (Netscape, Eudora, Pine).
    """
    if (encoding or "").strip().lower() not in UU_ENCODINGS:
        return replace(part, payload=transfer_decode(encoding, part.payload))
    found = decode_body(part.payload)
    if found is None:
        return part
    return replace(part, payload=found.content, filename=part.filename or found.name)


def strip_id(value: str | None) -> str | None:
    """A Content-ID without brackets and white space, ``None`` if empty.

    >>> strip_id(" <logo@example> "), strip_id(""), strip_id(None)
    ('logo@example', None, None)
    """
    value = storable_id(re.sub(r"\s+", "", str(value or "")).strip("<>"))
    return value or None


def read_parts(root: Part) -> tuple[str, bool, tuple[Attachment, ...]]:
    """The body text, whether it came from HTML, and the attachments of a tree."""
    texts: list[tuple[str, bool]] = []
    files: list[Part] = []
    _collect(root, texts, files)
    texts = [(storable_text(piece), html) for piece, html in texts]
    text = "\n\n".join(_edges(piece) for piece, _ in texts if piece.strip())
    from_html = any(html for piece, html in texts if piece.strip())
    attachments = tuple(_attachment(part, number) for number, part in enumerate(files, 1))
    return text, from_html, attachments


def _collect(part: Part, texts: list[tuple[str, bool]], files: list[Part]) -> None:
    """Walk the tree in order: bodies into ``texts``, everything else into ``files``."""
    if part.content_type == "multipart/alternative" and part.children:
        texts.extend(_best_alternative(part.children, files))
    elif part.children:
        for child in part.children:
            if not is_signature(part.content_type, child.content_type):
                _collect(child, texts, files)
    elif part.is_body and part.content_type == "text/plain":
        text, lifted = _plain_text(part)
        texts.append((text, False))
        files.extend(lifted)
    elif part.is_body:
        charset = part.charset or meta_charset(part.payload)
        texts.append((html_to_text(decode_text(part.payload, charset)), True))
    elif part.payload or part.filename:
        files.append(part)


def _best_alternative(children: tuple[Part, ...], files: list[Part]) -> list[tuple[str, bool]]:
    """Plain text if any alternative has some, else the first HTML one with text."""
    choices: list[list[tuple[str, bool]]] = []
    for child in children:
        found: list[tuple[str, bool]] = []
        _collect(child, found, files)
        if any(piece.strip() for piece, _ in found):
            choices.append(found)
    plain = [found for found in choices if not any(html for _, html in found)]
    return (plain or choices or [[]])[0]


def _plain_text(part: Part) -> tuple[str, list[Part]]:
    """The text of a text/plain body, unarmoured, and the uuencoded files lifted out of it."""
    text = decode_text(part.payload, part.charset)
    text = unarmour(text.replace("\r\n", "\n").replace("\r", "\n"))
    text, found = lift_files(text)
    lifted = [
        Part(
            type_of(one.name),
            one.content,
            disposition="attachment",
            filename=one.name,
        )
        for one in found
    ]
    return _edges(text), lifted


def type_of(name: str) -> str:
    """The content type of a file known only by its name, from a fixed table.

    >>> type_of("Report.PDF"), type_of("notes.txt"), type_of("README"), type_of("a.tar.xz")
    ('application/pdf', 'text/plain', 'application/octet-stream', 'application/octet-stream')
    """
    extension = "." + name.lower().rpartition(".")[2] if "." in name else ""
    return _TYPES.get(extension, "application/octet-stream")


def meta_charset(markup: bytes) -> str | None:
    """The charset an HTML document names in its ``<meta>``, for parts that name none.

    >>> meta_charset(b'<head><meta charset="windows-1251">'), meta_charset(b"<p>hi")
    ('windows-1251', None)
    """
    match = re.search(rb"<meta[^>]*charset\s*=\s*[\"']?([\w.:-]+)", markup[:4096], re.I)
    return match.group(1).decode("ascii") if match else None


def _edges(text: str) -> str:
    r"""Drop blank lines at the start and white space at the end; keep the rest as sent.

    >>> _edges("  \n\n  Hello\n-- \nAnn\n\n")
    '  Hello\n-- \nAnn'
    """
    return re.sub(r"\A(?:[ \t]*\n)+", "", text).rstrip()


def _attachment(part: Part, number: int) -> Attachment:
    """An ``Attachment`` for a leaf, named ``attachment-N.ext`` when it has no name."""
    filename = storable_file_name(re.sub(r"[\x00-\x1f\x7f/\\]", "_", part.filename).strip())
    if not filename:
        extension = _EXTENSIONS.get(part.content_type, ".txt" if part.is_text else ".bin")
        filename = f"attachment-{number}{extension}"
    inline = part.content_id is not None and part.disposition != "attachment"
    content_type = storable_content_type(part.content_type)
    return Attachment(filename, content_type, part.payload, part.content_id, inline)
