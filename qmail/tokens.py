"""Signed tokens: reply addresses (and, later, magic links), over itsdangerous.

The only module that uses itsdangerous.  Each purpose has its own salt, so a token made
for one purpose never verifies for another.

A reply token lives in the local part of an address, so it must be short (RFC 5321 allows
64 octets) and survive MTAs that change the case of local parts: the payload is
``<branch>-<person>-<kind>`` and the signature an HMAC (key derived by itsdangerous from
the secret and the salt) truncated to 128 bits and written in lower-case base32.  Reply
tokens do not expire: people answer months later.
"""

from __future__ import annotations

import base64
import hmac
import re

from itsdangerous import Signer
from itsdangerous.encoding import base64_decode

from qmail.core.mail import ReplyTarget

_REPLY_TOKEN = re.compile(r"^(\d{1,12})-(\d{1,12})-([bp])-([a-z2-7]{26})$")
_KINDS = {"b": False, "p": True}  # b: the branch itself, p: privately to the team


class ReplyTokens:
    """Makes and checks the tokens of ``reply+TOKEN`` addresses."""

    def __init__(self, secret_key: str) -> None:
        self._signer = Signer(secret_key, salt="qmail.reply", key_derivation="hmac")

    def make(self, target: ReplyTarget) -> str:
        kind = "p" if target.private else "b"
        payload = f"{target.branch_id}-{target.person_id}-{kind}"
        return f"{payload}-{self._signature(payload)}"

    def read(self, token: str) -> ReplyTarget | None:
        """The target a token names, or ``None`` if it is malformed or forged."""
        match = _REPLY_TOKEN.match(token.lower())
        if match is None:
            return None
        branch, person, kind, signature = match.groups()
        payload = f"{branch}-{person}-{kind}"
        if not hmac.compare_digest(signature, self._signature(payload)):
            return None
        return ReplyTarget(branch_id=int(branch), person_id=int(person), private=_KINDS[kind])

    def _signature(self, payload: str) -> str:
        digest = base64_decode(self._signer.get_signature(payload))[:16]
        return base64.b32encode(digest).decode("ascii").rstrip("=").lower()
