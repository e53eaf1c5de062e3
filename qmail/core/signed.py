r"""Signed mail: the signed content is the mail, the signature is not a file of it.

PGP/MIME (RFC 3156; Thunderbird, Enigmail, Mutt) and S/MIME (RFC 8551; Apple Mail,
Outlook) send ``multipart/signed`` with the content first and the signature second; qmail
does not check signatures, so the signature part is left out rather than shown as a
nameless attachment.  Inline PGP (RFC 4880 section 7) wraps the text itself in armour
lines; ``unarmour`` keeps the signed text.  Pure; an incomplete armour is left as it is.
"""

from __future__ import annotations

import bisect
import re

SIGNATURE_TYPES = frozenset(
    {
        "application/pgp-signature",
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
    }
)

_BEGIN = "-----BEGIN PGP SIGNED MESSAGE-----"
_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"
_END = "-----END PGP SIGNATURE-----"
# Armour headers between the BEGIN line and the blank line: "Hash: SHA256".
_ARMOUR_HEADER = re.compile(r"[A-Za-z][A-Za-z0-9-]*: .*")


def is_signature(parent_type: str, content_type: str) -> bool:
    """Whether a child of ``parent_type`` is the signature of a signed mail.

    >>> is_signature("multipart/signed", "application/pkcs7-signature")
    True
    >>> is_signature("multipart/mixed", "application/pgp-signature")
    False
    """
    return parent_type == "multipart/signed" and content_type in SIGNATURE_TYPES


def unarmour(text: str) -> str:
    r"""The text of inline PGP signed messages without armour, ``Hash:`` lines and dash escapes.

    >>> unarmour("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nHi\n- -- \nAnn\n"
    ...          "-----BEGIN PGP SIGNATURE-----\n\niQE=\n-----END PGP SIGNATURE-----\n")
    'Hi\n-- \nAnn\n'
    >>> unarmour("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA1\n\nno signature follows")
    '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA1\n\nno signature follows'
    """
    if _BEGIN not in text:
        return text
    lines = text.split("\n")
    marks = [line.rstrip() for line in lines]
    signatures = [number for number, mark in enumerate(marks) if mark == _SIGNATURE]
    ends = [number for number, mark in enumerate(marks) if mark == _END]
    kept: list[str] = []
    index = 0
    while index < len(lines):
        body = _body_start(marks, index) if marks[index] == _BEGIN else None
        signature = _next(signatures, body)
        end = _next(ends, signature)
        if body is None or signature is None or end is None:
            kept.append(lines[index])
            index += 1
            continue
        # RFC 4880 7.1: a signed line that starts with "-" is sent with "- " before it.
        kept.extend(line[2:] if line.startswith("- ") else line for line in lines[body:signature])
        index = end + 1
    return "\n".join(kept)


def _body_start(marks: list[str], begin: int) -> int | None:
    """Where the signed text starts: after the armour headers and their blank line."""
    index = begin + 1
    while index < len(marks) and _ARMOUR_HEADER.fullmatch(marks[index]):
        index += 1
    if index >= len(marks) or marks[index]:
        return None
    return index + 1


def _next(positions: list[int], start: int | None) -> int | None:
    """The first of the sorted ``positions`` at or after ``start``.

    >>> _next([2, 5], 3), _next([2, 5], 6), _next([2], None)
    (5, None, None)
    """
    if start is None:
        return None
    found = bisect.bisect_left(positions, start)
    return positions[found] if found < len(positions) else None
