"""A notification composed once and filled in per recipient reads exactly like one composed
for that recipient alone: same headers, same text, same HTML, through the stdlib parser."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import string
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import Environment

from qmail.core.compose import (
    Notification,
    acknowledgement_head,
    body_text,
    compose_notification,
    mail_environment,
    notification_bodies,
    notification_head,
    notification_parts,
)
from qmail.core.mail import Address
from qmail.core.stencil import (
    PLACEHOLDERS,
    File,
    Personal,
    acknowledgement_block,
    fill,
    fill_head,
    fill_text,
    header_block,
    make_stencil,
    notification_block,
    personal_from_json,
    personal_json,
    with_files,
)
from tests.unit.test_compose import ACK, NOTIFICATION, TEMPLATES

DATE = datetime(2024, 6, 3, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def env() -> Environment:
    return mail_environment(TEMPLATES)


HEADERS = (
    "From",
    "To",
    "Reply-To",
    "Subject",
    "Message-ID",
    "Date",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Auto-Submitted",
    "X-Auto-Response-Suppress",
    "MIME-Version",
)


def personal_of(n: Notification) -> Personal:
    return Personal(
        recipient=n.recipient,
        reply_address=n.reply_address,
        private_address=n.private_address,
        magic_link=n.magic_link,
        unsubscribe_url=n.unsubscribe_url,
        message_id=n.message_id,
        in_reply_to=n.in_reply_to,
        references=n.references,
    )


def with_placeholders(n: Notification) -> Notification:
    return dataclasses.replace(
        n,
        recipient=PLACEHOLDERS.recipient,
        reply_address=PLACEHOLDERS.reply_address,
        private_address=PLACEHOLDERS.private_address if n.recipient_is_team else None,
        magic_link=PLACEHOLDERS.magic_link,
        unsubscribe_url=PLACEHOLDERS.unsubscribe_url,
        message_id=PLACEHOLDERS.message_id,
        in_reply_to=None,
        references=(),
    )


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def seen(message: EmailMessage) -> tuple[dict[str, str], str, str]:
    """What a mail client shows: decoded header values, text part, HTML part."""
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    headers = {name: str(message[name]) for name in HEADERS if message[name] is not None}
    return headers, text.get_content(), html.get_content()


RECIPIENTS = {
    "a team member": {},
    "a client, never shown the private address": {
        "recipient": Address("carol@acme.test", "Carol"),
        "recipient_is_team": False,
        "private_address": None,
    },
    "a name and text that are not ASCII": {
        "recipient": Address("joerg@client.test", "Jörg Müller-Lüdenscheidt"),
        "author": Address("anna@client.test", "Анна Петрова"),
        "title": "Счёт не пришёл",
        "text": "Добрый день!\nСчёт за июнь так и не пришёл.",
    },
    "a line longer than a mail line may be": {"text": "x" * 1500},
    "a long thread of earlier notifications": {
        "references": tuple(f"qmail.{n:032x}@example.com" for n in range(12)),
        "in_reply_to": "qmail.last@example.com",
    },
    "a name the header must quote": {"recipient": Address("bob@example.com", "Jones, Bob (IT)")},
    "a link that HTML must escape": {"magic_link": "https://q.example.com/login?a=1&b=<2>"},
}


@pytest.mark.parametrize("changes", RECIPIENTS.values(), ids=RECIPIENTS.keys())
def test_a_filled_copy_reads_like_a_mail_composed_for_its_recipient(
    env: Environment, changes: dict[str, object]
) -> None:
    n = dataclasses.replace(NOTIFICATION, date=DATE, **changes)  # type: ignore[arg-type]
    alone = compose_notification(n, env)
    stencil = make_stencil(*notification_parts(with_placeholders(n), env))
    raw, text = fill(stencil, personal_of(n))
    assert seen(parsed(raw)) == seen(parsed(alone.as_bytes()))
    assert text == body_text(alone)
    assert b"placeholder.invalid" not in raw
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_one_stencil_serves_each_recipient_with_only_their_own_values(env: Environment) -> None:
    n = dataclasses.replace(NOTIFICATION, date=DATE)
    stencil = make_stencil(*notification_parts(with_placeholders(n), env))
    bob = personal_of(n)
    dan = dataclasses.replace(
        bob,
        recipient=Address("dan@example.com", "Dan"),
        reply_address="reply+d4n@example.com",
        private_address="reply+d4npr1v@example.com",
        magic_link="https://q.example.com/auth/magic/d4nl1nk",
        unsubscribe_url="https://q.example.com/unsubscribe/d4n",
        message_id="n-2@example.com",
    )
    bob_raw, _ = fill(stencil, bob)
    dan_raw, _ = fill(stencil, dan)
    for secret in (bob.reply_address, bob.private_address, bob.magic_link, bob.unsubscribe_url):
        assert secret is not None
        assert secret.encode() in bob_raw and secret.encode() not in dan_raw
    assert parsed(dan_raw)["To"].addresses[0].addr_spec == "dan@example.com"


def test_the_boundary_occurs_in_neither_body(env: Environment) -> None:
    n = dataclasses.replace(NOTIFICATION, date=DATE)
    stencil = make_stencil(*notification_parts(with_placeholders(n), env))
    assert stencil.boundary.decode() not in stencil.text + stencil.html
    raw, _ = fill(stencil, personal_of(n))
    assert raw.count(b"--" + stencil.boundary) == 3  # two parts and the end


def test_an_address_no_header_can_hold_is_refused_as_composing_refuses_it(
    env: Environment,
) -> None:
    n = dataclasses.replace(NOTIFICATION, date=DATE, recipient=Address("taro..yamada@x.jp", ""))
    with pytest.raises(ValueError):
        compose_notification(n, env)
    stencil = make_stencil(*notification_parts(with_placeholders(n), env))
    with pytest.raises(ValueError):
        fill(stencil, personal_of(n))
    with pytest.raises(ValueError):  # (what the notify stage checks, to queue it failed)
        fill_head(stencil, personal_of(n))


@pytest.mark.parametrize("changes", RECIPIENTS.values(), ids=RECIPIENTS.keys())
def test_a_copy_kept_as_its_recipients_values_is_filled_in_byte_for_byte(
    env: Environment, changes: dict[str, object]
) -> None:
    """The outbox keeps a notification's stencil once and each recipient's values as
    JSON: filled in from them, the copy is the one filled in when it was composed."""
    n = dataclasses.replace(NOTIFICATION, date=DATE, **changes)  # type: ignore[arg-type]
    stencil = make_stencil(*notification_parts(with_placeholders(n), env))
    personal = personal_of(n)
    kept = personal_from_json(personal_json(personal))
    assert kept == personal
    raw, text = fill(stencil, personal)
    assert fill(stencil, kept) == (raw, text)
    assert fill_text(stencil.text, kept) == text  # what a reply quoting it is matched with
    assert raw.startswith(fill_head(stencil, kept) + b"\r\n")


def test_the_team_and_everybody_else_keep_the_files_they_carry_once(env: Environment) -> None:
    """Both stencils of a message carry the same files: one keeps them, the other takes
    them over with its own boundary and is then the stencil it was made as."""
    files = (
        File("invoice.pdf", "application/pdf", bytes(range(256)) * 40),
        File("Grüße.txt", "text/plain", b"--=_qmail_m not a boundary\r\n"),
    )
    team = with_placeholders(dataclasses.replace(NOTIFICATION, date=DATE))
    client = dataclasses.replace(team, recipient_is_team=False, private_address=None)
    made = make_stencil(*notification_parts(team, env), files)
    other = make_stencil(*notification_parts(client, env), files)
    assert other.mixed != made.mixed and other.files != made.files
    taken_over = with_files(dataclasses.replace(other, files=b""), made.files, made.mixed)
    assert taken_over == other
    personal = personal_of(dataclasses.replace(NOTIFICATION, recipient_is_team=False))
    assert fill(taken_over, personal) == fill(other, personal)


def test_the_team_and_everybody_else_share_one_header_block(env: Environment) -> None:
    """Only the bodies differ between the team's stencil and a client's: the header
    block folded for one serves the other, and gives the stencil composed afresh."""
    team = with_placeholders(dataclasses.replace(NOTIFICATION, date=DATE))
    client = dataclasses.replace(team, recipient_is_team=False, private_address=None)
    made = make_stencil(*notification_parts(team, env))
    shared = make_stencil(made.fields, *notification_bodies(client, env))
    assert shared == make_stencil(*notification_parts(client, env))
    assert shared.text != made.text


TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90) | st.text(
    string.ascii_letters + " " * 12 + string.punctuation.replace('"', "").replace("\\", ""),
    max_size=120,
)
ANY_TEXT = TEXT | st.text(max_size=40)


@given(
    name=ANY_TEXT,
    team=ANY_TEXT,
    title=TEXT | st.lists(st.sampled_from(["ab", "x" * 40, " ", "=?", "é", '"'])).map("".join),
    number=st.integers(1, 10**9),
)
@settings(max_examples=400, deadline=None)
def test_a_header_block_written_directly_is_the_one_the_stdlib_writes(
    name: str, team: str, title: str, number: int
) -> None:
    n = with_placeholders(
        dataclasses.replace(
            NOTIFICATION,
            author=Address("anna@client.test", name),
            team_name=team,
            title=title,
            number=number,
            date=DATE,
        )
    )
    direct = notification_block(n)
    assert direct == header_block(notification_head(n)) or (direct is None and not team.isascii())


@pytest.mark.parametrize("changes", RECIPIENTS.values(), ids=RECIPIENTS.keys())
def test_a_header_block_written_directly_is_the_stdlibs_for_every_recipient(
    changes: dict[str, object],
) -> None:
    n = with_placeholders(dataclasses.replace(NOTIFICATION, **changes))
    assert notification_block(n) == header_block(notification_head(n))
    long = dataclasses.replace(n, title="word " * 20, author=Address("a@x.test", "Ann " * 20))
    assert notification_block(long) == header_block(notification_head(long))
    quoted = dataclasses.replace(n, author=Address("a@x.test", 'Anna "Ann" Lee, Acme'))
    assert notification_block(quoted) == header_block(notification_head(quoted))


ACK_VARIANTS = {
    "plain": {},
    "a team name that needs quotes": {"team_name": "Acme (support), Inc."},
    "a team name that is not ASCII": {"team_name": "Служба поддержки"},
    "a long team name": {"team_name": "The Very Long Name Of A Support Team " * 2},
    "a title that is not ASCII": {"title": "Счёт не пришёл"},
    "a long title": {"title": "word " * 30},
    "a long reply address": {"reply_address": f"reply+{'1' * 12}-{'2' * 12}-b-{'a' * 26}@x.test"},
    "an odd Message-ID": {"message_id": "a b@c@d"},
}


@pytest.mark.parametrize("changes", ACK_VARIANTS.values(), ids=ACK_VARIANTS.keys())
def test_an_acknowledgements_header_block_written_directly_is_the_stdlibs(
    changes: dict[str, object],
) -> None:
    ack = dataclasses.replace(ACK, date=DATE, **changes)
    assert acknowledgement_block(ack) == header_block(acknowledgement_head(ack))
