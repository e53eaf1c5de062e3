"""Our secrets stay with their recipient: no token of ours is ever stored from a mail.

A whole exchange through the real SMTP server, each reply quoting the notification its
author received, as real mail programs do (``tests/mail/leak_*.eml``: Gmail plain text
with wrapped lines, Outlook HTML, Apple Mail quoted-printable, a Thunderbird forward of the
notification as an attachment), and one that pastes a sign-in link into its new text.
Then every token the system ever issued (read from every mail it sent) is looked for
everywhere someone could see it: every column of the database, the JSON API and the pages
as each person, and every outbound mail, which may carry only its own recipient's tokens.
"""

from __future__ import annotations

import email
import json
import re
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from sqlalchemy import LargeBinary, select
from sqlmodel import Session, SQLModel, col

from qmail import models
from qmail.context import Context
from qmail.core.secrets import find_secrets
from qmail.outbound.outbox import mail_bytes
from tests.conftest import eml_bytes, expected
from tests.integration.conftest import SmtpServer, WebServer
from tests.integration.test_identity import as_sender
from tests.integration.test_ingest import FIRST, INTAKE, messages
from tests.integration.test_pages import signed_in
from tests.integration.test_threads import address, branches
from tests.leak import fill_leak_fixture

ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@acme.test"
# Where a token may rest: the raw mail as received (kept byte for byte for replay, never
# served) and our own outbound mail (checked below: only its recipient's tokens).
# (A notification's outbox row keeps only its recipient's own values, ``personal``.)
UNSERVED = {
    ("rawmail", "raw"),
    ("rawmail", "rcpt_tos"),
    ("outbox", "raw"),
    ("outbox", "text"),
    ("outbox", "personal"),
}
MAGIC = re.compile(r"https?://\S+/auth/magic/ml_[\w.-]+")
PRIVATE = re.compile(r"mailto:(reply\+[^\s\"<>?]+)")


def readable(raw: bytes) -> str:
    """Everything a recipient can read in a mail: every header and every text part."""
    mail = email.message_from_bytes(raw, policy=default_policy)
    parts = [f"{name}: {value}" for name, value in mail.items()]
    for part in mail.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)


def outbox(store: Context) -> list[tuple[models.Outbox, bytes]]:
    """Every outbound mail's row, with the mail as it is sent."""
    with Session(store.engine) as session:
        rows = session.exec(select(models.Outbox).order_by(col(models.Outbox.id))).scalars()
        return [(row, mail_bytes(session, row)) for row in rows]


def secrets_of_latest(store: Context, email_address: str) -> dict[str, str]:
    """The secrets of the newest notification to ``email_address``, for a fixture's markers."""
    (raw, *_) = [raw for row, raw in reversed(outbox(store)) if row.recipient == email_address]
    mail: EmailMessage = email.message_from_bytes(raw, policy=default_policy)  # type: ignore[assignment]
    body = readable(raw)
    magic, private = MAGIC.search(body), PRIVATE.search(body)
    assert magic is not None
    unsubscribe = re.search(r"<(https?://[^>]+/unsubscribe/[^>]+)>", str(mail["List-Unsubscribe"]))
    assert unsubscribe is not None
    return {
        "REPLY_ADDRESS": mail["Reply-To"].addresses[0].addr_spec,
        "PRIVATE_ADDRESS": private.group(1) if private else "",
        "MAGIC_LINK": magic.group(0),
        "UNSUBSCRIBE_URL": unsubscribe.group(1),
    }


def answer(smtp_server: SmtpServer, fixture: str, name: str, sender: str, to: str) -> None:
    """``sender`` answers (or forwards) the notification they got last, quoting it whole."""
    filled = fill_leak_fixture(fixture, secrets_of_latest(smtp_server.store, sender))
    raw = as_sender(filled.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), name, sender)
    assert smtp_server.send(raw, to, sender=sender) == {}


@pytest.fixture
def exchange(smtp_server: SmtpServer, team) -> Context:
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender=CAROL)
    (main,) = branches(store)
    answer(smtp_server, "leak_gmail_plain_en", "Bob", BOB, address(store, main.id, BOB))
    answer(
        smtp_server, "leak_outlook_html_en", "Alice Admin", ALICE, address(store, main.id, ALICE)
    )
    answer(smtp_server, "leak_apple_qp_en", "Bob", BOB, address(store, main.id, BOB))
    answer(smtp_server, "leak_thunderbird_forward_en", "Bob", BOB, INTAKE)  # opens task 2
    # Alice pastes her own sign-in link and reply address into what she writes.
    answer(smtp_server, "leak_pasted_link_en", "Alice Admin", ALICE, address(store, main.id, ALICE))
    return store


