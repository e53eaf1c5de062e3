"""Read a mail's MIME tree with the standard library, for the mail flanker cannot read.

Flanker refuses a whole mail for faults the stdlib reads past: an unquoted boundary that
holds ``=`` (``boundary=----=_NextPart_000_0023_01D7A2B3.4C5D6E70``, as Outlook Express
and JavaMail write it), or a broken part inside an attached ``message/rfc822``.
``read_with_stdlib`` reads those into the same ``Part`` values as ``parse.py`` makes from
flanker's tree.  Attached messages stay the bytes that were sent, as on the flanker path:
a broken one is an opaque attachment and cannot cost the mail around it.  Only a mail
whose own multipart structure nothing can find is refused; what the stdlib itself raises
(a tree nested too deep) ``parse.py`` turns into a refusal too.
"""

from __future__ import annotations

import email
import email.message
from email import errors
from email.policy import Compat32

from qmail.core.fields import fields_of, file_name
from qmail.core.parts import Part, strip_id, transfer_decoded


class _RawHeaders(Compat32):
    """compat32, but header values come back as sent: raw bytes stay surrogate escapes.

    compat32 turns a value with raw 8-bit bytes into a ``Header`` whose text has lost
    them; ``fields.fields_of`` decodes the raw value the same way as on the flanker path.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        """The value as it was in the mail, still folded."""
        return value


RAW_HEADERS = _RawHeaders()


class _Opaque(email.message.Message):
    """A stdlib message that keeps its ``message/*`` parts as the bytes that were sent.

    The feed parser reads a ``message/rfc822`` part as a nested message (and a
    ``message/delivery-status`` part as blocks of headers) when the part's content type
    says ``message/``; told otherwise, it keeps the body as it came.  The real type is
    read with ``content_type`` below.
    """

    def get_content_type(self) -> str:
        """``message/*`` reads as ``application/octet-stream`` while the parser runs."""
        found = content_type(self)
        return "application/octet-stream" if found.startswith("message/") else found


def content_type(message: email.message.Message) -> str:
    """The content type of ``message`` as the mail declares it, lower case."""
    return email.message.Message.get_content_type(message)


def read_with_stdlib(raw: bytes) -> Part | None:
    """The ``Part`` tree of ``raw``; ``None`` when the mail's multipart structure is lost.

    A multipart mail without a boundary, or whose boundary never appears, has no parts
    anyone could read; a broken multipart inside it becomes an opaque attachment.
    """
    root = email.message_from_bytes(raw, _class=_Opaque, policy=RAW_HEADERS)
    lost = (errors.NoBoundaryInMultipartDefect, errors.StartBoundaryNotFoundDefect)
    if any(isinstance(defect, lost) for defect in root.defects):
        return None
    return part_from_email(root)


def part_from_email(message: email.message.Message) -> Part:
    """A ``Part`` tree from a stdlib message parsed with ``_Opaque`` and ``RAW_HEADERS``."""
    declared = content_type(message)
    # Not get_payload(): it decodes raw 8-bit bytes with the declared charset, replacing
    # what does not fit; the parser keeps them in _payload as surrogate escapes.
    payload = getattr(message, "_payload", None)
    if isinstance(payload, list):
        children = (child for child in payload if isinstance(child, email.message.Message))
        return Part(declared, children=tuple(part_from_email(child) for child in children))
    body = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    fields = fields_of([(name, str(value)) for name, value in message.items()])
    part = Part(
        declared,
        body,
        message.get_content_charset(),
        message.get_content_disposition() or "",
        file_name(fields),
        strip_id(message.get("Content-ID")),
    )
    return transfer_decoded(part, message.get("Content-Transfer-Encoding"))
