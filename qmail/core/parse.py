"""Parse stage: the raw bytes of an inbound mail become a ``Mail`` value, or a ``Reject``.

This is the only module that imports flanker; it reads the MIME tree with flanker, and
with the standard library (``fallback.py``) when flanker cannot, the headers with its own
small reader (``fields.py``), and hands ``parts.py`` plain values to pick the body and
attachments from.  It must never raise on bad input, never let a flanker object out, and
never do I/O or look at the clock: mail that nothing can read is a
``Reject(554, "5.6.0 ...")`` value (the raw mail is kept by the pipeline).
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flanker import mime
from flanker.addresslib import address
from flanker.mime.message.errors import MimeError
from flanker.mime.message.headers import mime_to_unicode

from qmail.core.automatic import detect_automatic
from qmail.core.charsets import decode_words, repair
from qmail.core.fallback import read_with_stdlib
from qmail.core.fields import Fields, address_pairs, file_name, header_fields, split_head
from qmail.core.fields import first as _first
from qmail.core.hollow import MIN_RUN, Hollowed, hollow
from qmail.core.mail import Address, Mail, Reject
from qmail.core.parts import Part, decode_base64, read_parts, strip_id, transfer_decoded
from qmail.core.storable import storable_email, storable_id, storable_name, storable_text

GENERATED_DOMAIN = "generated.qmail.invalid"
AUTH_RESULTS = "authentication-results"
# Limits that keep one mail from stalling the rest: a mail copying 3,000 people would
# make as many participants; one with tens of thousands of header fields is an attack.
MAX_ADDRESSES = 100  # per address field
MAX_HEADER_FIELDS = 1000


def parse_mail(raw: bytes) -> Mail | Reject:
    """Parse ``raw``; malformed mail gives ``Reject(554, "5.6.0 Malformed message: ...")``."""
    fields = header_fields(raw)
    if not raw.strip():
        return _malformed("empty message")
    if not fields:
        return _malformed("no header fields")
    if len(fields) > MAX_HEADER_FIELDS:
        return _malformed(f"more than {MAX_HEADER_FIELDS} header fields")
    root = read_tree(raw)
    if isinstance(root, str):
        return _malformed(root)
    text, from_html, attachments = read_parts(root)
    subject = decode_header(_first(fields, "subject") or "")
    senders = addresses(_first(fields, "from"))
    return Mail(
        message_id=_message_id(fields, raw),
        subject=subject,
        sender=senders[0] if senders else None,
        to=addresses(_first(fields, "to")),
        cc=addresses(_first(fields, "cc")),
        reply_to=addresses(_first(fields, "reply-to")),
        date=parse_date(_first(fields, "date")),
        in_reply_to=normalize_message_id(_first(fields, "in-reply-to")),
        references=message_ids(_first(fields, "references")),
        text=text,
        from_html=from_html,
        attachments=attachments,
        automatic=detect_automatic(fields, subject, _first(fields, "content-type") or ""),
        loop_marker=(_first(fields, "x-qmail-loop") or "").strip(),
        # Topmost first, as on the wire (our reader, not flanker's): which field is on top
        # decides which one is trusted (authres.trusted_results).
        auth_results=tuple(value for key, value in fields if key.lower() == AUTH_RESULTS),
    )


def read_message_id(raw: bytes) -> str:
    """The normalized Message-ID of ``raw``, generated from its hash when it has none.

    Reads only the header block, so the SMTP edge can de-duplicate before parsing.
    """
    return _message_id(header_fields(raw), raw)


def _message_id(fields: Fields, raw: bytes) -> str:
    found = normalize_message_id(_first(fields, "message-id"))
    return found or f"{hashlib.sha256(raw).hexdigest()[:32]}@{GENERATED_DOMAIN}"


def _malformed(why: str) -> Reject:
    # The reason ends up in an SMTP reply line: one line of ASCII, not too long.
    why = " ".join(why.encode("ascii", "replace").decode("ascii").split())[:200]
    return Reject(554, f"5.6.0 Malformed message: {why}")


# --- top-level headers ---------------------------------------------------------------


def decode_header(value: str) -> str:
    """Decode RFC 2047 encoded words, even broken ones, and squeeze white space.

    >>> decode_header("=?windows-1251?B?z/Do4uXy?=  =?utf-8?q?_w=C3=B6rld?=")
    'Привет wörld'
    """
    try:
        decoded = str(mime_to_unicode(value))
    except Exception:  # flanker raises assorted errors on broken encoded words
        decoded = decode_words(value)
    return " ".join(storable_text(repair(decoded)).split())


def addresses(value: str | None) -> tuple[Address, ...]:
    """The valid mailboxes in an address header, emails lower-cased, names decoded.

    Comments are not names, except in the old ``address (Name)`` form (``fields.py``).
    The first ``MAX_ADDRESSES`` only: nobody is a participant because of a mass mailing.

    >>> addresses('=?utf-8?q?J=C3=B6rg?= <Joerg@Example.ORG>, broken, "A, B" <a@b.c>')
    (Address(email='joerg@example.org', name='Jörg'), Address(email='a@b.c', name='A, B'))
    >>> addresses('"Jan" <jan@x.nl> (Sales dept), piet@x.nl (Piet Jansen)')
    (Address(email='jan@x.nl', name='Jan'), Address(email='piet@x.nl', name='Piet Jansen'))
    """
    found = []
    for name, mailbox in address_pairs(value or ""):
        parsed = address.parse(mailbox, addr_spec_only=True) if "@" in mailbox else None
        email = str(parsed.address).lower() if parsed is not None else ""
        if email and storable_email(email):
            found.append(Address(email, storable_name(decode_header(name))))
            if len(found) == MAX_ADDRESSES:
                break
    return tuple(found)


def parse_date(value: str | None) -> datetime | None:
    """An aware datetime, UTC when the zone is unknown; ``None`` when unreadable.

    >>> parse_date("Tue, 4 Jun 2024 10:00:00 +0200").isoformat(), parse_date("soon")
    ('2024-06-04T10:00:00+02:00', None)
    """
    try:
        parsed = email.utils.parsedate_to_datetime(value or "")
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def message_ids(value: str | None) -> tuple[str, ...]:
    r"""Normalized Message-IDs in a header, in order, without duplicates.

    >>> message_ids(" <a@b>\t<c@d> <a@b> "), message_ids("[x@y]"), message_ids("bare@id")
    (('a@b', 'c@d'), ('x@y',), ('bare@id',))
    """
    text = value or ""
    tokens = re.findall(r"<([^<>]*)>", text) or re.findall(r"\[([^\[\]]*)\]", text)
    tokens = tokens or re.split(r"[\s,]+", text)
    ids = (storable_id(re.sub(r"\s+", "", token).strip("<>[]")) for token in tokens)
    return tuple(dict.fromkeys(found for found in ids if found))


def normalize_message_id(value: str | None) -> str | None:
    """The first Message-ID in a header, without brackets or white space; ``None`` if none.

    >>> normalize_message_id(" <a@b> "), normalize_message_id("<[id@x]>")
    ('a@b', 'id@x')
    >>> normalize_message_id("<>") is None
    True
    """
    found = message_ids(value)
    return found[0] if found else None


# --- the MIME tree -------------------------------------------------------------------


def read_tree(raw: bytes) -> Part | str:
    """The MIME tree of ``raw`` as ``Part`` values, or why nothing can read it.

    Flanker first, given the mail with its long runs of body lines set aside
    (``hollow.py``: what flanker never needs to see costs no memory there); when it
    refuses the mail (or trips over garbage with some other error), the standard library.
    The reason given is flanker's, the first reader's.
    """
    hollowed = hollow(raw, MIN_RUN)
    try:
        # Flanker decodes bytes it is given with a guessed charset; surrogate escapes
        # keep every byte, so each part's own charset can be applied later.
        text = hollowed.text.decode("utf-8", "surrogateescape")
        return _from_flanker(mime.from_string(text), hollowed)
    except MimeError as error:
        why = str(error) or type(error).__name__
    except Exception as error:  # flanker has bugs on garbage that are not MimeErrors
        why = f"unreadable MIME structure ({type(error).__name__})"
    try:
        return read_with_stdlib(raw) or why
    except Exception as error:
        return f"unreadable MIME structure ({type(error).__name__})"


def _main_value(value: str | None) -> str:
    """A field's value without its parameters, in lower case.

    For ``Content-Disposition`` and ``Content-Transfer-Encoding``.

    >>> _main_value(' Attachment; filename="a;b.txt"'), _main_value(None)
    ('attachment', '')
    """
    return (value or "").split(";", 1)[0].strip().lower()


def _from_flanker(part: Any, hollowed: Hollowed) -> Part:
    """Copy one flanker part, and its children, into plain ``Part`` values.

    The tree and each part's type are flanker's (its scanner reads the types); a leaf's
    other fields are read here from its bytes (``fields.py``), as for the standard
    library's parts: asking flanker for them would parse every header of the part again.
    """
    content_type = f"{part.content_type.main}/{part.content_type.sub}".lower()
    if part.content_type.is_multipart():
        children = tuple(_from_flanker(child, hollowed) for child in part.parts)
        return Part(content_type, children=children)
    head, body = split_head(str(part.to_string()).encode("utf-8", "surrogateescape"))
    fields = header_fields(hollowed.restore(head))
    charset = part.content_type.params.get("charset")
    encoding = _main_value(_first(fields, "content-transfer-encoding")) or "7bit"
    # A large base64 file is decoded where it lies in the mail, never copied out first.
    span = hollowed.span(body) if encoding == "base64" else None
    leaf = Part(
        content_type,
        b"" if span else hollowed.restore(body),
        charset if isinstance(charset, str) else None,
        _main_value(_first(fields, "content-disposition")),
        file_name(fields),
        strip_id(_first(fields, "content-id")),
    )
    if span:
        return replace(leaf, payload=decode_base64(hollowed.raw, *span))
    return transfer_decoded(leaf, encoding)
