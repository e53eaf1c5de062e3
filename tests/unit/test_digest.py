"""compose_digest: the daily digest mail, from values to an EmailMessage."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import Environment

from qmail.core.compose import mail_environment
from qmail.core.digest import Digest, DigestLine, DigestTask, compose_digest, first_line
from qmail.core.mail import Address

TEMPLATES = Path(__file__).parents[2] / "templates" / "mail"
LINK = "https://q.example.com/auth/magic/m4g1c"
HOSTILE = "<script>alert(1)</script>"

DIGEST = Digest(
    recipient=Address("carol@acme.test", "Carol"),
    tasks=(
        DigestTask(
            3,
            "Printer on fire",
            LINK,
            (DigestLine("Alice", "It is on fire again."), DigestLine("Bob", HOSTILE)),
            more=2,
        ),
        DigestTask(7, "Invoice", LINK + "2", (DigestLine("Alice", "Sent."),)),
    ),
    settings_url="https://q.example.com/settings",
    message_id="d-1@example.com",
    domain="example.com",
    team_name="qmail",
    loop_marker="example.com",
)


@pytest.fixture
def env() -> Environment:
    return mail_environment(TEMPLATES)


def test_digest_lists_each_task_its_link_and_its_new_messages(env: Environment) -> None:
    message = compose_digest(DIGEST, env)
    assert message["Subject"] == "Daily digest: news in 2 tasks"
    assert message["From"] == "qmail <noreply@example.com>"
    assert message["To"] == "Carol <carol@acme.test>"
    assert message["Reply-To"] is None and message["In-Reply-To"] is None
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.splitlines()[:9] == [
        "What happened in your tasks since your last digest:",
        "",
        "#3 Printer on fire",
        "- Alice: It is on fire again.",
        f"- Bob: {HOSTILE}",
        "- and 2 more",
        f"Open in qmail: {LINK}",
        "",
        "#7 Invoice",
    ]
    assert "https://q.example.com/settings" in text


def test_digest_html_escapes_what_people_wrote(env: Environment) -> None:
    html = compose_digest(DIGEST, env).get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert HOSTILE not in html and "&lt;script&gt;" in html
    assert f'href="{LINK}"' in html and "Open #3 in qmail" in html


def test_one_task_is_not_plural(env: Environment) -> None:
    one = Digest(**{**DIGEST.__dict__, "tasks": DIGEST.tasks[:1]})
    assert compose_digest(one, env)["Subject"] == "Daily digest: news in 1 task"


def test_first_line_skips_blank_lines_and_squeezes_spaces() -> None:
    assert first_line("\r\n  \r\n  Dear   team,\r\nmore") == "Dear team,"
    assert len(first_line("word " * 100)) == 120
