"""Signed tokens: reply addresses, magic sign-in links, unsubscribe and feed links, and the
confirmation links of the public contact form.

The only module that uses itsdangerous.  Each purpose has its own salt, so a token made
for one purpose never verifies for another.

A reply token lives in the local part of an address, so it must be short (RFC 5321 allows
64 octets) and survive MTAs that change the case of local parts: the payload is
``<branch>-<person>-<kind>`` and the signature an HMAC (key derived by itsdangerous from
the secret and the salt) truncated to 128 bits and written in lower-case base32.  Reply
tokens do not expire: people answer months later.

Session cookies are not signed tokens: they are random secrets checked against the
database (``qmail.auth.sessions``), so that signing out ends them for good.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import zlib
from dataclasses import dataclass
from typing import Any

from itsdangerous import (
    BadSignature,
    HMACAlgorithm,
    Signer,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)
from itsdangerous.encoding import int_to_bytes, want_bytes

from qmail.core.mail import ReplyTarget

_REPLY_TOKEN = re.compile(r"^(\d{1,12})-(\d{1,12})-([bp])-([a-z2-7]{26})$")
_KINDS = {"b": False, "p": True}  # b: the branch itself, p: privately to the team
_MAX_NONCE_LENGTH = 64


class _OneShotHMAC(HMACAlgorithm):
    """``HMACAlgorithm`` through ``hmac.digest``, OpenSSL's one-shot HMAC: the same
    signature without building an ``hmac.HMAC`` object for each (given by its name:
    itsdangerous's default, a function returning a SHA-1 hash, would take the slow way)."""

    def __init__(self, digest_method: Any = None) -> None:
        super().__init__(digest_method)
        self.digest_name = self.digest_method().name

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.digest(key, value, self.digest_name)


class _KeyOnce(Signer):
    """A ``Signer`` that derives its key from the secret and the salt once.

    itsdangerous derives it again for every signature and every check (two more hashes,
    as dear as the signature itself); the key, the salt and the signatures stay the same.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._derived: dict[bytes, bytes] = {}
        if type(self.algorithm) is HMACAlgorithm:
            self.algorithm = _OneShotHMAC(self.algorithm.digest_method)

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        derived = self._derived.get(secret)
        if derived is None:
            derived = self._derived[secret] = super().derive_key(secret)
        return derived


class _TimestampKeyOnce(_KeyOnce, TimestampSigner):
    """``TimestampSigner`` with ``_KeyOnce``'s derived key."""


class _SignerOnce:
    """A serializer mixin that builds its signer once per salt (itsdangerous builds one
    for every ``dumps`` and ``loads``); ``signer`` is a ``_KeyOnce`` class."""

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        cache: dict[str | bytes | None, Signer] = self.__dict__.setdefault("_signers", {})
        signer = cache.get(salt)
        if signer is None:
            signer = cache[salt] = super().make_signer(salt)  # type: ignore[misc]
        return signer


class _Serializer(_SignerOnce, URLSafeSerializer):
    default_signer = _KeyOnce


class _TimedSerializer(_SignerOnce, URLSafeTimedSerializer):
    default_signer = _TimestampKeyOnce


_ENCODE_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class _Dumps:
    """``serializer.dumps`` (a ``_Serializer`` or ``_TimedSerializer``), written out: the
    same token, byte for byte, at a fraction of the cost; tokens are read back by
    itsdangerous (``loads``), which compares signatures in constant time.

    itsdangerous writes the payload as compact JSON, compressed by zlib when that makes it
    shorter (marked by a leading ``.``), in base64url without padding; a timed token adds
    the time (seconds, big-endian, without leading zero bytes, in base64url); then the
    HMAC of all that with the key derived from the secret and the salt, in base64url.
    """

    def __init__(self, serializer: _Serializer | _TimedSerializer) -> None:
        signer = serializer.make_signer()
        assert isinstance(signer, _KeyOnce) and isinstance(signer.algorithm, _OneShotHMAC)
        self._key = signer.derive_key()
        self._digest = signer.algorithm.digest_name
        self._sep = signer.sep
        self._signer = signer  # (its ``get_timestamp`` asked each time, as itsdangerous does)
        self._timed = isinstance(signer, TimestampSigner)

    def __call__(self, value: Any) -> str:
        payload = _ENCODE_JSON(value).encode()
        if _shorter_compressed(payload):
            payload = b"." + _base64(zlib.compress(payload))
        else:
            payload = _base64(payload)
        if self._timed:
            timestamp = self._signer.get_timestamp()  # type: ignore[attr-defined]
            payload += self._sep + _base64(int_to_bytes(timestamp))
        signature = _base64(hmac.digest(self._key, payload, self._digest))
        return (payload + self._sep + signature).decode("ascii")


def _base64(value: bytes) -> bytes:
    return base64.urlsafe_b64encode(value).rstrip(b"=")


def _shorter_compressed(payload: bytes) -> bool:
    """Whether ``zlib.compress(payload)`` is shorter than ``payload`` by two bytes or more
    (itsdangerous's rule for compressing a payload), found without it for short payloads.

    ``zlib.compress`` sets up a 256 KiB compressor for each call (three quarters of the
    cost of a sign-in link).  Its output is at least 9 bytes (a 2-byte header, a 3-byte
    block, a 4-byte checksum), so 10 bytes or fewer never gain.  Up to 250 bytes, a
    compressor of the same level and hash (``memLevel`` 8) but a 512-byte window finds
    the same matches (every distance is under its 250-byte limit, and its hash chains are
    the same) and writes the same blocks: the same length, at a quarter of the cost.
    Up to 32 bytes a smaller hash (``memLevel`` 1) does too: its chains hold more
    positions that only share a hash, never a match, and fewer than 32 positions never
    exhaust the search (128 candidates, 32 after a match of 8 bytes or more) before
    the true candidates are seen.  ``test_signed`` checks these against ``zlib.compress``.
    """
    size = len(payload)
    if size <= 10:
        return False
    if size > 250:
        return len(zlib.compress(payload)) < size - 1
    compressor = zlib.compressobj(6, zlib.DEFLATED, 9, 1 if size <= 32 else 8)
    return len(compressor.compress(payload)) + len(compressor.flush()) < size - 1


class ReplyTokens:
    """Makes and checks the tokens of ``reply+TOKEN`` addresses."""

    def __init__(self, secret_key: str) -> None:
        self._signer = _KeyOnce(secret_key, salt="qmail.reply", key_derivation="hmac")

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
        # ``get_signature`` without its base64 round trip: the same HMAC of the same key.
        signer = self._signer
        digest = signer.algorithm.get_signature(signer.derive_key(), payload.encode())[:16]
        return _base32(digest)


_BASE32_PAIRS = [
    a + b for a in "abcdefghijklmnopqrstuvwxyz234567" for b in "abcdefghijklmnopqrstuvwxyz234567"
]


def _base32(digest: bytes) -> str:
    """``base64.b32encode(digest)`` in lower case without padding, for 16 bytes: 26
    characters of 5 bits, the last 2 of 130 bits zero (the standard library's encoder,
    pure Python, took as long as the HMAC)."""
    bits = int.from_bytes(digest, "big") << 2
    return "".join(_BASE32_PAIRS[(bits >> shift) & 0x3FF] for shift in range(120, -1, -10))


@dataclass(frozen=True)
class MagicLink:
    """What a genuine, unexpired magic link says: who, which link, and where to land."""

    person_id: int
    nonce: str  # random, one per link: spending the link records it (``SpentLink``)
    next_path: str  # the page to land on after signing in, e.g. ``/tasks/12``


class LinkTokens:
    """Signed tokens for links: magic sign-in links and one-click unsubscribe links.

    A magic link carries the person, a random nonce and the path to land on.  It expires
    after ``security.magic_link_ttl``; spending it records its nonce, so it works once,
    and the person's other links keep working (each has its own nonce).  An unsubscribe
    link names a task and a person and does not expire (RFC 8058 links are used long
    after the mail came).
    """

    LOGIN_PREFIX = "ml_"
    UNSUBSCRIBE_PREFIX = "un_"
    FEED_PREFIX = "fd_"

    def __init__(self, secret_key: str, login_ttl: int) -> None:
        self.login_ttl = login_ttl
        self._login = _TimedSerializer(secret_key, salt="qmail.login")
        self._unsubscribe = _Serializer(secret_key, salt="qmail.unsubscribe")
        self._feed = _Serializer(secret_key, salt="qmail.feed")
        self._dump_login = _Dumps(self._login)
        self._dump_unsubscribe = _Dumps(self._unsubscribe)
        self._dump_feed = _Dumps(self._feed)

    def make_login(self, person_id: int, next_path: str = "/", drawn: bytes | None = None) -> str:
        """A sign-in link's token; its nonce is 16 random bytes, ``drawn`` by the caller
        (``os.urandom``, for many links at once) or drawn here."""
        nonce = _base64(drawn).decode("ascii") if drawn else secrets.token_urlsafe(16)
        payload = [person_id, nonce, next_path]
        return self.LOGIN_PREFIX + self._dump_login(payload)

    def read_login(self, token: str) -> MagicLink | None:
        """What a valid, unexpired link says, else ``None`` (spent or not: see ``SpentLink``)."""
        if not token.startswith(self.LOGIN_PREFIX):
            return None
        try:
            value = self._login.loads(token[len(self.LOGIN_PREFIX) :], max_age=self.login_ttl)
        except BadSignature:  # includes SignatureExpired
            return None
        if not (isinstance(value, list) and len(value) == 3):
            return None
        person_id, nonce, next_path = value
        if not (_is_int(person_id) and isinstance(nonce, str) and isinstance(next_path, str)):
            return None
        if not 0 < len(nonce) <= _MAX_NONCE_LENGTH:  # the SpentLink column's width
            return None
        return MagicLink(person_id, nonce, next_path)

    def make_unsubscribe(self, task_id: int, person_id: int) -> str:
        return self.UNSUBSCRIBE_PREFIX + self._dump_unsubscribe([task_id, person_id])

    def read_unsubscribe(self, token: str) -> tuple[int, int] | None:
        """(task id, person id) of a valid unsubscribe link, else ``None``."""
        if not token.startswith(self.UNSUBSCRIBE_PREFIX):
            return None
        try:
            value = self._unsubscribe.loads(token[len(self.UNSUBSCRIBE_PREFIX) :])
        except BadSignature:
            return None
        return _pair(value)

    def make_feed(self, person_id: int, nonce: str) -> str:
        """The token of a person's Atom feed link: it names them and their current nonce
        (``Person.feed_nonce``, compared by ``qmail.auth.feeds``), and does not expire."""
        return self.FEED_PREFIX + self._dump_feed([person_id, nonce])

    def read_feed(self, token: str) -> tuple[int, str] | None:
        """(person id, nonce) of a genuine feed token, else ``None``."""
        if not token.startswith(self.FEED_PREFIX) or len(token) > 300:
            return None
        try:
            value = self._feed.loads(token[len(self.FEED_PREFIX) :])
        except BadSignature:
            return None
        if not (isinstance(value, list) and len(value) == 2):
            return None
        person_id, nonce = value
        if not (_is_int(person_id) and isinstance(nonce, str)):
            return None
        if not 0 < len(nonce) <= _MAX_NONCE_LENGTH:
            return None
        return person_id, nonce


@dataclass(frozen=True)
class IntakeConfirmation:
    """What a genuine, unexpired confirmation link says: which submission, by its nonce."""

    submission_id: int
    nonce: str


class IntakeTokens:
    """Confirmation links for messages left on the public contact form (``/intake``).

    The payload names the submission and its random nonce; the link expires after
    ``intake.confirm_ttl``.  Single use is the database's business: confirming sets the
    submission's ``confirmed_at`` once.
    """

    PREFIX = "in_"

    def __init__(self, secret_key: str, ttl: int) -> None:
        self.ttl = ttl
        self._serializer = _TimedSerializer(secret_key, salt="qmail.intake")
        self._dump = _Dumps(self._serializer)

    def make(self, submission_id: int, nonce: str) -> str:
        return self.PREFIX + self._dump([submission_id, nonce])

    def read(self, token: str) -> IntakeConfirmation | None:
        """What a valid, unexpired link says, else ``None``."""
        if not token.startswith(self.PREFIX) or len(token) > 200:
            return None
        try:
            value = self._serializer.loads(token[len(self.PREFIX) :], max_age=self.ttl)
        except BadSignature:  # includes SignatureExpired
            return None
        if not (isinstance(value, list) and len(value) == 2):
            return None
        submission_id, nonce = value
        if not (_is_int(submission_id) and isinstance(nonce, str)):
            return None
        if not 0 < len(nonce) <= _MAX_NONCE_LENGTH:
            return None
        return IntakeConfirmation(submission_id, nonce)


def magic_link_url(base_url: str, token: str) -> str:
    """The address of a magic link (CONTRACT.md): ``<base_url>/auth/magic/<token>``."""
    return f"{base_url.rstrip('/')}/auth/magic/{token}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _pair(value: object) -> tuple[int, int] | None:
    if isinstance(value, list) and len(value) == 2 and all(_is_int(item) for item in value):
        return value[0], value[1]
    return None