def issued(store: Context) -> dict[str, str]:
    """Every token the system issued, with the address it was issued to."""
    found = {}
    for row, raw in outbox(store):
        for token in find_secrets(readable(raw)):
            found[token] = row.recipient
    return found


def owner_of(store: Context, token: str) -> int | None:
    """The person id a token of ours was made for (``None``: not one of ours)."""
    if token.startswith("reply+"):
        target = store.tokens.read(token[len("reply+") :])
        return target.person_id if target else None
    if token.startswith("ml_"):
        link = store.links.read_login(token)
        return link.person_id if link else None
    if token.startswith("un_"):
        pair = store.links.read_unsubscribe(token)
        return pair[1] if pair else None
    return None


def test_the_exchange_quoted_every_kind_of_secret(exchange):
    kinds = {token.split("_")[0].split("+")[0] for token in issued(exchange)}
    assert kinds == {"reply", "ml", "un"}
    assert [len(messages(exchange, number)) for number in (1, 2)] == [5, 1]


def test_the_quotes_are_kept_with_placeholders_and_the_new_words_are_whole(exchange):
    bob_gmail, alice_outlook, bob_apple, alice_pasted = messages(exchange)[1:]
    assert alice_pasted.text == (
        "Carol, you can follow the whole thread here, no password needed:\n[sign-in link]\n\n"
        "or simply answer to [reply address] as before.\n\nAlice"
    )
    for message, fixture in (
        (bob_gmail, "leak_gmail_plain_en"),
        (alice_outlook, "leak_outlook_html_en"),
        (bob_apple, "leak_apple_qp_en"),
    ):
        opening = expected(fixture)["opening"].strip()
        assert message.text.startswith(opening.split("\n")[0])
        assert "[sign-in link]" in message.full_text
    (forward,) = messages(exchange, 2)
    with Session(exchange.engine) as session:
        (attached,) = session.exec(
            select(models.Attachment).where(models.Attachment.message_id == forward.id)
        ).scalars()
    assert "[sign-in link]" in readable(attached.content)  # the forwarded notification


def test_no_column_of_the_database_holds_a_token(exchange):
    leaks = []
    with exchange.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            columns = [c for c in table.columns if (table.name, c.name) not in UNSERVED]
            for row in connection.execute(select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    if isinstance(column.type, LargeBinary) and value is not None:
                        value = bytes(value).decode("latin-1")
                    if isinstance(value, str) and find_secrets(value):
                        leaks.append((table.name, column.name, find_secrets(value)))
    assert leaks == []


PAGES = ("/", "/tasks/1", "/tasks/2", "/activity", "/contacts", "/outbox", "/settings")
API = ("/api/tasks", "/api/tasks/1", "/api/tasks/2", "/api/contacts")


@pytest.mark.parametrize("reader", [ALICE, BOB, CAROL])
def test_no_page_or_api_answer_shows_a_token(exchange, web_server: WebServer, reader):
    with signed_in(exchange, web_server, reader) as client:
        answers = {path: client.get(path) for path in (*PAGES, *API)}
    assert answers["/tasks/1"].status_code == 200 and answers["/api/tasks/1"].status_code == 200
    assert "[sign-in link]" in answers["/tasks/1"].text
    shown = {path: find_secrets(answer.text) for path, answer in answers.items()}
    assert shown == {path: [] for path in answers}
    assert json.loads(answers["/api/tasks/1"].text)["branches"]


def test_every_outbound_mail_carries_only_its_own_recipients_tokens(exchange):
    with Session(exchange.engine) as session:
        ids = {p.email: p.id for p in session.exec(select(models.Person)).scalars()}
    rows = outbox(exchange)
    assert {row.recipient for row, _ in rows} == {ALICE, BOB, CAROL}
    for row, raw in rows:
        tokens = find_secrets(readable(raw))
        assert {owner_of(exchange, token) for token in tokens} <= {ids[row.recipient]}, (
            row.recipient,
            row.kind,
        )


def test_each_copy_of_a_notification_signs_in_with_a_link_and_an_id_of_its_own(exchange):
    """The random parts of a notification's copies are drawn at once, one slice each."""
    copies = [(row, raw) for row, raw in outbox(exchange) if row.kind == "notification"]
    assert len(copies) >= 4
    nonces, ids = [], []
    for row, raw in copies:
        (link,) = set(MAGIC.findall(readable(raw)))
        read = exchange.links.read_login(link.rsplit("/", 1)[1])
        assert read is not None and read.person_id == row.person_id
        nonces.append(read.nonce)
        mail = email.message_from_bytes(raw, policy=default_policy)
        ids.append(mail["Message-ID"])
        assert mail["Message-ID"] == f"<{row.message_id}>"
        assert re.fullmatch(r"qmail\.[0-9a-f]{32}@example\.com", row.message_id)
    assert len(set(nonces)) == len(nonces) and len(set(ids)) == len(ids)
