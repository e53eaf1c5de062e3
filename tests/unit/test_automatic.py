"""Telling machine-sent mail (auto-replies, bounces, bulk) from mail people write."""

from __future__ import annotations

import pytest

from qmail.core.automatic import detect_automatic

PLAIN = "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted: auto-replied"),
        ({"auto-submitted": "auto-generated; owner-email=x@y"}, "Auto-Submitted: auto-gen"),
        ([("Precedence", "bulk")], "Precedence: bulk"),
        ([("Precedence", " JUNK ")], "Precedence: junk"),
        ({"Precedence": "list", "List-Id": "<dev.example.org>"}, "Precedence: list"),
        ({"X-Autoreply": "yes"}, "X-Autoreply: yes"),
        ({"X-Autorespond": ""}, "X-Autorespond"),
    ],
)
def test_machine_headers_mark_mail_automatic(headers: object, reason: str) -> None:
    found = detect_automatic(headers, "Hello", PLAIN)  # type: ignore[arg-type]
    assert found is not None
    assert found.startswith(reason)


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "no"},
        {"Auto-Submitted": "No ; comment"},
        {"Precedence": "first-class"},
        {"List-Id": "Developers <dev.lists.example.org>", "List-Unsubscribe": "<mailto:x@y>"},
        {"X-Auto-Response-Suppress": "All"},
        {"X-Autoreply": "no"},
        {},
    ],
)
def test_person_written_mail_is_not_automatic(headers: dict[str, str]) -> None:
    assert detect_automatic(headers, "Re: [#17] Quarterly numbers", PLAIN) is None


def test_first_header_of_a_name_wins() -> None:
    headers = [("Auto-Submitted", "no"), ("Auto-Submitted", "auto-replied")]
    assert detect_automatic(headers, "Hi", PLAIN) is None


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Quarterly numbers",
        "Out of the office",
        "Automatic reply: [#17] Quarterly numbers",
        "Auto: Re: invoice",
        "Autoreply: thanks",
        "Auto-Reply",
        "Abwesenheitsnotiz: Angebot",
        "Automatische Antwort: Angebot",
        "Réponse automatique : Devis",
        "Absence du bureau",
        "Absence: Devis",
        "Risposta automatica: fattura",
        "Respuesta automática: factura",
        "Respuesta automatica: factura",
        "Resposta automática: fatura",
        "Afwezig: offerte",
        "Автоответ: Сверка",
        "Автоматический ответ: Сверка",
        "Нет на месте",
    ],
)
def test_out_of_office_subjects_in_several_languages(subject: str) -> None:
    assert detect_automatic({}, subject, PLAIN) == "out-of-office subject"


@pytest.mark.parametrize(
    "subject",
    [
        "Absence of tests in module parse",
        "Re: Out of office next week?",
        "Automatically generated reports are broken",
        "Autonomous driving",
        "",
    ],
)
def test_subjects_that_only_mention_absence_are_not_automatic(subject: str) -> None:
    assert detect_automatic({}, subject, PLAIN) is None


def test_delivery_status_report_is_automatic() -> None:
    content_type = 'multipart/report; report-type="delivery-status"; boundary="b"'
    assert detect_automatic({}, "Hi", content_type) == "delivery status notification"


def test_report_without_type_is_still_a_report() -> None:
    assert detect_automatic({}, "Hi", "multipart/report") == "delivery status notification"


def test_read_receipt_is_automatic() -> None:
    content_type = "multipart/report; report-type=disposition-notification; boundary=b"
    assert detect_automatic({}, "Read: Hi", content_type) == "read receipt"


@pytest.mark.parametrize(
    ("sender", "subject"),
    [
        ("MAILER-DAEMON@mx.example.net (Mail Delivery System)", "Undelivered Mail"),
        ("Mail Delivery Subsystem <postmaster@relay.example>", "Delivery Status Notification"),
        ("postmaster@example.org", "Mail delivery failed: returning message to sender"),
        ("<MAILER-DAEMON@example.org>", "Undeliverable: Quarterly numbers"),
    ],
)
def test_bounces_from_mailer_daemon_are_automatic(sender: str, subject: str) -> None:
    found = detect_automatic({"From": sender}, subject, PLAIN)
    assert found is not None
    assert found.startswith("bounce from")


def test_postmaster_writing_a_normal_mail_is_not_automatic() -> None:
    headers = {"From": "postmaster@example.org"}
    assert detect_automatic(headers, "Your DNS settings", PLAIN) is None
