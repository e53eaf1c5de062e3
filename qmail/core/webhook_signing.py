"""Signing webhook deliveries, and checking a signature the way a receiver should.

Every POST carries ``X-Qmail-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is
HMAC-SHA256, keyed with the webhook's secret, of ``"<t>." + body`` (the body's exact
bytes).  Signing the time with the body lets a receiver refuse a replayed old delivery:
``verify`` accepts a signature only within ``tolerance`` seconds of its own clock.  The
scheme is Stripe's, so receivers that check Stripe's signatures need one name changed.

Pure: the caller passes the time; nothing here reads a clock or a key store.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Qmail-Signature"
SCHEME = "v1"
TOLERANCE = 300  # seconds either way between the signature's time and the receiver's clock


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``.

    >>> signature("whsec_test", 1700000000, b'{"kind":"test"}')[:16]
    '94f5692e57a0c550'
    """
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The value of ``X-Qmail-Signature`` for ``body`` sent at ``timestamp``.

    >>> signature_header("whsec_test", 1700000000, b"{}").startswith("t=1700000000,v1=")
    True
    """
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def parse_header(header: str) -> tuple[int | None, list[str]]:
    """The time and the ``v1`` signatures of a header (several when a secret is rotated).

    >>> parse_header("t=12,v1=ab,v1=cd,v0=ef")
    (12, ['ab', 'cd'])
    >>> parse_header("garbage")
    (None, [])
    """
    timestamp: int | None = None
    found: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == SCHEME and value:
            found.append(value)
    return timestamp, found


def verify(secret: str, header: str, body: bytes, now: float, tolerance: int = TOLERANCE) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a time within ``tolerance`` of ``now``.

    The comparison takes the same time however many characters match
    (``hmac.compare_digest``), so a forger learns nothing from how fast it fails.

    >>> body = b'{"kind":"test"}'
    >>> header = signature_header("whsec_right", 1700000000, body)
    >>> verify("whsec_right", header, body, now=1700000010)
    True
    >>> verify("whsec_wrong", header, body, now=1700000010)
    False
    >>> verify("whsec_right", header, body + b" ", now=1700000010)
    False
    >>> verify("whsec_right", header, body, now=1700000000 + 301)
    False
    >>> verify("whsec_right", "t=1700000000,v1=é", body, now=1700000000)
    False
    """
    timestamp, candidates = parse_header(header)
    if timestamp is None or abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).encode("ascii")
    # bytes, not str: compare_digest refuses a str with non-ASCII characters
    return any(hmac.compare_digest(expected, found.encode()) for found in candidates)
