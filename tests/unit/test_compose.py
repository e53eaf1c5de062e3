"""The compose stage: every outbound mail, rendered and read back with the stdlib parser."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import os
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from jinja2 import Environment, UndefinedError

from qmail.core.compose import (
    Acknowledgement,
    AttachmentNote,
    LoginLink,
    Notification,
    Refusal,
    Refused,
    body_text,
    compose_acknowledgement,
    compose_login_link,
    compose_notification,
    compose_refusal,
    mail_environment,
)
from qmail.core.headers import wire_bytes
from qmail.core.mail import Address

TEMPLATES = Path(__file__).parents[2] / "templates" / "mail"
HIDDEN = "Hidden from the client: only the team sees this discussion."
REPLY = "reply+t0k3n@example.com"
PRIVATE = "reply+pr1v4te@example.com"
MAGIC = "https://q.example.com/auth/magic/m4g1c"
UNSUBSCRIBE = "https://q.example.com/unsubscribe/uns"

NOTIFICATION = Notification(
    number=12,
    title="Printer on fire",
    status="open",
    tags=("hardware", "urgent"),
    hidden=False,
    author=Address("alice@client.com", "Alice Smith"),
    text="It is on fire again.\nPlease help.",
    context="Did you try turning it off?",
    recipient=Address("bob@example.com", "Bob Jones"),
    recipient_is_team=True,
    reply_address=REPLY,
    private_address=PRIVATE,
    magic_link=MAGIC,
    unsubscribe_url=UNSUBSCRIBE,
    message_id="n-1@example.com",
    in_reply_to="prev@example.com",
    references=("root@example.com",),
    domain="example.com",
    team_name="qmail",
    loop_marker="example.com",
    attachments=(AttachmentNote("photo.jpg", "image/jpeg", 2048),),
)
ACK = Acknowledgement(
    number=7,
    title="Invoice missing",
    recipient=Address("carol@client.com", "Carol"),
    reply_address=REPLY,
    magic_link=MAGIC,
    message_id="ack-1@example.com",
    in_reply_to="orig@client.com",
    domain="example.com",
    team_name="qmail",
    loop_marker="example.com",
)
LOGIN = LoginLink(
    recipient=Address("dave@example.com", "Dave"),
    magic_link=MAGIC,
    ttl_minutes=1440,
    domain="example.com",
    team_name="qmail",
    message_id="login-1@example.com",
    loop_marker="example.com",
    from_address="noreply@example.com",
)
REFUSAL = Refusal(
    number=12,
    title="Printer on fire",
    recipient=Address("bob@example.com", "Bob Jones"),
    refused=(Refused("eve@client.com", "not a team member"),),
    reply_address=REPLY,
    message_id="ref-1@example.com",
    in_reply_to="bobs-mail@example.com",
    domain="example.com",
    team_name="qmail",
    loop_marker="example.com",
)


@pytest.fixture(scope="module")
def env() -> Environment:
    return mail_environment(TEMPLATES)


def notification(**changes: object) -> Notification:
    return dataclasses.replace(NOTIFICATION, **changes)  # type: ignore[arg-type]


def read_back(message: EmailMessage) -> EmailMessage:
    """The message as a recipient's client sees it: bytes on the wire, parsed again."""
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    """The decoded text and HTML parts, with the ``\\n`` line ends a client shows."""
    parsed = read_back(message)
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and html is not None
    return normal(text.get_content()), normal(html.get_content())


def normal(content: str) -> str:
    return content.replace("\r\n", "\n")


def raw_headers(message: EmailMessage) -> str:
    return message.as_bytes().split(b"\r\n\r\n", 1)[0].decode("ascii")


# --- notification headers ---------------------------------------------------------------


def test_notification_is_from_the_reply_address_not_the_author(env: Environment) -> None:
    parsed = read_back(compose_notification(NOTIFICATION, env))
    sender = parsed["From"].addresses[0]
    assert sender.display_name == "Alice Smith (via qmail)"
    assert sender.addr_spec == REPLY
    assert "alice@client.com" not in str(parsed["From"])
    assert parsed["Reply-To"].addresses[0].addr_spec == REPLY


def test_notification_is_addressed_to_the_recipient_by_name(env: Environment) -> None:
    recipient = read_back(compose_notification(NOTIFICATION, env))["To"].addresses[0]
    assert (recipient.display_name, recipient.addr_spec) == ("Bob Jones", "bob@example.com")


