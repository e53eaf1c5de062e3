"""Reply tokens: signed, short, case-insensitive, bound to a branch and a person."""

from __future__ import annotations

import base64
import time
import zlib
from datetime import UTC, datetime
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

from qmail.auth.signed import (
    IntakeTokens,
    LinkTokens,
    MagicLink,
    ReplyTokens,
    _base32,
    _shorter_compressed,
    magic_link_url,
)
from qmail.core.addresses import reply_address
from qmail.core.mail import ReplyTarget

TOKENS = ReplyTokens("secret")


def test_token_round_trips_to_its_branch_and_person():
    target = ReplyTarget(branch_id=12, person_id=345)
    assert TOKENS.read(TOKENS.make(target)) == target


def test_private_token_round_trips():
    target = ReplyTarget(branch_id=12, person_id=345, private=True)
    assert TOKENS.read(TOKENS.make(target)) == target


def test_reply_address_fits_in_an_smtp_local_part():
    token = TOKENS.make(ReplyTarget(branch_id=10**11, person_id=10**11))
    assert len(reply_address(token, "x").split("@")[0]) <= 64


def test_mta_that_upper_cases_local_parts_does_not_break_tokens():
    target = ReplyTarget(3, 4)
    assert TOKENS.read(TOKENS.make(target).upper()) == target


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t.replace("12-", "13-", 1),  # another branch, same signature
        lambda t: t.replace("-345-", "-346-"),  # another person
        lambda t: t.replace("-b-", "-p-"),  # promote to the private address
        lambda t: t[:-1] + ("a" if t[-1] != "a" else "b"),  # damaged signature
        lambda t: t[:-2],  # truncated
        lambda t: "",
        lambda t: "12-345-b-" + "a" * 26,
        lambda t: t + "'; drop table person; --",
    ],
)
def test_forged_or_damaged_tokens_are_refused(forge):
    token = TOKENS.make(ReplyTarget(12, 345))
    assert TOKENS.read(forge(token)) is None


def test_token_from_another_secret_is_refused():
    token = ReplyTokens("other secret").make(ReplyTarget(12, 345))
    assert TOKENS.read(token) is None


LINKS = LinkTokens("secret", login_ttl=3600)


def test_magic_link_names_the_person_a_nonce_and_where_to_land():
    link = LINKS.read_login(LINKS.make_login(7, "/tasks/12"))
    assert link is not None
    assert (link.person_id, link.next_path) == (7, "/tasks/12")
    assert len(link.nonce) == 22  # secrets.token_urlsafe(16)


def test_a_magic_link_carries_the_nonce_its_caller_drew():
    drawn = bytes(range(16))
    link = LINKS.read_login(LINKS.make_login(7, "/tasks/12", drawn))
    assert link is not None
    assert (
        link.nonce
        == base64.urlsafe_b64encode(drawn).rstrip(b"=").decode()
        == "AAECAwQFBgcICQoLDA0ODw"
    )


def test_magic_link_lands_on_the_inbox_by_default():
    link = LINKS.read_login(LINKS.make_login(7))
    assert link is not None and link.next_path == "/"


def test_two_magic_links_for_one_person_have_different_nonces():
    first, second = (LINKS.read_login(LINKS.make_login(7)) for _ in range(2))
    assert first is not None and second is not None
    assert first.nonce != second.nonce


def test_magic_link_keeps_the_three_part_dotted_shape():
    token = LINKS.make_login(7, "/tasks/12")
    assert token.startswith("ml_")
    assert len(token[3:].split(".")) == 3
    assert not token[3:].startswith(".")  # not zlib-compressed (that adds a leading dot)


def test_magic_link_url_has_one_slash_whatever_the_base_url():
    for base_url in ("https://q.example.com", "https://q.example.com/"):
        assert magic_link_url(base_url, "ml_x") == "https://q.example.com/auth/magic/ml_x"


def test_magic_link_expires(monkeypatch):
    token = LINKS.make_login(7)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3601)
    assert LINKS.read_login(token) is None


