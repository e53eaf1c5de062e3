"""Our secrets stay with their recipient: every token is scrubbed from inbound mail."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import hashlib
import random
import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from itsdangerous import URLSafeTimedSerializer

from qmail.auth.signed import LinkTokens, ReplyTokens
from qmail.core import secrets
from qmail.core.compose import Notification, compose_notification, mail_environment
from qmail.core.html import html_to_text
from qmail.core.mail import Address, Attachment, Mail, ReplyTarget
from qmail.core.parse import parse_mail
from qmail.core.secrets import (
    find_secrets,
    is_textual,
    scrub_bytes,
    scrub_content,
    scrub_mail,
    scrub_secrets,
)
from tests.conftest import expected
from tests.leak import LEAK_FIXTURES, fill_leak_fixture, leak_values

REPLIES = ReplyTokens("k")
LINKS = LinkTokens("k", 3600)
REPLY = "reply+" + REPLIES.make(ReplyTarget(12, 34))
PRIVATE = "reply+" + REPLIES.make(ReplyTarget(12, 34, private=True))
ADDRESS = f"{REPLY}@tasks.example.com"
MAGIC_TOKEN = LINKS.make_login(5, 0)
MAGIC = f"https://tasks.example.com/auth/magic/{MAGIC_TOKEN}"
UNSUBSCRIBE_TOKEN = LINKS.make_unsubscribe(1, 2)
UNSUBSCRIBE = f"https://tasks.example.com/unsubscribe/{UNSUBSCRIBE_TOKEN}"
API = "qm_" + base64.urlsafe_b64encode(hashlib.sha256(b"api").digest()).decode().rstrip("=")
TEMPLATES = Path(__file__).parents[2] / "templates" / "mail"


def broken(token: str, cut: int, joint: str) -> str:
    """``token`` with a line break (and the markers after it) inserted at ``cut``."""
    return token[:cut] + joint + token[cut:]


# --- every form a token comes back in --------------------------------------------------


def test_reply_address_in_plain_text_is_replaced_with_its_domain():
    assert scrub_secrets(f"Write to {ADDRESS} today.") == "Write to [reply address] today."


def test_reply_address_upper_cased_by_an_mta_is_replaced():
    assert scrub_secrets(f"To: <{ADDRESS.upper()}>") == "To: <[reply address]>"
    assert find_secrets(ADDRESS.upper()) == [REPLY]


def test_mailto_reply_address_is_replaced_whole():
    text = f"Reply privately to the team: mailto:{PRIVATE}@tasks.example.com\n"
    assert scrub_secrets(text) == "Reply privately to the team: [reply address]\n"


def test_reply_address_in_an_html_href_and_link_text_is_replaced():
    markup = f'<a href="mailto:{PRIVATE}@tasks.example.com" style="color:#0969da">{ADDRESS}</a>'
    expected = '<a href="[reply address]" style="color:#0969da">[reply address]</a>'
    assert scrub_secrets(markup) == expected


def test_reply_address_with_an_escaped_plus_or_at_is_replaced():
    escaped = ADDRESS.replace("+", "%2B").replace("@", "%40")
    assert scrub_secrets(f'href="mailto:{escaped}"') == 'href="[reply address]"'
    assert scrub_secrets(f"mailto:{ADDRESS.replace('+', '&#43;')}") == "[reply address]"
    assert find_secrets(escaped) == [REPLY]


def test_magic_link_in_plain_text_is_replaced_whole():
    assert scrub_secrets(f"Open in qmail: {MAGIC}\n") == "Open in qmail: [sign-in link]\n"


def test_unsubscribe_link_in_a_quoted_header_is_replaced_whole():
    text = f"> List-Unsubscribe: <{UNSUBSCRIBE}>"
    assert scrub_secrets(text) == "> List-Unsubscribe: <[unsubscribe link]>"


def test_bare_tokens_are_replaced():
    text = f"login {MAGIC_TOKEN}, unsubscribe {UNSUBSCRIBE_TOKEN}, api {API}."
    expected = "login [sign-in link], unsubscribe [unsubscribe link], api [token]."
    assert scrub_secrets(text) == expected


def test_compressed_magic_token_starting_with_a_dot_is_replaced():
    token = "ml_" + URLSafeTimedSerializer("k", salt="qmail.login").dumps(list(range(60)))
    assert token.startswith("ml_.")
    assert scrub_secrets(f"<http://q.example/auth/magic/{token}>") == "<[sign-in link]>"
    assert find_secrets(f"see {token}") == [token]


def test_magic_link_with_a_port_and_a_path_prefix_is_replaced_whole():
    text = f"(http://127.0.0.1:8025/qmail/auth/magic/{MAGIC_TOKEN})"
    assert scrub_secrets(text) == "([sign-in link])"


def test_html2text_links_and_autolinks_are_replaced():
    text = html_to_text(
        f'<p><a href="{MAGIC}">Open in qmail</a> <a href="{UNSUBSCRIBE}">{UNSUBSCRIBE}</a>'
        f' <a href="mailto:{ADDRESS}">Reply</a></p>'
    )
    expected = "[Open in qmail]([sign-in link]) <[unsubscribe link]> [Reply]([reply address])"
    assert scrub_secrets(text) == expected


def test_outlook_angle_bracket_mailto_and_hyperlink_field_codes_are_replaced():
    text = (
        f"Reply privately to the team<mailto:{PRIVATE}@tasks.example.com>\n"
        f'HYPERLINK "{MAGIC}"Open in qmail\n'
        f'HYPERLINK "mailto:{ADDRESS}"{ADDRESS}\n'
    )
    expected = (
        "Reply privately to the team<[reply address]>\n"
        'HYPERLINK "[sign-in link]"Open in qmail\n'
        'HYPERLINK "[reply address]"[reply address]\n'
    )
    assert scrub_secrets(text) == expected


# --- tokens wrapped across lines ------------------------------------------------------


def test_magic_link_wrapped_at_76_columns_inside_quote_markers_is_replaced_whole():
    line = f"> Open in qmail: {MAGIC}"
    text = f"{line[:76]}\n> {line[76:]}\n> Status: open\n"
    assert scrub_secrets(text) == "> Open in qmail: [sign-in link]\n> Status: open\n"


def test_magic_link_wrapped_inside_nested_quote_markers_is_replaced_whole():
    for cut in range(1, len(MAGIC)):
        text = f"> > Open: {broken(MAGIC, cut, chr(10) + '> > ')}\n> > Status: open"
        assert scrub_secrets(text) == "> > Open: [sign-in link]\n> > Status: open", cut


def test_reply_address_broken_at_a_hyphen_is_replaced_whole():
    cuts = [match.end() for match in re.finditer("-", PRIVATE)]
    for cut in cuts:
        text = f"> mailto:{broken(PRIVATE, cut, chr(10) + '> ')}@tasks.example.com\n> Bye"
        assert scrub_secrets(text) == "> [reply address]\n> Bye", cut


def test_reply_address_wrapped_with_leading_spaces_is_replaced():
    text = f"    From: Anna <{ADDRESS[:30]}\n    {ADDRESS[30:]}>\n    Sent: Monday"
    assert scrub_secrets(text) == "    From: Anna <[reply address]>\n    Sent: Monday"


@pytest.mark.parametrize("joint", ["\n", "\r\n", "\n> ", "\n> > ", "\n>> ", "\n   ", "=\n", " \n"])
def test_token_broken_anywhere_is_replaced_whole(joint):
    for secret, placeholder in (
        (MAGIC, "[sign-in link]"),
        (UNSUBSCRIBE, "[unsubscribe link]"),
        (API, "[token]"),
        (f"mailto:{ADDRESS}", "[reply address]"),
    ):
        end = secret.index("@") + 2 if "@" in secret else len(secret)
        for cut in range(1, end):
            text = f"Hi {broken(secret, cut, joint)} there"
            assert scrub_secrets(text) == f"Hi {placeholder} there", (secret, cut)
            assert len(find_secrets(text)) == 1


@pytest.mark.parametrize("joint", ["\n", "\r\n", "\n> ", "=\r\n", " \n\t"])
def test_a_large_file_is_passed_over_quickly_yet_never_misses_a_broken_token(joint):
    filler = "customer report\r\n" * 2000  # no "_", no "reply": one quick look
    content = filler.encode()
    assert scrub_bytes(content) is content
    for secret, core, placeholder in (
        (MAGIC, "ml_", "[sign-in link]"),
        (UNSUBSCRIBE, "un_", "[unsubscribe link]"),
        (API, "qm_", "[token]"),
        (f"mailto:{ADDRESS}", "reply", "[reply address]"),
    ):
        start = secret.index(core)
        for cut in range(start + 1, start + len(core)):  # inside what the quick look seeks
            text = f"{filler}Hi {broken(secret, cut, joint)} there\r\n{filler}"
            clean = f"{filler}Hi {placeholder} there\r\n{filler}"
            assert scrub_bytes(text.encode()) == clean.encode(), (secret, cut)
            assert scrub_secrets(text) == clean


def test_quoted_printable_soft_breaks_inside_tokens_are_replaced():
    raw = f"Open in qmail: {MAGIC[:50]}=\n{MAGIC[50:]}\nReply: mailto:{ADDRESS[:20]}=\r\n"
    raw += f"{ADDRESS[20:]}\r\n"
    assert scrub_secrets(raw) == "Open in qmail: [sign-in link]\nReply: [reply address]\r\n"


def test_quoted_printable_html_href_split_by_a_soft_break_is_replaced():
    raw = (
        f'<p style=3D"margin:0 0 8px;"><a href=3D"{MAGIC[:40]}=\n{MAGIC[40:]}" '
        'style=3D"display:inline-block;">Open in qmail</a></p>'
    )
    expected = (
        '<p style=3D"margin:0 0 8px;"><a href=3D"[sign-in link]" '
        'style=3D"display:inline-block;">Open in qmail</a></p>'
    )
    assert scrub_bytes(raw.encode()) == expected.encode()


def test_domain_continuing_on_the_next_line_after_at_or_hyphen_is_replaced():
    assert scrub_secrets(f"> {REPLY}@\n> tasks.example.com wrote:") == "> [reply address] wrote:"
    assert scrub_secrets(f"> {REPLY}@my-\n> tasks.example.com wrote:") == "> [reply address] wrote:"
    assert scrub_secrets(f"> {REPLY}\n> @tasks.example.com wrote:") == "> [reply address] wrote:"


def test_domain_broken_after_a_dot_keeps_its_tail_but_no_secret():
    # A known limit: nothing tells "tasks.\nexample.com" from a sentence ending in a domain.
    text = f"> {REPLY}@tasks.\n> example.com wrote:"
    assert scrub_secrets(text) == "> [reply address].\n> example.com wrote:"


def test_full_stop_after_a_reply_address_is_kept():
    assert scrub_secrets(f"Write to {ADDRESS}.\n> Thanks") == "Write to [reply address].\n> Thanks"


def test_mention_opening_the_next_line_is_not_taken_for_a_domain():
    assert scrub_secrets(f"{REPLY}\n@bob thanks") == "[reply address]\n@bob thanks"


def test_token_ending_a_line_does_not_swallow_the_next_line():
    text = (
        f"> {MAGIC}\n> Reply now\n> {UNSUBSCRIBE_TOKEN}\n> Unsubscribe\n> {API}\n> Another\n"
        f"> {REPLY}\n> Bye\n{MAGIC_TOKEN}=\nReply"
    )
    expected = (
        "> [sign-in link]\n> Reply now\n> [unsubscribe link]\n> Unsubscribe\n> [token]\n"
        "> Another\n> [reply address]\n> Bye\n[sign-in link]=\nReply"
    )
    assert scrub_secrets(text) == expected


# --- no false positives ---------------------------------------------------------------


def test_text_without_tokens_is_returned_unchanged():
    text = "Hello,\n> quoted =\n> lines\n"
    content = text.encode()
    assert scrub_secrets(text) is text
    assert scrub_bytes(content) is content
    assert find_secrets(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "See https://example.com/auth/magic/help for help.",
        "Use reply+1 or reply+12-34-b-short, or write to reply@example.com.",
        "Unsubscribe at https://example.com/unsubscribe/un_known now.",
        "```python\nfrom qmail.core.html import html_to_text\n"
        "html_page.render.this_is_a_long_snake_case_name()\n"
        "qm_settings_for_the_whole_team_and_all_of_its_clients = 1\n```\n",
        "> run_tests.sh --un_safe\n> ml_models.v2.final\n> qm_\n",
        "Accented café, 日本語, emoji 🎉 and\ttabs stay.\r\n> quoted =\n> > lines\n\n",
    ],
)
def test_look_alikes_are_left_byte_for_byte(text):
    assert scrub_secrets(text) is text
    assert find_secrets(text) == []


def test_token_signed_with_another_key_is_scrubbed_too():
    other = LinkTokens("another key", 60).make_login(1, 1)
    address = "reply+" + ReplyTokens("another key").make(ReplyTarget(1, 1)) + "@x.org"
    assert scrub_secrets(f"{other} {address}") == "[sign-in link] [reply address]"


def test_find_secrets_gives_the_bare_tokens_in_order():
    text = f"{MAGIC}\n{ADDRESS.upper()}\n{UNSUBSCRIBE}\n{API}"
    assert find_secrets(text) == [MAGIC_TOKEN, REPLY, UNSUBSCRIBE_TOKEN, API]
    wrapped = f"> {broken(MAGIC, 60, chr(10) + '> ')} and {broken(API, 9, '=' + chr(10))}"
    assert find_secrets(wrapped) == [MAGIC_TOKEN, API]


# --- bytes, attachments and whole mails -----------------------------------------------


def test_scrub_bytes_keeps_every_other_byte():
    before = "Grüße, ".encode() + b"\xfe\xff\x80 broken utf-8 "
    after = b"\r\n\x00end " + "Привет".encode("windows-1251")
    assert scrub_bytes(before + MAGIC.encode() + after) == before + b"[sign-in link]" + after


def test_scrub_bytes_reads_utf16_with_a_byte_order_mark():
    content = b"\xff\xfe" + f"Open: {MAGIC} ok".encode("utf-16-le")
    assert scrub_bytes(content) == b"\xff\xfe" + "Open: [sign-in link] ok".encode("utf-16-le")
    content = b"\xfe\xff" + f"{API}".encode("utf-16-be")
    assert scrub_bytes(content) == b"\xfe\xff" + "[token]".encode("utf-16-be")


@pytest.mark.parametrize(
    ("content_type", "filename", "textual"),
    [
        ("text/plain", "a.txt", True),
        ("text/html", "", True),
        ("message/rfc822", "", True),
        ("message/global", "", True),
        ("application/xhtml+xml", "", True),
        ("application/octet-stream", "Forwarded.EML", True),
        ("image/jpeg", "photo.jpg", False),
        ("application/pdf", "invoice.pdf", False),
    ],
)
def test_only_textual_files_are_scrubbed(content_type, filename, textual):
    assert is_textual(content_type, filename) is textual


def test_scrub_mail_cleans_what_is_shown_and_keeps_the_addresses():
    photo = Attachment("photo.jpg", "image/jpeg", b"\xff\xd8" + MAGIC.encode())
    mail = Mail(
        message_id="m@client.example",
        subject=f"Re: {MAGIC}",
        sender=Address("bob@client.example", f"Bob via {ADDRESS}"),
        to=(Address(ADDRESS, "Anna (via Acme)"),),
        cc=(Address("carol@client.example", PRIVATE),),
        reply_to=(Address(f"{PRIVATE}@tasks.example.com", ""),),
        text=f"Hi\n> {MAGIC[:50]}\n> {MAGIC[50:]}",
        attachments=(
            Attachment(f"{UNSUBSCRIBE_TOKEN}.txt", "text/plain", f"key {API}\n".encode()),
            Attachment("page.html", "text/html", f'<a href="{MAGIC}">'.encode(), "c1", True),
            photo,
        ),
    )
    assert scrub_mail(mail) == dataclasses.replace(
        mail,
        subject="Re: [sign-in link]",
        sender=Address("bob@client.example", "Bob via [reply address]"),
        cc=(Address("carol@client.example", "[reply address]"),),
        text="Hi\n> [sign-in link]",
        attachments=(
            Attachment("[unsubscribe link].txt", "text/plain", b"key [token]\n"),
            Attachment("page.html", "text/html", b'<a href="[sign-in link]">', "c1", True),
            photo,
        ),
    )


PNG = b"\x89PNG\r\n\x1a\n" + MAGIC.encode()  # a binary file is never rewritten


def notification_message(cte: str) -> bytes:
    """A notification as a mail program forwards it, its parts in transfer encoding ``cte``."""
    message = EmailMessage()
    message["From"] = "Acme Support <support@tasks.example.com>"
    message["Subject"] = "[#12] Printer on fire"
    message.set_content(f"Open in qmail: {MAGIC}\nReply privately: mailto:{ADDRESS}\n", cte=cte)
    message.add_alternative(f'<a href="{MAGIC}">Open in qmail</a>\n', subtype="html", cte=cte)
    message.add_attachment(PNG, maintype="image", subtype="png", filename="screen.png")
    return message.as_bytes()


def decoded_parts(raw: bytes) -> list[bytes]:
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [part.get_payload(decode=True) for part in parsed.walk() if not part.is_multipart()]


def test_base64_encoded_notification_inside_a_forwarded_mail_is_scrubbed():
    raw = notification_message("base64")
    assert find_secrets(raw.decode("latin-1")) == []  # invisible to a byte scan
    clean = scrub_content("message/rfc822", raw)
    assert decoded_parts(clean) == [
        b"Open in qmail: [sign-in link]\nReply privately: [reply address]\n",
        b'<a href="[sign-in link]">Open in qmail</a>\n',
        PNG,
    ]
    assert b"Subject: [#12] Printer on fire\n" in clean


def test_forwarded_mail_attached_as_an_eml_file_is_read_part_by_part():
    clean = scrub_content("application/octet-stream", notification_message("base64"), "Fw.eml")
    assert [find_secrets(part.decode("latin-1")) for part in decoded_parts(clean)[:2]] == [[], []]


def test_quoted_printable_notification_inside_a_forwarded_mail_is_scrubbed():
    raw = compose_notification(
        Notification(
            number=12,
            title="Printer on fire",
            status="open",
            tags=("hardware",),
            hidden=False,
            author=Address("anna@acme.example", "Anna Smith"),
            text="The print server stopped again.",
            context="",
            recipient=Address("bob@client.example", "Bob"),
            recipient_is_team=True,
            reply_address=ADDRESS,
            private_address=f"{PRIVATE}@tasks.example.com",
            magic_link=MAGIC,
            unsubscribe_url=UNSUBSCRIBE,
            message_id="n-1@tasks.example.com",
            in_reply_to=None,
            references=(),
            domain="tasks.example.com",
            team_name="Acme Support",
            loop_marker="tasks.example.com",
        ),
        mail_environment(TEMPLATES),
    ).as_bytes()
    assert len(find_secrets(raw.decode("latin-1"))) > 4
    clean = scrub_content("message/rfc822", raw)
    assert find_secrets(clean.decode("latin-1")) == []
    assert all(find_secrets(part.decode()) == [] for part in decoded_parts(clean))
    text = decoded_parts(clean)[0].decode().replace("\r\n", "\n")
    assert "Open in qmail: [sign-in link]\nReply privately to the team: [reply address]\n" in text


def test_unreadable_forwarded_mail_is_still_scrubbed_byte_by_byte(monkeypatch):
    def refuse(raw: bytes, **options: object) -> None:
        raise ValueError("unreadable")

    monkeypatch.setattr(secrets.email, "message_from_bytes", refuse)
    raw = notification_message("7bit")
    clean = scrub_content("message/rfc822", raw)
    assert clean == raw.replace(MAGIC.encode(), b"[sign-in link]").replace(
        f"mailto:{ADDRESS}".encode(), b"[reply address]"
    )


def test_html_only_reply_quoting_the_notification_is_scrubbed_after_parse():
    message = EmailMessage()
    message["From"] = "Bob <bob@client.example>"
    # Quoted, as the notification's From was: unquoted, "(via Acme)" is an RFC 5322 comment.
    message["To"] = f'"Anna (via Acme)" <{ADDRESS}>'
    message["Subject"] = "Re: [#12] Printer on fire"
    message["Message-ID"] = "<html-only@client.example>"
    message.set_content(
        f'<p>Fixed, thanks!</p><blockquote><a href="{MAGIC}">Open in qmail</a><br>'
        f'<a href="mailto:{PRIVATE}@tasks.example.com">Reply privately</a></blockquote>',
        subtype="html",
        cte="quoted-printable",
    )
    mail = parse_mail(message.as_bytes())
    assert isinstance(mail, Mail) and mail.from_html
    clean = scrub_mail(mail)
    assert clean.text == (
        "Fixed, thanks!\n\n> [Open in qmail]([sign-in link])\n> [Reply privately]([reply address])"
    )
    assert clean.to == (Address(ADDRESS, "Anna (via Acme)"),)  # routing still needs it


# --- a seeded fuzz: random text, tokens at random places, wrapped at random widths ----

WORDS = [
    "the",
    "printer",
    "on",
    "floor",
    "2",
    "stopped",
    "again",
    "reply+1",
    "reply@example.com",
    "html_to_text",
    "=",
    "->",
    "https://example.com/auth/magic/help",
    "(see",
    "below)",
    "café",
    "—",
    "x-y",
    ">",
    "ml_",
    "un_",
    "qm_",
    "#12",
    "2024-06-03",
]
SEPARATORS = (" ", ", ", ". ", " (", ") ", " <", "> ", ' "', '" ', "\n", "\n> ", ": ")
JOINTS = ("\n", "\n> ", "\n> > ", "\n  ", "=\n", "=\r\n", "\r\n> ")


def random_secret(rng: random.Random) -> tuple[str, str, str]:
    """A secret as it appears in a mail, its placeholder, and its bare token."""
    key = str(rng.random())
    reply = "reply+" + ReplyTokens(key).make(ReplyTarget(rng.randrange(10**6), rng.randrange(99)))
    address = reply + "@tasks.example.com"
    login = LinkTokens(key, 60).make_login(rng.randrange(10**6), rng.randrange(9))
    unsubscribe = LinkTokens(key, 60).make_unsubscribe(rng.randrange(10**4), rng.randrange(99))
    api = "qm_" + base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")
    return rng.choice(
        [
            (address.upper() if rng.random() < 0.2 else address, "[reply address]", reply),
            (f"mailto:{address}", "[reply address]", reply),
            (reply, "[reply address]", reply),
            (f"https://tasks.example.com/auth/magic/{login}", "[sign-in link]", login),
            (login, "[sign-in link]", login),
            (f"http://localhost:8000/unsubscribe/{unsubscribe}", "[unsubscribe link]", unsubscribe),
            (unsubscribe, "[unsubscribe link]", unsubscribe),
            (api, "[token]", api),
        ]
    )


def wrapped_mail_text(rng: random.Random) -> Iterator[tuple[str, str | None, str]]:
    """Pieces of one random text: (wrapped piece, placeholder or None for text, token)."""
    width, column = rng.randrange(12, 80), 0
    for number in range(rng.randrange(5, 40)):
        if number % 2:
            yield rng.choice(SEPARATORS), None, ""
            continue
        is_secret = rng.random() < 0.4
        piece, placeholder, token = random_secret(rng) if is_secret else (rng.choice(WORDS), "", "")
        # Never inside a domain (see test_domain_broken_after_a_dot_keeps_its_tail_but_no_secret)
        breakable = piece.index("@") + 1 if "@" in piece else len(piece)
        out = ""
        for index, char in enumerate(piece):
            if column >= width and 0 < index <= breakable:
                out, column = out + rng.choice(JOINTS), 0
            out, column = out + char, column + 1
        yield out, placeholder if is_secret else None, token


def test_random_text_with_wrapped_tokens_loses_exactly_the_tokens():
    rng = random.Random(20240603)
    for _ in range(300):
        pieces = list(wrapped_mail_text(rng))
        text = "".join(piece for piece, _, _ in pieces)
        expected = "".join(piece if mark is None else mark for piece, mark, _ in pieces)
        tokens = [token.lower() for _, mark, token in pieces if mark is not None]
        assert scrub_secrets(text) == expected, text
        assert [token.lower() for token in find_secrets(text)] == tokens


# --- replies that quote a whole notification (tests/mail/leak_*.eml) --------------------

VALUES = leak_values()


def token_of(url_or_address: str) -> str:
    (token,) = find_secrets(url_or_address)
    return token


def parsed_leak(name: str) -> Mail:
    mail = parse_mail(fill_leak_fixture(name, VALUES))
    assert isinstance(mail, Mail), mail
    return mail


def readable(mail: Mail) -> Iterator[str]:
    """Everything of a mail the store keeps and people see, inner forwarded parts decoded."""
    yield mail.subject
    yield mail.text
    for address in (mail.sender, *mail.to, *mail.cc, *mail.reply_to):
        yield address.name if address else ""
    for attachment in mail.attachments:
        yield attachment.filename
        if is_textual(attachment.content_type, attachment.filename):
            yield attachment.content.decode("latin-1")
        if attachment.content_type.startswith("message/"):
            yield from (part.decode("latin-1") for part in decoded_parts(attachment.content))


@pytest.mark.parametrize("name", LEAK_FIXTURES)
def test_leak_fixture_breaks_the_magic_link_inside_its_token(name):
    raw = fill_leak_fixture(name, VALUES)
    token = token_of(VALUES["MAGIC_LINK"]).encode()
    if name == "leak_thunderbird_forward_en":
        assert token not in raw  # only inside the base64 body
        return
    splits = (
        re.escape(token[:cut]) + rb"=?\n(?:> ?)*" + re.escape(token[cut:])
        for cut in range(1, len(token))
    )
    assert any(re.search(split, raw) for split in splits)


@pytest.mark.parametrize("name", LEAK_FIXTURES)
def test_leak_fixture_quotes_the_secrets_before_scrubbing(name):
    found = {token for text in readable(parsed_leak(name)) for token in find_secrets(text)}
    assert found == {token_of(VALUES[marker]) for marker in expected(name)["quoted"]}


@pytest.mark.parametrize("name", LEAK_FIXTURES)
def test_leak_fixture_has_no_secret_left_after_scrub_mail(name):
    clean = scrub_mail(parsed_leak(name))
    assert [text for text in readable(clean) if find_secrets(text)] == []
    shown = "\n".join(readable(clean)).replace("\r\n", "\n")
    for piece in expected(name)["scrubbed_contains"]:
        assert piece in shown


@pytest.mark.parametrize("name", LEAK_FIXTURES)
def test_leak_fixture_keeps_the_persons_new_words(name):
    mail = parsed_leak(name)
    clean = scrub_mail(mail)
    assert mail.text.startswith(expected(name)["opening"])
    assert clean.text.startswith(expected(name)["opening"])
    assert [address.email for address in clean.to] == [address.email for address in mail.to]