def test_notification_subject_is_task_number_and_title(env: Environment) -> None:
    assert read_back(compose_notification(NOTIFICATION, env))["Subject"] == "[#12] Printer on fire"


def test_notification_threads_under_the_previous_message(env: Environment) -> None:
    parsed = read_back(compose_notification(NOTIFICATION, env))
    assert parsed["Message-ID"] == "<n-1@example.com>"
    assert parsed["In-Reply-To"] == "<prev@example.com>"
    assert parsed["References"] == "<root@example.com> <prev@example.com>"


def test_references_do_not_repeat_the_parent(env: Environment) -> None:
    refs = ("root@example.com", "prev@example.com")
    parsed = read_back(compose_notification(notification(references=refs), env))
    assert parsed["References"] == "<root@example.com> <prev@example.com>"


def test_first_notification_of_a_thread_has_no_thread_headers(env: Environment) -> None:
    parsed = read_back(compose_notification(notification(in_reply_to=None, references=()), env))
    assert parsed["In-Reply-To"] is None and parsed["References"] is None


def test_notification_is_marked_automatic_without_precedence(env: Environment) -> None:
    parsed = read_back(compose_notification(NOTIFICATION, env))
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["X-Qmail-Loop"] == "example.com"
    assert parsed["Precedence"] is None


def test_date_is_left_to_the_transport_unless_given(env: Environment) -> None:
    assert read_back(compose_notification(NOTIFICATION, env))["Date"] is None
    when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    parsed = read_back(compose_notification(notification(date=when), env))
    assert parsed["Date"].datetime == when