@pytest.mark.parametrize(
    "token",
    [
        LinkTokens("other", 3600).make_login(7),  # another secret
        "ml_" + URLSafeTimedSerializer("secret", salt="qmail.login").dumps([7, 3]),  # old shape
        "ml_" + URLSafeTimedSerializer("secret", salt="qmail.login").dumps([True, "n", "/"]),
        "ml_" + URLSafeTimedSerializer("secret", salt="qmail.login").dumps([7, "", "/"]),
        LINKS.make_unsubscribe(7, 3).replace("un_", "ml_"),  # another purpose
        "ml_" + "x" * 40,
        "",
        "7.3",
    ],
)
def test_forged_magic_links_are_refused(token):
    assert LINKS.read_login(token) is None


def test_unsubscribe_link_round_trips_and_is_not_a_login():
    token = LINKS.make_unsubscribe(12, 345)
    assert LINKS.read_unsubscribe(token) == (12, 345)
    assert LINKS.read_login(token) is None
    assert LINKS.read_unsubscribe(token[:-2]) is None


def test_tokens_stay_what_earlier_releases_made():
    """Tokens already in people's mailboxes keep working: same salts, keys and formats
    (the values were made by the code before signers were kept between calls)."""
    assert TOKENS.make(ReplyTarget(12, 345)) == "12-345-b-ya4oxnkul4xezibos5doensiva"
    assert TOKENS.make(ReplyTarget(12, 345, True)) == "12-345-p-akpn7cyowhoh27qgafg3fa5x5e"
    links = LinkTokens("secret", 60)
    assert links.make_unsubscribe(7, 8) == "un_WzcsOF0.vfH5Bu1QvGfYmYHVTCHEtI-jZec"
    plain = URLSafeTimedSerializer("secret", salt="qmail.login").dumps([5, "nonce", "/tasks/1"])
    assert links.read_login(links.LOGIN_PREFIX + plain) == MagicLink(5, "nonce", "/tasks/1")
    made = links.make_login(5, "/tasks/1")[len(links.LOGIN_PREFIX) :]
    assert URLSafeTimedSerializer("secret", salt="qmail.login").loads(made)[::2] == [5, "/tasks/1"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(), inner, max_size=6),
    max_leaves=30,
)
# Payloads that zlib shortens, and some that it lengthens by little: both ways of the rule.
_REPEATING = st.builds(
    lambda part, times, tail: [part * times, tail],
    st.text(min_size=1, max_size=8),
    st.integers(1, 40),
    st.text(max_size=20),
)


@given(value=_JSON | _REPEATING, moment=st.integers(0, 2**37), secret=st.text(min_size=1))
@settings(max_examples=300, deadline=None)
def test_tokens_are_made_as_itsdangerous_makes_them(value, moment, secret):
    """The tokens qmail writes out by hand are itsdangerous's own, byte for byte, and
    itsdangerous reads them back (the time as it was when they were made)."""
    salts = {"login": "qmail.login", "feed": "qmail.feed", "unsubscribe": "qmail.unsubscribe"}
    links = LinkTokens(secret, 60)
    with mock.patch("time.time", return_value=moment + 0.75):
        for purpose, salt in salts.items():
            timed = purpose == "login"
            plain = (URLSafeTimedSerializer if timed else URLSafeSerializer)(secret, salt=salt)
            made = getattr(links, f"_dump_{purpose}")(value)
            assert made == plain.dumps(value)
            if timed:
                assert plain.loads(made, max_age=60, return_timestamp=True) == (
                    value,
                    datetime.fromtimestamp(moment, UTC),
                )
            else:
                assert plain.loads(made) == value
        intake = URLSafeTimedSerializer(secret, salt="qmail.intake")
        assert IntakeTokens(secret, 60)._dump(value) == intake.dumps(value)


@given(st.binary(max_size=300) | _REPEATING.map(lambda v: v[0].encode() + v[1].encode()))
@settings(max_examples=500, deadline=None)
def test_whether_a_payload_is_compressed_is_what_zlib_says(payload):
    assert _shorter_compressed(payload) == (len(zlib.compress(payload)) < len(payload) - 1)


@given(st.binary(min_size=16, max_size=16))
def test_a_reply_signature_is_written_in_base32_as_the_standard_library_writes_it(digest):
    assert _base32(digest) == base64.b32encode(digest).decode().rstrip("=").lower()
