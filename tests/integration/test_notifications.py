"""Mail out: what each person is sent when something is posted, and replies coming back.

Mail goes in through the real SMTP server; what we send is read back as the exact bytes
queued in the outbox (what the worker hands to the relay or the Maildir).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from email.message import EmailMessage

from sqlmodel import Session, col, select

from qmail import models
from qmail.auth.api_tokens import create_api_token
from qmail.context import Context
from qmail.outbound import delivery
from qmail.outbound.outbox import mail_bytes
from tests.conftest import eml_bytes, expected
from tests.integration.conftest import ScriptedRelay
from tests.integration.test_ingest import FIRST, INTAKE, messages
from tests.integration.test_threads import address, branches

SECRET_PHRASES = ("contract lapsed", "20% off", "goodwill")


def sent(store: Context, kind: str | None = None) -> list[tuple[str, EmailMessage]]:
    """(recipient, parsed mail) of every queued outbound mail, oldest first."""
    with Session(store.engine) as session:
        query = select(models.Outbox).order_by(col(models.Outbox.id))
        if kind:
            query = query.where(models.Outbox.kind == kind)
        rows = session.exec(query).all()
        return [
            (
                row.recipient,
                email.message_from_bytes(mail_bytes(session, row), policy=email.policy.default),
            )
            for row in rows
        ]


def to(store: Context, recipient: str, kind: str = "notification") -> list[EmailMessage]:
    return [mail for rcpt, mail in sent(store, kind) if rcpt == recipient]


def full_text(mail: EmailMessage) -> str:
    """Everything a recipient could read: headers and every part, decoded."""
    parts = [str(value) for _, value in mail.items()]
    for part in mail.walk():
        if not part.is_multipart():
            parts.append(part.get_content() if part.get_content_maintype() == "text" else "")
    return "\n".join(parts)


def test_new_task_notifies_the_triage_team_and_acknowledges_the_client(smtp_server, team):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    assert sorted(rcpt for rcpt, _ in sent(store, "notification")) == [
        "alice@example.com",
        "bob@example.com",
    ]
    (ack,) = to(store, "carol@acme.test", "ack")
    assert ack["Subject"] == "[#1] Invoice 2024-17 is missing a line"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == "<5c1f0e2a-77b1-4f0e-9d0a-4a1b2c3d4e5f@acme.test>"
    assert "#1" in full_text(ack)


def test_notification_headers_thread_and_route_back(smtp_server, team):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    (mail,) = to(store, "bob@example.com")
    reply_to = mail["Reply-To"].addresses[0]
    assert mail["From"].addresses[0].display_name == "Carol Client (via qmail)"
    assert mail["From"].addresses[0].addr_spec == reply_to.addr_spec
    assert re.fullmatch(r"reply\+[0-9a-z-]+@example\.com", reply_to.addr_spec)
    assert mail["To"] == "Bob <bob@example.com>"
    assert mail["Subject"] == "[#1] Invoice 2024-17 is missing a line"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["X-Auto-Response-Suppress"] == "All"
    assert mail["List-Id"] == '"qmail task 1" <task-1.example.com>'
    assert mail["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/unsubscribe/un_")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["X-Qmail-Loop"] == "example.com"
    assert mail["References"].split() == [
        "<task-1@example.com>",
        "<5c1f0e2a-77b1-4f0e-9d0a-4a1b2c3d4e5f@acme.test>",
    ]
    (alice_copy,) = to(store, "alice@example.com")
    assert alice_copy["Message-ID"] != mail["Message-ID"]
    assert alice_copy["Reply-To"] != mail["Reply-To"]  # bound to each recipient
    # Bob answers from his mail program: the reply lands in the task, as Bob.
    smtp_server.send(eml_bytes("team_private_answer"), reply_to.addr_spec)
    reply = messages(store)[-1]
    with Session(store.engine) as session:
        author = session.get(models.Person, reply.author_id)
    assert author is not None and author.email == "bob@example.com"
    assert reply.branch_id == branches(store)[0].id
    # ... and Carol and Alice are told; Bob is not told about his own message.
    assert len(to(store, "carol@acme.test")) == 1
    assert len(to(store, "alice@example.com")) == 2
    assert len(to(store, "bob@example.com")) == 1
    second = to(store, "alice@example.com")[1]
    assert second["In-Reply-To"] == alice_copy["Message-ID"]
    assert alice_copy["Message-ID"] in second["References"]


def test_reply_naming_only_our_notification_routes_to_its_branch(smtp_server, team):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    (ack,) = to(store, "carol@acme.test", "ack")
    raw = eml_bytes("intake_followup_in_reply_to").replace(
        b"In-Reply-To: <5c1f0e2a-77b1-4f0e-9d0a-4a1b2c3d4e5f@acme.test>",
        f"In-Reply-To: {ack['Message-ID']}".encode(),
    )
    assert b"5c1f0e2a" not in raw  # only our acknowledgement names the thread
    smtp_server.send(raw, INTAKE, sender="carol@acme.test")
    assert len(messages(store)) == 2
    assert messages(store)[-1].branch_id == branches(store)[0].id


def test_team_members_from_answering_by_references_alone_is_held_not_trusted(smtp_server, team):
    """Without a reply address (or a passing DMARC verdict), nothing shows that a mail
    with Bob's From is Bob's: it is held and shown to the team, and posts nothing."""
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    (mail,) = to(store, "bob@example.com")
    raw = (
        eml_bytes("team_private_answer")
        .replace(
            b"In-Reply-To: <c3d4e5f6-team-private@example.com>",
            f"In-Reply-To: {mail['Message-ID']}".encode(),
        )
        .replace(
            b"References: <5c1f0e2a-77b1-4f0e-9d0a-4a1b2c3d4e5f@acme.test> "
            b"<c3d4e5f6-team-private@example.com>\r\n",
            b"",
        )
    )
    with smtp_server.client() as client:
        client.ehlo()
        client.mail("bob@example.com")
        client.rcpt(INTAKE)
        assert client.data(raw)[0] == 250
    smtp_server.wait_filed()
    assert len(messages(store)) == 1
    with Session(store.engine) as session:
        (held,) = session.exec(select(models.Quarantine.reason)).all()
    assert held.startswith("held: ")


def test_team_members_get_the_private_address_and_clients_do_not(smtp_server, team):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    main = branches(store)[0]
    smtp_server.send(eml_bytes("team_reply_cc"), address(store, main.id, "alice@example.com"))
    (to_bob,) = [m for m in to(store, "bob@example.com") if "Copying Dan" in full_text(m)]
    (to_carol,) = to(store, "carol@acme.test")
    assert "Reply privately to the team" in full_text(to_bob)
    private = re.findall(r"mailto:(reply\+[^\"?>\s]+)", full_text(to_bob))
    assert private and private[0] != to_bob["Reply-To"].addresses[0].addr_spec
    assert "privately" not in full_text(to_carol).lower()
    assert "mailto:reply+" not in full_text(to_carol)


def test_hidden_branch_never_reaches_an_external_address_over_a_long_exchange(
    smtp_server, team, relay
):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    main = branches(store)[0]
    steps = [
        ("team_private_reply", main.id, "alice@example.com", True),
        ("team_reply_cc", main.id, "alice@example.com", False),  # Dan, Erin join the main
        ("intake_followup_in_reply_to", main.id, "carol@acme.test", False),
    ]
    for name, branch_id, sender, private in steps:
        smtp_server.send(eml_bytes(name), address(store, branch_id, sender, private))
    hidden = branches(store)[1]
    smtp_server.send(eml_bytes("team_private_answer"), address(store, hidden.id, "bob@example.com"))
    smtp_server.send(eml_bytes("team_reply_cc"), address(store, hidden.id, "alice@example.com"))
    smtp_server.send(
        eml_bytes("client_reply_hash_lines"), address(store, main.id, "carol@acme.test")
    )
    # The worker delivers everything through a real (local) relay, which records it.
    sink = ScriptedRelay()
    transport = delivery.SmtpTransport(relay(sink), timeout=10)
    counts = asyncio.run(delivery.send_pending(store.engine, store.settings, transport))
    assert counts.sent == len(sent(store))
    externals = {"carol@acme.test", "dan@acme.test", "erin@gmail.com"}
    delivered = [
        (rcpt, email.message_from_bytes(raw, policy=email.policy.default))
        for _, rcpts, raw in sink.received
        for rcpt in rcpts
    ]
    assert len(delivered) == len(sent(store))
    reached = [(rcpt, mail) for rcpt, mail in delivered if rcpt in externals]
    assert {rcpt for rcpt, _ in reached} == externals
    for rcpt, mail in reached:
        text = full_text(mail)
        for phrase in SECRET_PHRASES:
            assert phrase not in text, (rcpt, phrase)
        assert "Hidden from the client" not in text
    # The team did see it, and was told plainly that the client does not.
    hidden_to_bob = [m for m in to(store, "bob@example.com") if "contract lapsed" in full_text(m)]
    assert hidden_to_bob and "Hidden from the client" in full_text(hidden_to_bob[0])


def test_copying_an_outsider_on_a_hidden_branch_tells_the_sender_why(smtp_server, team):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    main = branches(store)[0]
    smtp_server.send(
        eml_bytes("team_private_reply"), address(store, main.id, "alice@example.com", True)
    )
    hidden = branches(store)[1]
    smtp_server.send(eml_bytes("team_reply_cc"), address(store, hidden.id, "alice@example.com"))
    # Alice's private mail copied Carol; her next one copies Dan, Erin and Bob.
    first, second = to(store, "alice@example.com", "refusal")
    assert "carol@acme.test" in full_text(first)
    text = full_text(second)
    assert "dan@acme.test" in text and "erin@gmail.com" in text
    assert "bob@example.com" not in text  # a team member: added, not refused
    assert second["Subject"] == "[#1] Invoice 2024-17 is missing a line"
    assert to(store, "dan@acme.test") == [] and to(store, "erin@gmail.com") == []


def test_acknowledgement_at_most_once_a_day_and_never_to_the_team(smtp_server, team):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    second = eml_bytes(FIRST).replace(b"Message-ID: <5c1f0e2a", b"Message-ID: <second-5c1f0e2a")
    second = second.replace(b"Subject: [Billing] Invoice", b"Subject: Another invoice")
    smtp_server.send(second, INTAKE, sender="carol@acme.test")
    assert len(to(store, "carol@acme.test", "ack")) == 1
    team_task = eml_bytes("team_reply_cc").replace(b"Subject: Re: [#1] ", b"Subject: ")
    smtp_server.send(team_task, INTAKE, sender="alice@example.com")
    assert to(store, "alice@example.com", "ack") == []


def test_a_reply_pasting_our_notification_without_quote_marks_keeps_only_its_own_words(
    smtp_server, team
):
    """The notification is kept as a stencil and Bob's own values: the text he was sent,
    filled in again, is what his reply is matched against (``facts.sent_texts``)."""
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    (mail,) = to(store, "bob@example.com")
    plain = mail.get_body(("plain",))
    assert plain is not None
    reply = EmailMessage()
    reply["From"] = "Bob <bob@example.com>"
    reply["To"] = reply_to = mail["Reply-To"].addresses[0].addr_spec
    reply["Subject"] = "Re: " + mail["Subject"]
    reply["Message-ID"] = "<bob-pastes@example.com>"
    reply["In-Reply-To"] = mail["Message-ID"]
    reply.set_content(f"On it, the corrected invoice follows.\n\n{plain.get_content()}")
    smtp_server.send(reply.as_bytes(policy=email.policy.SMTP), reply_to, sender="bob@example.com")
    posted = messages(store)[-1]
    assert posted.text == "On it, the corrected invoice follows."
    assert "Invoice 2024-17" in posted.quoted


def test_our_own_notification_fed_back_is_recorded_not_posted(smtp_server, team):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    with Session(store.engine) as session:
        row = session.exec(select(models.Outbox).where(models.Outbox.kind == "ack")).one()
    before = len(sent(store))
    # e.g. a forwarding robot that drops Auto-Submitted and sends it back
    raw = re.sub(rb"Auto-Submitted: [^\r]*\r\n", b"", row.raw)
    smtp_server.send(raw, INTAKE, sender="carol@acme.test")
    assert len(messages(store)) == 1
    assert len(sent(store)) == before
    with Session(store.engine) as session:
        event = session.exec(select(models.Event).where(models.Event.kind == "ignored")).one()
    assert "our own mail" in event.detail


def test_auto_reply_sets_nothing_off(smtp_server, team):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    before = len(sent(store))
    smtp_server.send(eml_bytes("intake_out_of_office"), INTAKE, sender="dave@globex.test")
    assert len(sent(store)) == before


def test_muted_person_is_not_notified(smtp_server, team):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    with Session(store.engine) as session:
        task = session.exec(select(models.Task)).one()
        bob = session.exec(select(models.Person).where(models.Person.email == "bob@example.com"))
        session.add(models.Mute(task_id=task.id, person_id=bob.one().id))
        session.commit()
    main = branches(store)[0]
    smtp_server.send(
        eml_bytes("intake_followup_in_reply_to"), address(store, main.id, "carol@acme.test")
    )
    assert len(to(store, "bob@example.com")) == 1  # only the first one, before muting
    assert len(to(store, "alice@example.com")) == 2
    assert expected("intake_followup_in_reply_to")["text"] in full_text(
        to(store, "alice@example.com")[1]
    )


def token_of(store: Context, email: str) -> str:
    with Session(store.engine) as session:
        person = session.exec(select(models.Person).where(models.Person.email == email)).one()
        token = create_api_token(session, person)
        session.commit()
    return token


def test_posting_through_the_api_tells_the_branch_by_mail(smtp_server, web_server, team):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    main = branches(store)[0]
    with web_server.client(token_of(store, "alice@example.com")) as client:
        answer = client.post(
            "/api/tasks/1/messages",
            json={"branch_id": main.id, "text": "Sent the corrected invoice."},
        )
    assert answer.status_code == 201
    posted = answer.json()
    assert (posted["text"], posted["source"], posted["author"]["email"]) == (
        "Sent the corrected invoice.",
        "api",
        "alice@example.com",
    )
    (to_carol,) = to(store, "carol@acme.test")
    assert to_carol["From"].addresses[0].display_name == "Alice Admin (via qmail)"
    assert "Sent the corrected invoice." in full_text(to_carol)
    assert len(to(store, "bob@example.com")) == 2
    assert len(to(store, "alice@example.com")) == 1  # only the first mail, not her own post


def test_api_post_to_a_hidden_branch_reaches_the_team_only(smtp_server, web_server, team):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    main = branches(store)[0]
    smtp_server.send(
        eml_bytes("team_private_reply"), address(store, main.id, "alice@example.com", True)
    )
    hidden = branches(store)[1]
    before = len(to(store, "carol@acme.test"))
    with web_server.client(token_of(store, "bob@example.com")) as client:
        answer = client.post(
            "/api/tasks/1/messages", json={"branch_id": hidden.id, "text": "Agreed: 20% off."}
        )
    assert answer.status_code == 201
    assert len(to(store, "carol@acme.test")) == before
    assert "20% off" in full_text(to(store, "alice@example.com")[-1])
    with web_server.client(token_of(store, "carol@acme.test")) as client:
        refused = client.post(
            "/api/tasks/1/messages", json={"branch_id": hidden.id, "text": "let me in"}
        )
        assert refused.status_code == 404  # the hidden branch does not exist for her
        assert (
            client.post(
                "/api/tasks/1/messages", json={"branch_id": main.id, "text": "  "}
            ).status_code
            == 400
        )
        ok = client.post("/api/tasks/1/messages", json={"branch_id": main.id, "text": "Thanks!"})
        assert ok.status_code == 201
    with web_server.client() as anonymous:
        assert (
            anonymous.post(
                "/api/tasks/1/messages", json={"branch_id": main.id, "text": "x"}
            ).status_code
            == 401
        )


def test_a_reply_quoting_our_notification_loses_exactly_the_quote(smtp_server, team):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    main = branches(store)[0]
    smtp_server.send(eml_bytes("team_reply_cc"), address(store, main.id, "alice@example.com"))
    (notification,) = to(store, "carol@acme.test")
    ours = notification.get_body(("plain",)).get_content().strip().splitlines()
    # A phone client: the answer, then our whole text pasted back re-wrapped, no markers,
    # no attribution, with an inline answer in the middle of it.
    middle = len(ours) // 2
    pasted = " ".join(ours[:middle]).split()
    rewrapped = [" ".join(pasted[i : i + 9]) for i in range(0, len(pasted), 9)]
    body = "\r\n".join(
        [
            "Great, thank you both!",
            "",
            *rewrapped,
            "",
            "Dan is right, Erin too.",
            "",
            *ours[middle:],
        ]
    )
    raw = (
        "From: Carol Client <carol@acme.test>\r\nTo: tasks@example.com\r\n"
        "Subject: Re: [#1] Invoice 2024-17 is missing a line\r\n"
        f"Message-ID: <phone-reply-1@acme.test>\r\nIn-Reply-To: {notification['Message-ID']}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n"
    ).encode()
    smtp_server.send(raw, notification["Reply-To"].addresses[0].addr_spec)
    reply = messages(store)[-1]
    assert reply.text == "Great, thank you both!\n\nDan is right, Erin too."
    assert "Copying Dan from your finance team" in reply.quoted