def test_notification_has_a_list_id_per_task_and_one_click_unsubscribe(env: Environment) -> None:
    parsed = read_back(compose_notification(NOTIFICATION, env))
    assert parsed["List-Id"] == '"qmail task 12" <task-12.example.com>'
    assert parsed["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_long_unsubscribe_url_is_sent_verbatim_not_encoded(env: Environment) -> None:
    url = "https://q.example.com/unsubscribe/" + "x" * 150
    message = compose_notification(notification(unsubscribe_url=url), env)
    assert f"List-Unsubscribe: <{url}>\r\n" in raw_headers(message)
    assert read_back(message)["List-Unsubscribe"] == f"<{url}>"


def test_non_ascii_team_name_is_encoded_in_list_id(env: Environment) -> None:
    message = compose_notification(notification(team_name="Команда"), env)
    assert "List-Id: =?utf-8?" in raw_headers(message)
    assert read_back(message)["List-Id"] == "Команда task 12 <task-12.example.com>"


def test_cyrillic_author_name_is_rfc2047_encoded(env: Environment) -> None:
    author = Address("ivan@client.ru", "Иван Петров")
    message = compose_notification(notification(author=author), env)
    from_line = raw_headers(message).split("From:", 1)[1].split("\r\nTo:")[0]
    assert "=?utf-8?" in from_line
    assert read_back(message)["From"].addresses[0].display_name == "Иван Петров (via qmail)"


def test_non_ascii_loop_marker_is_encoded_not_sent_raw(env: Environment) -> None:
    message = compose_notification(notification(loop_marker="пример.рф"), env)
    assert "X-Qmail-Loop: =?utf-8?" in raw_headers(message)
    assert read_back(message)["X-Qmail-Loop"] == "пример.рф"


def test_author_without_a_name_is_shown_by_address(env: Environment) -> None:
    message = compose_notification(notification(author=Address("alice@client.com")), env)
    assert read_back(message)["From"].addresses[0].display_name == "alice@client.com (via qmail)"
    assert "alice@client.com wrote" in parts(message)[0]


def test_crlf_in_title_and_names_never_creates_a_header(env: Environment) -> None:
    message = compose_notification(
        notification(
            title="Hi\r\nBcc: evil@x",
            author=Address("alice@client.com", "Alice\nBcc: evil@x"),
            recipient=Address("bob@example.com", "Bob\r\nX-Evil: 1"),
            status="open\r\nX-Evil: 2",
        ),
        env,
    )
    parsed = read_back(message)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    assert parsed["Subject"] == "[#12] Hi Bcc: evil@x"
    assert parsed["From"].addresses[0].display_name == "Alice Bcc: evil@x (via qmail)"
    assert parsed["To"].addresses[0].display_name == "Bob X-Evil: 1"
    lines = raw_headers(message).split("\r\n")
    assert not any(line.startswith(("Bcc", "X-Evil")) for line in lines)


def test_crlf_in_message_ids_never_creates_a_header(env: Environment) -> None:
    message = compose_notification(
        notification(
            message_id="n-1@example.com\r\nBcc: evil@x",
            in_reply_to="<prev@example.com>\nX-Evil: 1",
            references=("root@example.com\r\n", ""),
        ),
        env,
    )
    parsed = read_back(message)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    assert parsed["Message-ID"] == "<n-1@example.comBccevilx>"
    assert parsed["References"] == "<root@example.com> <prev@example.comX-Evil:1>"


def test_ascii_headers_only_and_crlf_line_ends(env: Environment) -> None:
    author = Address("ivan@client.ru", "Иван Петров")
    raw = compose_notification(notification(author=author, title="Принтер горит"), env).as_bytes()
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii()
    assert raw.count(b"\n") == raw.count(b"\r\n")


# --- notification body -------------------------------------------------------------------


def test_notification_is_multipart_alternative_text_then_html(env: Environment) -> None:
    parsed = read_back(compose_notification(NOTIFICATION, env))
    assert parsed.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in parsed.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    assert not any(part.get_filename() for part in parsed.walk())


@pytest.mark.parametrize("part", [0, 1], ids=["text", "html"])
def test_notification_shows_author_text_context_status_tags_files_and_link(
    env: Environment, part: int
) -> None:
    body = parts(compose_notification(NOTIFICATION, env))[part]
    for expected in (
        "Alice Smith",
        "It is on fire again.",
        "Please help.",
        "Earlier in this discussion:",
        "Did you try turning it off?",
        "open",
        "hardware, urgent",
        "photo.jpg (2 KB)",
        "Open in qmail",
        MAGIC,
    ):
        assert expected in body, expected


def test_text_part_quotes_the_context_and_cuts_it_to_ten_lines(env: Environment) -> None:
    context = "\n".join(f"line {i}" for i in range(1, 16))
    text = parts(compose_notification(notification(context=context), env))[0]
    assert "> line 1\n" in text and "> line 10\n" in text
    assert "line 11" not in text


def test_no_context_means_no_earlier_section(env: Environment) -> None:
    text, html = parts(compose_notification(notification(context="", attachments=()), env))
    assert "Earlier" not in text and "Earlier" not in html
    assert "Attachments" not in text and "Attachments" not in html


def test_html_part_escapes_markup_and_text_part_keeps_it(env: Environment) -> None:
    evil = "<script>alert('x')</script>"
    changed = notification(text=evil, title=evil, context=evil, tags=(evil,))
    text, html = parts(compose_notification(changed, env))
    assert evil in text
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_html_part_has_inline_styles_and_no_remote_images(env: Environment) -> None:
    html = parts(compose_notification(NOTIFICATION, env))[1]
    assert "<img" not in html and "<link" not in html and "<style" not in html
    assert 'style="' in html


def test_team_member_gets_the_private_address_as_mailto_link(env: Environment) -> None:
    text, html = parts(compose_notification(NOTIFICATION, env))
    assert f"Reply privately to the team: mailto:{PRIVATE}" in text
    assert f'href="mailto:{PRIVATE}"' in html and "Reply privately to the team" in html


def test_external_recipient_never_gets_the_private_address(env: Environment) -> None:
    message = compose_notification(notification(recipient_is_team=False), env)
    text, html = parts(message)
    for body in (text, html, message.as_string()):
        assert PRIVATE not in body and "privately" not in body


def test_external_recipient_never_reads_the_teams_tags(env: Environment) -> None:
    message = compose_notification(notification(recipient_is_team=False), env)
    text, html = parts(message)
    for body in (text, html, message.as_string()):
        assert "hardware" not in body and "urgent" not in body and "Tags" not in body
    assert "Status: open" in text and "Status: <strong>open</strong>" in html


def test_hidden_branch_is_stated_at_the_top_for_the_team(env: Environment) -> None:
    text, html = parts(compose_notification(notification(hidden=True), env))
    assert text.startswith(HIDDEN)
    assert HIDDEN in html
    assert html.index(HIDDEN) < html.index("Alice Smith")


def test_visible_branch_has_no_hidden_statement(env: Environment) -> None:
    text, html = parts(compose_notification(NOTIFICATION, env))
    assert "Hidden" not in text and "Hidden" not in html


def test_external_recipient_never_reads_about_hidden_branches(env: Environment) -> None:
    changed = notification(hidden=True, recipient_is_team=False)
    text, html = parts(compose_notification(changed, env))
    assert "Hidden" not in text and "hidden" not in html.lower()


# --- line lengths ------------------------------------------------------------------------


def every_kind(env: Environment) -> list[EmailMessage]:
    long_title = "Очень длинный заголовок задачи " * 6
    long_text = ("Слово " * 60 + "\n") * 3 + "x" * 300
    return [
        compose_notification(
            notification(
                title=long_title,
                text=long_text,
                context=long_text,
                author=Address("ivan@client.ru", "Иван Петров " * 5),
                references=tuple(f"ref-{i}-{'r' * 40}@example.com" for i in range(8)),
                magic_link=MAGIC + "/" + "m" * 200,
                unsubscribe_url=UNSUBSCRIBE + "/" + "u" * 120,
                team_name="A team with a rather long name " * 3,
            ),
            env,
        ),
        compose_acknowledgement(dataclasses.replace(ACK, title=long_title), env),
        compose_login_link(dataclasses.replace(LOGIN, magic_link=MAGIC + "m" * 200), env),
        compose_refusal(dataclasses.replace(REFUSAL, title=long_title), env),
    ]


def test_lines_stay_within_78_and_never_exceed_998(env: Environment) -> None:
    for message in every_kind(env):
        lines = message.as_bytes().split(b"\r\n")
        assert max(len(line) for line in lines) <= 998
        long = [line for line in lines if len(line) > 78]
        # Only a URL too long to fold may pass 78 columns; it is never encoded.
        assert all(line.startswith(b"List-Unsubscribe: <https://") for line in long), long


# --- acknowledgement, login link, refusal --------------------------------------------------


def test_acknowledgement_answers_the_senders_mail_from_the_team(env: Environment) -> None:
    parsed = read_back(compose_acknowledgement(ACK, env))
    sender = parsed["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("qmail", REPLY)
    assert parsed["Reply-To"].addresses[0].addr_spec == REPLY
    assert parsed["To"].addresses[0].addr_spec == "carol@client.com"
    assert parsed["Subject"] == "[#7] Invoice missing"
    assert parsed["Message-ID"] == "<ack-1@example.com>"
    assert parsed["In-Reply-To"] == "<orig@client.com>"
    assert parsed["References"] == "<orig@client.com>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["X-Qmail-Loop"] == "example.com"
    assert parsed["List-Id"] is None and parsed["Precedence"] is None


@pytest.mark.parametrize("part", [0, 1], ids=["text", "html"])
def test_acknowledgement_names_the_task_and_how_to_add_to_it(env: Environment, part: int) -> None:
    body = parts(compose_acknowledgement(ACK, env))[part]
    assert "We received your message" in body
    assert "#7" in body and "Invoice missing" in body
    assert "Reply to this mail to add to it" in body
    assert MAGIC in body


def test_login_link_comes_from_the_noreply_address(env: Environment) -> None:
    parsed = read_back(compose_login_link(LOGIN, env))
    sender = parsed["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("qmail", "noreply@example.com")
    assert parsed["To"].addresses[0].addr_spec == "dave@example.com"
    assert parsed["Subject"] == "Your sign-in link for qmail"
    assert parsed["Message-ID"] == "<login-1@example.com>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Qmail-Loop"] == "example.com"
    for absent in ("Reply-To", "In-Reply-To", "References", "List-Id", "Date"):
        assert parsed[absent] is None, absent


@pytest.mark.parametrize(("minutes", "wording"), [(1440, "1 day"), (15, "15 minutes")])
def test_login_link_says_how_long_it_works(env: Environment, minutes: int, wording: str) -> None:
    text, html = parts(compose_login_link(dataclasses.replace(LOGIN, ttl_minutes=minutes), env))
    for body in (text, html):
        assert MAGIC in body and f"for {wording}" in body


def test_refusal_lists_the_addresses_kept_out_and_why(env: Environment) -> None:
    message = compose_refusal(REFUSAL, env)
    parsed = read_back(message)
    assert parsed["Subject"] == "[#12] Printer on fire"
    assert parsed["From"].addresses[0].addr_spec == REPLY
    assert parsed["Reply-To"].addresses[0].addr_spec == REPLY
    assert parsed["In-Reply-To"] == "<bobs-mail@example.com>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    for body in parts(message):
        assert "These addresses were not added to the hidden discussion" in body
        assert "eve@client.com" in body and "not a team member" in body
        assert "Only team members can join it." in body


def test_refusal_escapes_reasons_in_html(env: Environment) -> None:
    refusal = dataclasses.replace(REFUSAL, refused=(Refused("a@b.c", "<b>no</b>"),))
    text, html = parts(compose_refusal(refusal, env))
    assert "<b>no</b>" in text and "&lt;b&gt;no&lt;/b&gt;" in html


# --- body_text and the environment ---------------------------------------------------------


def test_body_text_is_the_text_part_as_a_recipient_reads_it(env: Environment) -> None:
    author = Address("ivan@client.ru", "Иван Петров")
    message = compose_notification(notification(author=author, text="Привет\r\nмир"), env)
    text = body_text(message)
    assert "\r" not in text
    assert "Иван Петров wrote" in text and "Привет\nмир" in text
    assert text == parts(message)[0].rstrip()


def test_body_text_of_a_mail_without_text_part_is_empty() -> None:
    message = EmailMessage()
    message.set_content("<p>only html</p>", subtype="html")
    assert body_text(message) == ""


def test_environment_escapes_html_templates_only(env: Environment) -> None:
    assert env.autoescape("mail.html") is True  # type: ignore[operator]
    assert env.autoescape("mail.txt") is False  # type: ignore[operator]


def test_environment_refuses_unknown_names() -> None:
    with pytest.raises(UndefinedError):
        mail_environment(TEMPLATES).from_string("{{ nothing }}").render()


# --- internationalised addresses (RFC 6531/6532) ----------------------------------------------

JOERG = Address("jörg@client.test", "Jörg Müller")


def test_mail_to_an_internationalised_address_has_utf8_headers_and_a_7bit_body(
    env: Environment,
) -> None:
    ack = compose_acknowledgement(dataclasses.replace(ACK, recipient=JOERG), env)
    raw = wire_bytes(ack)
    head, body = raw.split(b"\r\n\r\n", 1)
    assert b"\r\nTo: J\xc3\xb6rg M\xc3\xbcller <j\xc3\xb6rg@client.test>\r\n" in head
    assert body.isascii() and raw.count(b"\n") == raw.count(b"\r\n")
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["In-Reply-To"] == "<orig@client.com>"


def test_notification_to_an_internationalised_address_reads_back_whole(env: Environment) -> None:
    raw = wire_bytes(compose_notification(notification(recipient=JOERG), env))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(parsed["To"]) == "Jörg Müller <jörg@client.test>"
    assert parsed["Subject"] == "[#12] Printer on fire"
    assert parsed["Reply-To"].addresses[0].addr_spec == REPLY


def test_mail_to_an_ascii_address_keeps_ascii_headers_on_the_wire(env: Environment) -> None:
    raw = wire_bytes(compose_notification(notification(title="Принтер горит"), env))
    assert raw.split(b"\r\n\r\n", 1)[0].isascii()


def test_mail_templates_are_read_from_disk_once_per_process(tmp_path: Path) -> None:
    """Templates ship with the release: composing a mail never looks at the disk again."""
    folder = tmp_path / "mail"
    folder.mkdir()
    for template in TEMPLATES.iterdir():
        (folder / template.name).write_bytes(template.read_bytes())
    env = mail_environment(folder)
    before = compose_notification(NOTIFICATION, env)
    changed = folder / "notification.txt"
    changed.write_text("changed on disk\n")
    later = changed.stat().st_mtime + 60  # (however coarse the file system's clock)
    os.utime(changed, (later, later))
    after = compose_notification(NOTIFICATION, env)
    assert after.get_body(("plain",)).get_content() == before.get_body(("plain",)).get_content()
    assert "changed on disk" not in after.get_body(("plain",)).get_content()
    assert "changed on disk" in mail_environment(folder).get_template("notification.txt").render(
        **dataclasses.asdict(NOTIFICATION)
    )
