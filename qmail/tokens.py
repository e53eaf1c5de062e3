"""Signed tokens: reply addresses, magic sign-in links, unsubscribe links and sessions.

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

from itsdangerous import BadSignature, Signer, URLSafeSerializer, URLSafeTimedSerializer
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


class LinkTokens:
    """Signed tokens for links: magic sign-in links and one-click unsubscribe links.

    A magic link carries the person and their ``login_count`` at the time it was made;
    signing in bumps the count, so a link works once and older links die with it.  It
    expires after ``security.magic_link_ttl``.  An unsubscribe link names a task and a
    person and does not expire (RFC 8058 links are used long after the mail came).
    """

    LOGIN_PREFIX = "ml_"
    UNSUBSCRIBE_PREFIX = "un_"

    def __init__(self, secret_key: str, login_ttl: int) -> None:
        self.login_ttl = login_ttl
        self._login = URLSafeTimedSerializer(secret_key, salt="qmail.login")
        self._unsubscribe = URLSafeSerializer(secret_key, salt="qmail.unsubscribe")

    def make_login(self, person_id: int, login_count: int) -> str:
        return self.LOGIN_PREFIX + self._login.dumps([person_id, login_count])

    def read_login(self, token: str) -> tuple[int, int] | None:
        """(person id, login count) of a valid, unexpired link, else ``None``."""
        if not token.startswith(self.LOGIN_PREFIX):
            return None
        try:
            value = self._login.loads(token[len(self.LOGIN_PREFIX) :], max_age=self.login_ttl)
        except BadSignature:  # includes SignatureExpired
            return None
        return _pair(value)

    def make_unsubscribe(self, task_id: int, person_id: int) -> str:
        return self.UNSUBSCRIBE_PREFIX + self._unsubscribe.dumps([task_id, person_id])

    def read_unsubscribe(self, token: str) -> tuple[int, int] | None:
        """(task id, person id) of a valid unsubscribe link, else ``None``."""
        if not token.startswith(self.UNSUBSCRIBE_PREFIX):
            return None
        try:
            value = self._unsubscribe.loads(token[len(self.UNSUBSCRIBE_PREFIX) :])
        except BadSignature:
            return None
        return _pair(value)


class SessionTokens:
    """The value of the session cookie: a signed person id with the time it was issued.

    Set by a magic-link sign-in, valid for ``max_age`` seconds (30 days); signing out
    deletes the cookie.  It carries no secret beyond the signature, and the browser keeps
    it ``HttpOnly``, so page scripts never see it.
    """

    PREFIX = "ss_"
    MAX_AGE = 30 * 24 * 3600

    def __init__(self, secret_key: str, max_age: int = MAX_AGE) -> None:
        self.max_age = max_age
        self._serializer = URLSafeTimedSerializer(secret_key, salt="qmail.session")

    def make(self, person_id: int) -> str:
        return self.PREFIX + self._serializer.dumps(person_id)

    def read(self, token: str) -> int | None:
        """The person id of a valid, unexpired session cookie, else ``None``."""
        if not token.startswith(self.PREFIX) or len(token) > 200:
            return None
        try:
            value = self._serializer.loads(token[len(self.PREFIX) :], max_age=self.max_age)
        except BadSignature:  # includes SignatureExpired
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return None


def _pair(value: object) -> tuple[int, int] | None:
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(item, int) and not isinstance(item, bool) for item in value)
    ):
        return value[0], value[1]
    return None
