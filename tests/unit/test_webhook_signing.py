"""The webhook signature, as a receiver checks it (the README's recipe)."""

from __future__ import annotations

import time
from pathlib import Path

from qmail.core.webhook_signing import signature, signature_header, verify

SECRET = "whsec_the-receivers-own"
BODY = '{"kind":"message","task":{"number":1},"message":{"text":"Grüße"}}'.encode()
SENT_AT = 1_764_590_000


def test_a_delivery_signed_with_the_secret_is_accepted():
    header = signature_header(SECRET, SENT_AT, BODY)
    assert verify(SECRET, header, BODY, now=SENT_AT + 2)


def test_a_signature_made_with_another_secret_is_refused():
    forged = signature_header("whsec_someone-elses", SENT_AT, BODY)
    assert not verify(SECRET, forged, BODY, now=SENT_AT)


def test_a_body_changed_on_the_way_is_refused():
    header = signature_header(SECRET, SENT_AT, BODY)
    assert not verify(SECRET, header, BODY.replace(b"1", b"2"), now=SENT_AT)


def test_a_replay_older_than_five_minutes_is_refused():
    header = signature_header(SECRET, SENT_AT, BODY)
    assert verify(SECRET, header, BODY, now=SENT_AT + 300)
    assert not verify(SECRET, header, BODY, now=SENT_AT + 301)


def test_the_time_is_part_of_what_is_signed():
    moved = f"t={SENT_AT + 60},v1={signature(SECRET, SENT_AT, BODY)}"
    assert not verify(SECRET, moved, BODY, now=SENT_AT + 60)


def test_any_of_several_signatures_may_match():
    header = f"t={SENT_AT},v1={'0' * 64},v1={signature(SECRET, SENT_AT, BODY)}"
    assert verify(SECRET, header, BODY, now=SENT_AT)


def test_a_missing_or_garbled_header_is_refused():
    for header in ("", "v1=abc", "t=soon,v1=abc", f"t={SENT_AT}", f"t={SENT_AT},v1=é"):
        assert not verify(SECRET, header, BODY, now=SENT_AT), header


def test_the_signature_is_hmac_sha256_of_time_dot_body():
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{SENT_AT}.".encode() + BODY, hashlib.sha256)
    assert signature_header(SECRET, SENT_AT, BODY) == f"t={SENT_AT},v1={expected.hexdigest()}"


def readme_recipe():
    """The ``verified`` function of the README's "Check the signature" recipe."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**Check the signature.**") :]
    code = section[section.index("```python\n") + len("```python\n") : section.index("```\n\n")]
    namespace: dict = {}
    exec(code, namespace)
    return namespace["verified"]


def test_the_readme_recipe_accepts_qmails_signature_and_refuses_a_forgery():
    verified = readme_recipe()
    now = int(time.time())
    assert verified(SECRET, signature_header(SECRET, now, BODY), BODY)
    assert not verified(SECRET, signature_header("whsec_someone-elses", now, BODY), BODY)
    assert not verified(SECRET, signature_header(SECRET, now - 301, BODY), BODY)
