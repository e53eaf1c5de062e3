"""Who is told what, by each person's choice of mail; and clients never read the team's tags.

Mail comes in through the real SMTP server and goes out through the real outbox worker to
a local aiosmtpd relay, which records what it is handed.  The team is Alice and Bob (they
triage every task: ``mail.triage``), Dora joins the team later and takes part in nothing;
Carol and Erin are clients.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from sqlmodel import Session, col, select

from qmail import models
from qmail.context import Context
from qmail.db import session_scope
from qmail.outbound import delivery, preferences
from qmail.people import find_person
from tests.conftest import eml_bytes
from tests.integration.conftest import LoopThread, ScriptedRelay, SmtpServer, serve_smtp
from tests.integration.test_ingest import FIRST, INTAKE
from tests.integration.test_notifications import full_text, to
from tests.integration.test_pages import add_person
from tests.integration.test_threads import address, branches

ALICE, BOB, CAROL, DORA, ERIN = (
    "alice@example.com",
    "bob@example.com",
    "carol@acme.test",
    "dora@example.com",
    "erin@globex.test",
)
TEAM_TAGS = ("billing", "finance-q4", "urgent", "waiting")
SECRET = "Between us: we bill them twice"


def mail(sender: str, to: str, subject: str, text: str) -> bytes:
    """A plain mail as a person's mail program would send it."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@{sender.split('@')[1]}>"
    message["Date"] = "Mon, 3 Jun 2024 10:00:00 +0000"
    message.set_content(text)
    return message.as_bytes()


@pytest.fixture
def triaged(store: Context, loop_thread: LoopThread, team) -> Iterator[SmtpServer]:
    """The SMTP server, with Alice and Bob as the triage team."""
    settings = store.settings.replace(mail={"triage": (ALICE, BOB)})
    with serve_smtp(dataclasses.replace(store, settings=settings), loop_thread) as server:
        yield server


def choose(store: Context, email_address: str, choice: str) -> None:
    """``email_address`` picks ``choice`` on the settings page (``preferences.choose``)."""
    with session_scope(store.engine) as session:
        person = find_person(session, email_address)
        assert person is not None
        is_team = email_address.endswith("@example.com")
        preferences.choose(session, person, choice, is_team, datetime.now(UTC))


def post(server: SmtpServer, sender: str, branch_id: int | None, text: str, private=False):
    """``sender`` answers a notification of the branch (or privately, to the team)."""
    to_address = address(server.store, branch_id, sender, private)
    server.send(mail(sender, to_address, "Re: [#1] Invoice", text), to_address, sender=sender)


def about(store: Context, recipient: str) -> list[str]:
    """The first line of the message each notification to ``recipient`` is about."""
    with Session(store.engine) as session:
        rows = session.exec(
            select(models.Message.text)
            .join(models.Outbox, col(models.Outbox.about_message_id) == models.Message.id)
            .where(models.Outbox.recipient == recipient, models.Outbox.kind == "notification")
            .order_by(col(models.Outbox.id))
        ).all()
    return [text.splitlines()[0] for text in rows]


def deliver(store: Context, relay) -> list[tuple[str, EmailMessage]]:
    """Run the outbox worker once through a local relay: (recipient, mail) of what it
    delivered, which is everything still to send."""
    sink = ScriptedRelay()
    transport = delivery.SmtpTransport(relay(sink), timeout=10)
    counts = asyncio.run(delivery.send_pending(store.engine, store.settings, transport))
    assert (counts.retried, counts.failed) == (0, 0)
    assert len(sink.received) == counts.sent
    return [
        (rcpt, email.message_from_bytes(raw, policy=email.policy.default))
        for _, rcpts, raw in sink.received
        for rcpt in rcpts
    ]


def tag_task(store: Context, names: tuple[str, ...]) -> None:
    with session_scope(store.engine) as session:
        for name in names:
            tag = models.Tag(name=name)
            session.add(tag)
            session.flush()
            session.add(models.TaskTag(task_id=1, tag_id=tag.id))


# --- tags ------------------------------------------------------------------------------


