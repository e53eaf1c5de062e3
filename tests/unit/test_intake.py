"""The contact form's pure part: checking a visitor's fields, the mail they become, the
confirmation request, and its signed link."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from itsdangerous.timed import TimestampSigner

from qmail.auth.signed import IntakeConfirmation, IntakeTokens, LinkTokens
from qmail.config import load
from qmail.core.compose import IntakeRequest, compose_intake_request, mail_environment
from qmail.core.intake import (
    MAX_TEXT,
    IntakeForm,
    check_form,
    intake_mail,
    intake_message_id,
)
from qmail.core.mail import Address, Mail
from qmail.core.parse import parse_mail
from qmail.core.secrets import scrub_secrets
from qmail.errors import ConfigError

NOW = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
MAIL_TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "mail"


def test_the_mail_a_form_becomes_reads_as_the_visitor_wrote_it():
    form = IntakeForm("dana@client.test", "Dana Visitor", "[sales] Quote #urgent", "Hello,\n\nDana")
    message_id = intake_message_id(7, "n0nce", "example.com")
    mail = parse_mail(intake_mail(form, "tasks@example.com", message_id, NOW))
    assert isinstance(mail, Mail)
    assert mail.sender == Address("dana@client.test", "Dana Visitor")
    assert mail.subject == "[sales] Quote #urgent"
    assert mail.text.strip() == "Hello,\n\nDana"
    assert mail.message_id == "intake.7.n0nce@example.com"
    assert mail.automatic is None and not mail.loop_marker  # the visitor's words, not ours


def test_an_internationalised_address_and_name_survive_the_mail():
    form = IntakeForm("jörg@client.test", "Jörg Ümlaut", "Grüße", "Schöne Grüße")
    mail = parse_mail(intake_mail(form, "tasks@example.com", "intake.1.x@example.com", NOW))
    assert isinstance(mail, Mail)
    assert mail.sender == Address("jörg@client.test", "Jörg Ümlaut")
    assert (mail.subject, mail.text.strip()) == ("Grüße", "Schöne Grüße")


def test_a_header_cannot_be_smuggled_in_through_the_name_or_subject():
    checked = check_form(
        "dana@client.test",
        "Dana\r\nBcc: x@evil.test",
        "Hi\nBcc: y@evil.test",
        "text",
        "example.com",
    )
    assert isinstance(checked, IntakeForm)
    raw = intake_mail(checked, "tasks@example.com", "intake.1.x@example.com", NOW)
    assert b"\r\nBcc:" not in raw


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (("", "", "", "Hello"), "Please give one valid email address."),
        (("a" * 250 + "@x.test", "", "", "Hello"), "Please give one valid email address."),
        (("dana@client.test", "", "", "x" * (MAX_TEXT + 1)), "Please keep the message under"),
        (("dana@client.test", "", "s" * 201, "Hello"), "Please keep the name and the subject"),
        (("dana@client.test", "n" * 201, "", "Hello"), "Please keep the name and the subject"),
        (("dana@EXAMPLE.com", "", "", "Hello"), "Please give an address of your own."),
    ],
)
def test_fields_that_are_not_a_message_say_why(fields, problem):
    checked = check_form(*fields, "example.com")
    assert isinstance(checked, str) and checked.startswith(problem)


def test_confirmation_request_carries_the_link_and_the_subject_start_only():
    request = IntakeRequest(
        recipient=Address("dana@client.test", ""),
        confirm_link="http://q.test/intake/confirm/in_abc",
        subject_start="Quote for <b>40</b>",
        ttl_minutes=1440,
        domain="example.com",
        team_name="ACME support",
        message_id="qmail.1@example.com",
        loop_marker="example.com",
        from_address="noreply@example.com",
    )
    mail = compose_intake_request(request, mail_environment(MAIL_TEMPLATES))
    assert mail["Subject"] == "Please confirm your message to ACME support"
    assert mail["Reply-To"] is None and mail["Auto-Submitted"] == "auto-generated"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "http://q.test/intake/confirm/in_abc" in text and "works for 1 day" in text
    assert "Quote for &lt;b&gt;40&lt;/b&gt;" in html  # escaped, never markup


def test_confirmation_token_round_trips_and_is_bound_to_its_purpose():
    tokens = IntakeTokens("secret", ttl=3600)
    token = tokens.make(12, "n0nce")
    assert token.startswith("in_")
    assert tokens.read(token) == IntakeConfirmation(12, "n0nce")
    assert IntakeTokens("other secret", ttl=3600).read(token) is None
    assert tokens.read(token[:-2] + ("xx" if not token.endswith("xx") else "yy")) is None
    # a sign-in link's payload signed with the same key is no confirmation, nor the reverse
    links = LinkTokens("secret", 3600)
    login = links.make_login(12)
    assert tokens.read("in_" + login.removeprefix("ml_")) is None
    assert links.read_login("ml_" + token.removeprefix("in_")) is None


def test_confirmation_token_expires(monkeypatch):
    tokens = IntakeTokens("secret", ttl=3600)
    signed_at = int(time.time()) - 3601
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: signed_at)
    token = tokens.make(12, "n0nce")
    monkeypatch.undo()
    assert tokens.read(token) is None


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("ALLOWED_ORIGINS", "https://www.example.com/contact", "intake.allowed_origins takes"),
        ("ALLOWED_ORIGINS", "www.example.com", "intake.allowed_origins takes"),
        ("PER_IP_PER_HOUR", "0", "intake.per_ip_per_hour must be positive"),
    ],
)
def test_bad_intake_settings_stop_start_up_saying_which_key(key, value, problem):
    with pytest.raises(ConfigError, match=problem):
        load(env={f"QMAIL_INTAKE__{key}": value})


def test_intake_settings_from_the_environment():
    settings = load(
        env={
            "QMAIL_INTAKE__ENABLED": "true",
            "QMAIL_INTAKE__ALLOWED_ORIGINS": "https://WWW.Example.com,http://127.0.0.1:8080",
        }
    )
    assert settings.intake.enabled
    assert settings.intake.allowed_origins == ("https://www.example.com", "http://127.0.0.1:8080")


def test_a_confirmation_link_forwarded_to_us_is_never_stored():
    token = IntakeTokens("secret", ttl=3600).make(12, "n0nce-Abc_9")
    text = f"Fwd:\n> Confirm: http://q.test/intake/confirm/{token}\n> Thanks"
    assert scrub_secrets(text) == "Fwd:\n> Confirm: [confirmation link]\n> Thanks"
