"""A notification composed once and filled in for each recipient.

Everyone told about one message gets the same mail but for a few values of their own:
their name in ``To``, their signed reply address, sign-in link, unsubscribe link and
Message-ID, and the notifications they got before (``In-Reply-To``/``References``).
Composing each copy through ``email.message`` costs milliseconds, mostly in header
folding; so the mail is composed once (``compose.notification_parts``) with
``PLACEHOLDERS`` for those values, and ``fill`` writes each recipient's copy by
substitution: the header block as composed, with the placeholders replaced, and the two
body parts encoded (7bit, or quoted-printable when a line is not plain ASCII).  Whoever
reads the result with ``email`` sees the same message as if it had been composed for them
alone.  The files a message carries are encoded once too (``encode_files``): each copy
wraps the same bytes in ``multipart/mixed`` after its two bodies.

The outbox keeps a notification that way: the stencil once, and for each recipient only
their ``Personal`` values (``personal_json``); the copy is filled when it is sent.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import html
import json
import re
from dataclasses import dataclass, replace
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime
from typing import Any

from qmail.core.compose import Acknowledgement, Notification, plain_text, sender_name
from qmail.core.headers import (
    LOOP_HEADER,
    POLICY,
    UTF8_POLICY,
    fold_words,
    mailbox,
    msg_id,
    one_line,
    phrase,
    task_subject,
)
from qmail.core.mail import Address

_HOST = "placeholder.invalid"


@dataclass(frozen=True)
class Personal:
    """What one recipient's copy has of its own (Message-IDs without angle brackets)."""

    recipient: Address
    reply_address: str
    private_address: str | None
    magic_link: str
    unsubscribe_url: str
    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]


PLACEHOLDERS = Personal(
    recipient=Address(f"qmail-to@{_HOST}", ""),
    reply_address=f"qmail-reply@{_HOST}",
    private_address=f"qmail-private@{_HOST}",
    magic_link=f"https://{_HOST}/qmail-link",
    unsubscribe_url=f"https://{_HOST}/qmail-unsubscribe",
    message_id=f"qmail-id@{_HOST}",
    in_reply_to=None,
    references=(),
)

# Fields written afresh for each copy: left out of the composed header block.
_PERSONAL_NAMES = frozenset({"to", "in-reply-to", "references"})
# RFC 5322 dot-atoms, and a display name of plain words: what needs neither quotes nor
# encoding (anything else goes through the standard library).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PLAIN_NAME = re.compile(r"(?:[A-Za-z0-9'-]+(?: [A-Za-z0-9'-]+)*)?")
MAX_LINE = 998  # RFC 5322: longer lines must be encoded
WIDTH = 78  # RFC 5322: lines should be folded to this many characters
# Printable ASCII the standard library writes as it is: a display name it only puts in
# quotes, a text (``Subject``) it leaves alone when it fits on its line.  No quote or
# backslash (it escapes them), no "=?" (read as the start of an RFC 2047 encoded word).
_QUOTABLE = re.compile(r"(?!.*=\?)[ !#-\[\]-~]+")
_WORDS = re.compile(r"(?!.*=\?)[!-~]+(?: [!-~]+)*")
_TOKEN = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")  # RFC 6838 type and subtype names


@dataclass(frozen=True)
class File:
    """A file to carry in the mail, as stored with its message."""

    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Stencil:
    """A mail composed with ``PLACEHOLDERS``: its header block and its two bodies.

    ``files``: the encoded parts of the files it carries (empty for none), which go in a
    ``multipart/mixed`` (boundary ``mixed``) after the bodies.
    """

    head: bytes
    boundary: bytes
    text: str
    html: str
    files: bytes = b""  # the files' body parts, for ``multipart/mixed``
    mixed: bytes = b""  # the ``multipart/mixed`` boundary, when there are files
    fields: bytes = b""  # the head's ``header_block``, without the MIME structure


def make_stencil(
    head: EmailMessage | bytes, text: str, html: str, files: tuple[File, ...] = ()
) -> Stencil:
    """A stencil from ``compose.notification_parts`` made with ``PLACEHOLDERS``.

    Only the headers and the files' part headers go through the standard library (they
    need its encoding and folding); the multipart structure around them is written here.
    ``head`` may be the ``header_block`` of another stencil of the same mail (the team's
    and everybody else's differ only in their bodies): it is folded once.
    """
    fields = head if isinstance(head, bytes) else header_block(head)
    # Boundaries that cannot occur in the bodies: they are made from them (RFC 2046);
    # "=_" never occurs in base64, the files' encoding.
    digest = hashlib.sha256(f"{text}\0{html}".encode("utf-8", "surrogatepass")).hexdigest()
    boundary = f"=_qmail_{digest[:32]}".encode("ascii")
    mixed = f"=_qmail_m{digest[32:63]}".encode("ascii") if files else b""
    outer = (b"multipart/mixed", mixed) if files else (b"multipart/alternative", boundary)
    structure = (
        b"MIME-Version: 1.0\r\nContent-Type: " + outer[0] + b'; boundary="' + outer[1] + b'"\r\n'
    )
    return Stencil(
        fields + structure,
        boundary,
        text,
        html,
        files=encode_files(mixed, files),
        mixed=mixed,
        fields=fields,
    )