def test_a_client_never_reads_the_teams_tags_and_the_team_does(smtp_server, team, relay):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender=CAROL)  # tagged billing, urgent
    tag_task(store, ("finance-q4", "waiting"))
    main = branches(store)[0]
    smtp_server.send(eml_bytes("team_reply_cc"), address(store, main.id, ALICE))
    delivered = deliver(store, relay)
    to_carol = [mail for rcpt, mail in delivered if rcpt == CAROL]
    assert sorted(mail.get_content_type() for mail in to_carol) == ["multipart/alternative"] * 2
    for mail_to_carol in to_carol:  # the acknowledgement and the notification
        raw = mail_to_carol.as_bytes().decode("utf-8", "replace").lower()
        readable = full_text(mail_to_carol).lower()
        for tag in TEAM_TAGS:
            assert tag not in readable and tag not in raw, tag
        assert "tags" not in readable
    (notified,) = [m for m in to_carol if "Copying Dan" in full_text(m)]
    assert "Status: open" in full_text(notified)
    (to_bob,) = [mail for rcpt, mail in delivered if rcpt == BOB and "Copying" in full_text(mail)]
    text, html = (part.get_content() for part in to_bob.iter_parts())
    assert "Tags: billing, finance-q4, urgent, waiting" in text
    assert "Tags: billing, finance-q4, urgent, waiting" in html


# --- all mail ----------------------------------------------------------------------------


def test_all_mail_tells_a_team_member_of_every_public_message_never_a_hidden_one(triaged):
    store = triaged.store
    triaged.send(mail(CAROL, INTAKE, "Invoice", "Invoice 17 is wrong."), INTAKE, sender=CAROL)
    add_person(store, DORA, "Dora")
    choose(store, DORA, preferences.ALL)
    main = branches(store)[0]
    post(triaged, ALICE, main.id, f"{SECRET}.", private=True)  # the hidden team branch
    hidden = branches(store)[1]
    assert hidden.hidden
    post(triaged, BOB, hidden.id, "Agreed, between us.")
    post(triaged, ALICE, main.id, "We are on it.")
    post(triaged, CAROL, main.id, "Thank you!")
    triaged.send(mail(ERIN, INTAKE, "Login", "I cannot log in."), INTAKE, sender=ERIN)
    # Dora takes part in nothing, yet hears of every public message and the new task;
    # the hidden branch she is not a member of never reaches her.
    assert about(store, DORA) == ["We are on it.", "Thank you!", "I cannot log in."]
    assert all("between us" not in full_text(m).lower() for m in to(store, DORA))
    # Only tasks one is on: Bob is told of task 1 and of task 2 (triage), as before.
    assert about(store, BOB) == [
        "Invoice 17 is wrong.",
        f"{SECRET}.",
        "We are on it.",
        "Thank you!",
        "I cannot log in.",
    ]


def test_all_mail_never_reaches_a_client_even_if_the_database_says_so(triaged):
    store = triaged.store
    triaged.send(mail(CAROL, INTAKE, "Invoice", "Invoice 17 is wrong."), INTAKE, sender=CAROL)
    add_person(store, ERIN, "Erin")
    with session_scope(store.engine) as session:  # a former team member, say
        erin = find_person(session, ERIN)
        assert erin is not None
        erin.notifications = preferences.ALL
    post(triaged, ALICE, branches(store)[0].id, "We are on it.")
    assert about(store, ERIN) == []
    with session_scope(store.engine) as session, pytest.raises(Exception, match="not a"):
        carol = find_person(session, CAROL)
        assert carol is not None
        preferences.choose(session, carol, preferences.ALL, False, datetime.now(UTC))


# --- digest: no mail per message ----------------------------------------------------------


def test_digest_people_get_no_mail_per_message(triaged):
    store = triaged.store
    triaged.send(mail(CAROL, INTAKE, "Invoice", "Invoice 17 is wrong."), INTAKE, sender=CAROL)
    choose(store, BOB, preferences.DIGEST)
    choose(store, CAROL, preferences.DIGEST)
    main = branches(store)[0]
    post(triaged, ALICE, main.id, "We are on it.")
    post(triaged, ALICE, main.id, "Only for Bob.", private=True)
    post(triaged, CAROL, main.id, "Thank you!")
    assert about(store, BOB) == ["Invoice 17 is wrong."]  # before choosing the digest
    assert about(store, CAROL) == []
    assert about(store, ALICE) == ["Invoice 17 is wrong.", "Thank you!"]
    with Session(store.engine) as session:
        kinds = session.exec(select(models.Outbox.kind, models.Outbox.recipient)).all()
    assert ("ack", CAROL) in kinds  # her own new task is still acknowledged
