"""A notification composed once and filled in for each recipient.

Everyone told about one message gets the same mail but for a few values of their own:
their name in ``To``, their signed reply address, sign-in link, unsubscribe link and
Message-ID, and the notifications they got before (``In-Reply-To``/``References``).
Composing each copy through ``email.message`` costs milliseconds, mostly in header
folding; so the mail is composed once (``qmail.core.compose``) with ``PLACEHOLDERS``
for those values, and ``fill`` writes each recipient's copy by substitution: the header
block as composed, with the placeholders replaced, and the two body parts encoded again
(7bit, or quoted-printable when a line is not plain ASCII).  Whoever reads the result
with ``email`` sees the same message as if it had been composed for them alone.
"""

from __future__ import annotations

import binascii
import html
import re
from dataclasses import dataclass
from email.message import EmailMessage

from qmail.core.headers import POLICY, UTF8_POLICY, mailbox, one_line
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

# Fields written afresh for each copy: taken out of the composed header block.
_PERSONAL_FIELDS = re.compile(
    rb"(?im)^(to|in-reply-to|references):[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*"
)
_BOUNDARY = re.compile(rb'(?im)^content-type:\s*multipart/alternative;\s*boundary="?([^"\r\n;]+)"?')
MAX_LINE = 998  # RFC 5322: longer lines must be encoded


@dataclass(frozen=True)
class Stencil:
    """A mail composed with ``PLACEHOLDERS``: its header block and its two bodies."""

    head: bytes
    boundary: bytes
    text: str
    html: str


def make_stencil(message: EmailMessage) -> Stencil:
    """``message`` (text with an HTML alternative, composed with ``PLACEHOLDERS``) as a stencil."""
    raw = message.as_bytes(policy=POLICY)
    head = raw[: raw.index(b"\r\n\r\n") + 2]
    boundary = message.get_boundary()
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    if boundary is None or text_part is None or html_part is None:
        raise ValueError("a stencil needs a text part with an HTML alternative")
    return Stencil(
        _PERSONAL_FIELDS.sub(b"", head),
        boundary.encode("ascii"),
        str(text_part.get_content()),
        str(html_part.get_content()),
    )


def fill(stencil: Stencil, personal: Personal) -> tuple[bytes, str]:
    """One recipient's copy: the raw mail, and its text part as stored in the outbox."""
    head = stencil.head
    for placeholder, value in (
        (PLACEHOLDERS.reply_address, personal.reply_address),
        (PLACEHOLDERS.unsubscribe_url, one_line(personal.unsubscribe_url)),
        (PLACEHOLDERS.message_id, personal.message_id),
    ):
        head = head.replace(placeholder.encode(), value.encode("ascii"))
    head += _personal_fields(personal)
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
    return head + b"\r\n" + body, _stored(text)


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
    recipient = mailbox(personal.recipient.name, personal.recipient.email)
    policy = POLICY if recipient.addr_spec.isascii() else UTF8_POLICY
    to = policy.fold_binary("To", policy.header_store_parse("To", recipient)[1])
    lines = []
    ids = [f"<{one_line(i)}>" for i in personal.references if one_line(i)]
    if personal.in_reply_to and one_line(personal.in_reply_to):
        parent = f"<{one_line(personal.in_reply_to)}>"
        lines.append(f"In-Reply-To: {parent}")
        if parent not in ids:
            ids.append(parent)
    if ids:
        lines.append("References: " + "\r\n ".join(dict.fromkeys(ids)))
    return to + "".join(f"{line}\r\n" for line in lines).encode("ascii")


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


def _stored(text: str) -> str:
    r"""The text part as ``compose.body_text`` gives it: ``\n`` line ends, no blank ends."""
    return text.replace("\r\n", "\n").replace("\r", "\n").rstrip().lstrip("\n")