def with_files(stencil: Stencil, files: bytes, mixed: bytes) -> Stencil:
    """``stencil`` carrying ``files`` as another stencil of the same mail encoded them.

    The team's stencil and everybody else's carry the same files, kept once; another
    stencil's ``files`` lie between its own ``mixed`` boundaries, and only the boundary
    lines change (RFC 2046: a boundary never occurs
    inside the parts, and base64 has no ``-``).

    >>> made = make_stencil(b"", "t", "h", (File("a.txt", "text/plain", b"A"),))
    >>> other = make_stencil(b"", "t2", "h", (File("a.txt", "text/plain", b"A"),))
    >>> with_files(replace(other, files=b""), made.files, made.mixed) == other
    True
    """
    line, own = b"--" + mixed + b"\r\n", b"--" + stencil.mixed + b"\r\n"
    return replace(stencil, files=files.replace(line, own))


def header_block(head: EmailMessage) -> bytes:
    """The folded fields of ``head`` that every copy shares (not ``To`` and the thread)."""
    return b"".join(
        POLICY.fold_binary(name, value)
        for name, value in head.items()
        if name.lower() not in _PERSONAL_NAMES
    )


def notification_block(n: Notification) -> bytes | None:
    """``header_block(compose.notification_head(n))``, written directly.

    A plain ASCII value that fits its line is written as the standard library would write
    it, without its parsing and folding (which cost a notification more than everything
    else in composing it); a name or subject that needs encoding, quoting or folding goes
    through the standard library, once per value (the same author and task come back).
    ``None`` for what only the standard library writes (an internationalised recipient,
    a team name that is not ASCII): the caller composes through it then.
    """
    message_id = msg_id(n.message_id, n.domain, strict=True)
    verbatim = {
        LOOP_HEADER: one_line(n.loop_marker),
        "List-Id": f"{phrase(f'{n.team_name} task {n.number}')} <task-{n.number}.{n.domain}>",
        "List-Unsubscribe": f"<{one_line(n.unsubscribe_url)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    plain = (
        _PLAIN_ADDRESS.fullmatch(n.reply_address)
        and n.recipient.email.isascii()
        and len(message_id) <= WIDTH - len("Message-ID: ")
        and all(value.isascii() for value in verbatim.values())
    )
    if not plain:
        return None
    lines = [
        _from(sender_name(n), n.reply_address),
        f"Reply-To: {n.reply_address}\r\n".encode("ascii"),
        _subject(task_subject(n.number, n.title)),
        f"Message-ID: {message_id}\r\n".encode("ascii"),
        f"Date: {format_datetime(n.date)}\r\n".encode("ascii") if n.date is not None else b"",
        b"Auto-Submitted: auto-generated\r\n",
        b"X-Auto-Response-Suppress: All\r\n",
        *(
            fold_words(field, one_line(value), WIDTH, "\r\n").encode("ascii")
            for field, value in verbatim.items()
        ),
    ]
    return b"".join(lines)


def acknowledgement_block(a: Acknowledgement) -> bytes | None:
    """``header_block(compose.acknowledgement_head(a))``, written directly.

    As ``notification_block`` writes a notification's; ``None`` for what only the standard
    library writes (an internationalised recipient, a loop marker that is not ASCII).
    """
    loop_marker = one_line(a.loop_marker)
    if not (a.recipient.email.isascii() and loop_marker.isascii()):
        return None
    lines = [
        _mailbox_field("From", one_line(a.team_name), a.reply_address),
        _mailbox_field("Reply-To", "", a.reply_address),
        _subject(task_subject(a.number, a.title)),
        _fold_if_long("Message-ID", msg_id(a.message_id, a.domain, strict=True)),
        f"Date: {format_datetime(a.date)}\r\n".encode("ascii") if a.date is not None else b"",
        b"Auto-Submitted: auto-replied\r\n",
        b"X-Auto-Response-Suppress: All\r\n",
        fold_words(LOOP_HEADER, loop_marker, WIDTH, "\r\n").encode("ascii"),
    ]
    return b"".join(lines)


