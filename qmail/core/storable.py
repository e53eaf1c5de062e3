r"""Values as every database stores them, so one mail is filed alike on SQLite and PostgreSQL.

SQLite keeps any text at any length; PostgreSQL refuses a NUL character in text and a value
longer than its ``VARCHAR(n)`` column, and no database encodes a lone surrogate.  An insert
that fails there is a mail that can never be filed, or, for the Message-ID the SMTP edge
stores first, a ``451`` the sender retries forever.  So the parse stage hands on only what
fits, made to fit here the same way whatever the database: NUL removed (RFC 5322 allows none
in a message), lone surrogates replaced, names and file names cut to their columns, ids too
long for theirs shortened to a stable form.  The lengths are those of ``qmail.models``; a
test checks that they agree.  Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re

NAME_LENGTH = 200  # Person.name
EMAIL_LENGTH = 320  # Person.email: a 64-octet local part, "@", a 255-octet domain (RFC 5321)
FILE_NAME_LENGTH = 255  # Attachment.filename
CONTENT_TYPE_LENGTH = 255  # Attachment.content_type
# Message-IDs (RawMail, Message, in_reply_to) and Content-IDs: VARCHAR(998).  Counted in
# UTF-8 bytes, not characters, so an id also fits PostgreSQL's 2704-byte btree entries.
ID_BYTES = 998

_SURROGATE = re.compile("[\ud800-\udfff]")
# White space and control characters: never part of an id (folding puts spaces in long ones).
_NOT_IN_ID = re.compile(r"[\s\x00-\x1f\x7f]+")
_HASH_LENGTH = 32


def storable_text(text: str) -> str:
    r"""``text`` without NUL characters and with lone surrogates replaced by U+FFFD.

    >>> storable_text("a\x00b"), storable_text("\ud83dx"), storable_text("\ud83d\ude00")
    ('ab', '\ufffdx', '😀')
    """
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii() and _SURROGATE.search(text):
        # UTF-16 with surrogatepass joins the pairs; each lone half becomes U+FFFD.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def storable_id(value: str) -> str:
    r"""A Message-ID or Content-ID as stored, without white space or control characters.

    An id too long for its column becomes its start, a hash of all of it and its domain.
    The short form depends on the id alone, so a reply naming a long id in ``In-Reply-To``
    finds the message stored under it.

    >>> storable_id("a\x00b@x.test"), storable_id("a b\r\n c@x")
    ('ab@x.test', 'abc@x')
    >>> short = storable_id("a" * 2000 + "@x.test")
    >>> len(short), short[-41:]
    (998, 'a.d36a989d41d7061e751f97f31c4652eb@x.test')
    """
    value = storable_text(_NOT_IN_ID.sub("", value))
    data = value.encode("utf-8")
    if len(data) <= ID_BYTES:
        return value
    digest = hashlib.sha256(data).hexdigest()[:_HASH_LENGTH]
    local, at, domain = value.rpartition("@")
    if not at or len(domain.encode("utf-8")) > ID_BYTES // 2:
        local, domain = value, ""
    tail = f".{digest}{at}{domain}" if domain else f".{digest}"
    return _cut_bytes(local, ID_BYTES - len(tail.encode("utf-8"))) + tail


def storable_name(name: str) -> str:
    """A display name cut to ``NAME_LENGTH`` characters.

    >>> storable_name("Ann"), len(storable_name("N" * 300))
    ('Ann', 200)
    """
    return storable_text(name)[:NAME_LENGTH].rstrip()


def storable_email(email: str) -> bool:
    """Whether an address fits ``Person.email``; a longer one is no address anyone can use.

    >>> storable_email("ann@x.test"), storable_email("a" * 400 + "@x.test")
    (True, False)
    """
    return len(email) <= EMAIL_LENGTH


def storable_file_name(name: str) -> str:
    """A file name cut to ``FILE_NAME_LENGTH`` characters, keeping a short extension.

    >>> name = storable_file_name("r" * 300 + ".pdf")
    >>> len(name), name[-6:]
    (255, 'rr.pdf')
    """
    name = storable_text(name)
    if len(name) <= FILE_NAME_LENGTH:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and 0 < len(extension) <= 16:
        return f"{stem[: FILE_NAME_LENGTH - len(extension) - 1]}.{extension}"
    return name[:FILE_NAME_LENGTH]


def storable_content_type(content_type: str) -> str:
    """A MIME type that fits its column; a longer one is no type anyone knows.

    >>> storable_content_type("image/png"), storable_content_type("x/" + "y" * 300)
    ('image/png', 'application/octet-stream')
    """
    fits = len(content_type) <= CONTENT_TYPE_LENGTH
    return storable_text(content_type) if fits else "application/octet-stream"


def _cut_bytes(text: str, size: int) -> str:
    """The longest start of ``text`` that is at most ``size`` bytes in UTF-8."""
    return text.encode("utf-8")[:size].decode("utf-8", "ignore")