def _mailbox_field(field: str, name: str, email: str) -> bytes:
    """A field of one name (or none) and one address, as the standard library writes it.

    Written here for a plain name and address that fit on the line, else by the library.
    """
    if _PLAIN_ADDRESS.fullmatch(email) and _PLAIN_NAME.fullmatch(name):
        line = f"{field}: {name} <{email}>" if name else f"{field}: {email}"
        if len(line) <= WIDTH:
            return f"{line}\r\n".encode("ascii")
    return _fold(field, mailbox(name, email))


def _fold_if_long(field: str, value: str) -> bytes:
    line = f"{field}: {value}"
    if value.isascii() and len(line) <= WIDTH:
        return f"{line}\r\n".encode("ascii")
    return _fold(field, value)


def _from(name: str, address: str) -> bytes:
    """``From``: a quoted name and an address, folded as the standard library folds them.

    On one line when they fit; else on the next line when they fit there; else the
    address on a line of its own.  Any other name goes through the standard library.
    """
    if not (_QUOTABLE.fullmatch(name) and len(f'From: "{name}"') < WIDTH):
        return _folded_from(name, address)
    mailbox = f'"{name}" <{address}>'
    if len(f"From: {mailbox}") <= WIDTH:
        line = f"From: {mailbox}\r\n"
    elif len(f" {mailbox}") <= WIDTH:
        line = f"From:\r\n {mailbox}\r\n"
    else:
        line = f'From: "{name}"\r\n <{address}>\r\n'
    return line.encode("ascii")


def _subject(subject: str) -> bytes:
    """``Subject``: as it is when plain and short, else through the standard library."""
    if _WORDS.fullmatch(subject) and len(f"Subject: {subject}") <= WIDTH:
        return f"Subject: {subject}\r\n".encode("ascii")
    return _folded("Subject", subject)


@functools.lru_cache(maxsize=1024)
def _folded_from(name: str, address: str) -> bytes:
    return _fold("From", mailbox(name, address))


@functools.lru_cache(maxsize=1024)
def _folded(field: str, value: str) -> bytes:
    return _fold(field, value)


def _fold(field: str, value: Any) -> bytes:
    """What ``EmailMessage`` and ``header_block`` make of the field: parsed, then folded."""
    return POLICY.fold_binary(field, POLICY.header_store_parse(field, value)[1])


def encode_files(boundary: bytes, files: tuple[File, ...]) -> bytes:
    """The files as body parts (each opened by ``boundary``), in base64, encoded once.

    A content type that is not ``type/subtype`` is sent as ``application/octet-stream``;
    the name goes through the standard library (RFC 2231 for names that are not ASCII).
    """
    parts = []
    for file in files:
        maintype, _, subtype = file.content_type.split(";")[0].strip().lower().partition("/")
        if not (_TOKEN.fullmatch(maintype) and _TOKEN.fullmatch(subtype)):
            maintype, subtype = "application", "octet-stream"
        part = MIMEPart(policy=POLICY)
        part.set_content(
            file.content, maintype, subtype, filename=one_line(file.filename) or "file"
        )
        parts.append(b"--" + boundary + b"\r\n" + part.as_bytes(policy=POLICY) + b"\r\n")
    return b"".join(parts)


def personal_json(personal: Personal) -> str:
    """``personal`` as compact JSON text (an array, in the order of its fields).

    >>> personal_json(PLACEHOLDERS)[:50]
    '["qmail-to@placeholder.invalid","","qmail-reply@pl'
    >>> personal_from_json(personal_json(PLACEHOLDERS)) == PLACEHOLDERS
    True
    """
    p = personal
    values = (
        *(p.recipient.email, p.recipient.name, p.reply_address, p.private_address),
        *(p.magic_link, p.unsubscribe_url, p.message_id, p.in_reply_to, p.references),
    )
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def personal_from_json(text: str) -> Personal:
    """The ``Personal`` values ``personal_json`` wrote."""
    email, name, reply, private, magic, unsubscribe, message_id, parent, ids = json.loads(text)
    return Personal(
        Address(email, name), reply, private, magic, unsubscribe, message_id, parent, tuple(ids)
    )


def fill_head(stencil: Stencil, personal: Personal) -> bytes:
    """One recipient's header block, as ``fill`` begins their copy.

    What fails when a copy cannot be written (an address the standard library will not
    put in a header); the bodies always can be when the stencil's can
    (``fill(stencil, PLACEHOLDERS)``).
    """
    head = stencil.head
    for placeholder, value in (
        (PLACEHOLDERS.reply_address, personal.reply_address),
        (PLACEHOLDERS.unsubscribe_url, one_line(personal.unsubscribe_url)),
        (PLACEHOLDERS.message_id, personal.message_id),
    ):
        head = head.replace(placeholder.encode(), value.encode("ascii"))
    return head + _personal_fields(personal)


def fill_text(text: str, personal: Personal) -> str:
    """The text part of one recipient's copy, as ``fill`` gives it.

    From the stencil's ``text`` alone: to recognise a quote of it in a reply.
    """
    return plain_text(_filled(text, personal, escape=False))


def fill(stencil: Stencil, personal: Personal) -> tuple[bytes, str]:
    """One recipient's copy: the raw mail, and its text part as stored in the outbox."""
    head = fill_head(stencil, personal)
    text = _filled(stencil.text, personal, escape=False)
    markup = _filled(stencil.html, personal, escape=True)
    boundary = stencil.boundary
    body = b"".join(
        (
            _part(boundary, "plain", text),
            _part(boundary, "html", markup),
            b"--" + boundary + b"--\r\n",
        )
    )
    if stencil.files:
        mixed = stencil.mixed
        body = b"".join(
            (
                b"--" + mixed + b"\r\n",
                b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n\r\n',
                body,
                b"\r\n",
                stencil.files,
                b"--" + mixed + b"--\r\n",
            )
        )
    return head + b"\r\n" + body, plain_text(text)


def _filled(body: str, personal: Personal, *, escape: bool) -> str:
    quote = html.escape if escape else str
    for placeholder, value in (
        (PLACEHOLDERS.magic_link, personal.magic_link),
        (PLACEHOLDERS.private_address, personal.private_address or ""),
    ):
        assert placeholder is not None
        body = body.replace(quote(placeholder), quote(value))
    return body


def _personal_fields(personal: Personal) -> bytes:
    """``To`` (through the stdlib, which checks the address), ``In-Reply-To``, ``References``.

    An internationalised address gets a UTF-8 ``To`` (RFC 6532), as ``new_message`` writes it.
    """
    lines = []
    ids = [f"<{one_line(i)}>" for i in personal.references if one_line(i)]
    if personal.in_reply_to and one_line(personal.in_reply_to):
        parent = f"<{one_line(personal.in_reply_to)}>"
        lines.append(f"In-Reply-To: {parent}")
        if parent not in ids:
            ids.append(parent)
    if ids:
        lines.append("References: " + "\r\n ".join(dict.fromkeys(ids)))
    return _to(personal.recipient) + "".join(f"{line}\r\n" for line in lines).encode("ascii")


def _to(recipient: Address) -> bytes:
    r"""The ``To`` field, written here for a plain name and address.

    Anything else goes through the standard library, which quotes, encodes and checks it
    (and refuses an address no header can hold, as composing would).

    >>> _to(Address("bob@example.com", "Bob Jones")), _to(Address("b@x.test", "Smith, Bob"))
    (b'To: Bob Jones <bob@example.com>\r\n', b'To: "Smith, Bob" <b@x.test>\r\n')
    """
    name, email = one_line(recipient.name), recipient.email
    if _PLAIN_ADDRESS.fullmatch(email) and _PLAIN_NAME.fullmatch(name):
        line = f"To: {name} <{email}>" if name else f"To: {email}"
        if len(line) <= 78:
            return f"{line}\r\n".encode("ascii")
    return _folded_to(name, email)


@functools.lru_cache(maxsize=4096)  # (the same people are told again and again)
def _folded_to(name: str, email: str) -> bytes:
    address = mailbox(name, email)
    policy = POLICY if address.addr_spec.isascii() else UTF8_POLICY
    return policy.fold_binary("To", policy.header_store_parse("To", address)[1])


def _part(boundary: bytes, subtype: str, content: str) -> bytes:
    encoding, data = _encoded(content)
    return (
        b"--" + boundary + b"\r\n"
        b"Content-Type: text/" + subtype.encode() + b'; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: " + encoding + b"\r\n\r\n" + data + b"\r\n"
    )  # that last line end belongs to the boundary after it (RFC 2046)


def _encoded(content: str) -> tuple[bytes, bytes]:
    r"""7bit when every line is short ASCII, else quoted-printable; CRLF line ends.

    >>> _encoded("plain\nlines")
    (b'7bit', b'plain\r\nlines\r\n')
    >>> _encoded("Grüße")
    (b'quoted-printable', b'Gr=C3=BC=C3=9Fe\r\n')
    """
    data = content.replace("\r\n", "\n").rstrip("\n").encode("utf-8") + b"\n"
    if data.isascii() and max(map(len, data.split(b"\n"))) <= MAX_LINE:
        return b"7bit", data.replace(b"\n", b"\r\n")
    return b"quoted-printable", binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")
