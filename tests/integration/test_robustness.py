"""Mail that used to be stuck: filed and answered alike on SQLite and PostgreSQL.

An outbound mail that cannot be composed fails alone; mail from an internationalised
address (SMTPUTF8) is posted and answered over SMTPUTF8; NUL bytes, over-long Message-IDs
and display names are stored the same way on both databases instead of a ``451`` forever
(PostgreSQL refuses NUL in text and values longer than their column).  Mail goes in through
the real SMTP server; outbound mail goes out through the worker to a Maildir or a relay.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from email.message import EmailMessage

import pytest
from sqlmodel import Session, col, select

from qmail import models
from qmail.context import Context
from qmail.core import storable
from qmail.core.mail import Address
from qmail.outbound import answers, delivery
from qmail.people import TEAM, get_person
from tests.conftest import eml_bytes, wait_until
from tests.integration.conftest import ScriptedRelay, SmtpServer
from tests.integration.test_ingest import FIRST, INTAKE, NOW_FOR_PEOPLE, messages, tasks

JOERG = "jörg@client.test"
# A phone address with two dots in a row: Japanese carriers handed such addresses out for
# years, and the standard library refuses to write one into a header.
TARO = "taro..yamada@docomo.ne.jp"


def mail(*headers: str, body: bytes = b"The printer prints only stripes.\r\n") -> bytes:
    return "\r\n".join(headers).encode() + b"\r\n\r\n" + body


def outbox(store: Context) -> dict[tuple[str, str], models.Outbox]:
    """Every outbound mail by (kind, recipient)."""
    with Session(store.engine) as session:
        rows = session.exec(select(models.Outbox).order_by(col(models.Outbox.id))).all()
    return {(row.kind, row.recipient): row for row in rows}


def raw_mails(store: Context) -> list[models.RawMail]:
    with Session(store.engine) as session:
        return list(session.exec(select(models.RawMail).order_by(col(models.RawMail.id))).all())


def quarantined(store: Context) -> list[str]:
    with Session(store.engine) as session:
        return list(session.exec(select(models.Quarantine.reason)).all())


def filed(store: Context, count: int = 1) -> list[models.RawMail]:
    """Wait until ``count`` raw mails are processed; returns them."""
    done = lambda: [r for r in raw_mails(store) if r.state != "pending"]  # noqa: E731
    wait_until(lambda: len(done()) >= count)
    return done()


def person(store: Context, email_address: str) -> models.Person:
    with Session(store.engine) as session:
        found = session.exec(select(models.Person).where(models.Person.email == email_address))
        return found.one()


def deliver(store: Context, transport: delivery.Transport) -> delivery.Counts:
    return asyncio.run(delivery.send_pending(store.engine, store.settings, transport))


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


# --- a mail that cannot be composed ----------------------------------------------------------


def test_a_notification_that_cannot_be_composed_fails_alone_and_the_mail_is_posted(
    smtp_server, team, tmp_path
):
    store = smtp_server.store
    with Session(store.engine) as session:
        get_person(session, Address(TARO, "Taro Yamada"), NOW_FOR_PEOPLE).role = TEAM
        session.commit()
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    assert [raw_mail.state for raw_mail in filed(store)] == ["done"]
    assert quarantined(store) == []
    rows = outbox(store)
    assert {key: row.state for key, row in rows.items()} == {
        ("notification", "alice@example.com"): "pending",
        ("notification", "bob@example.com"): "pending",
        ("notification", TARO): "failed",
        ("ack", "carol@acme.test"): "pending",
    }
    failed = rows["notification", TARO]
    assert failed.last_error == (
        "not composed: InvalidHeaderDefect: "
        "local-part is not dot-atom, quoted-string, or obs-local-part"
    )
    assert (failed.raw, failed.stencil_id, failed.attempts, failed.task_id) == (
        b"",
        None,
        0,
        tasks(store)[0].id,
    )
    maildir = delivery.MaildirTransport(tmp_path / "outbox")
    assert deliver(store, maildir) == delivery.Counts(sent=3)
    assert outbox(store)["notification", TARO].state == "failed"


def test_an_acknowledgement_that_cannot_be_composed_fails_alone(smtp_server, team, monkeypatch):
    def unwritable(ack, env):
        raise ValueError(f"cannot write {ack.recipient.email}")

    monkeypatch.setattr(answers, "acknowledgement_bodies", unwritable)
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    assert [raw_mail.state for raw_mail in filed(store)] == ["done"]
    assert [task.title for task in tasks(store)] == ["Invoice 2024-17 is missing a line"]
    rows = outbox(store)
    assert {key: row.state for key, row in rows.items()} == {
        ("notification", "alice@example.com"): "pending",
        ("notification", "bob@example.com"): "pending",
        ("ack", "carol@acme.test"): "failed",
    }
    assert rows["ack", "carol@acme.test"].last_error == (
        "not composed: ValueError: cannot write carol@acme.test"
    )


# --- an internationalised sender (RFC 6531) ----------------------------------------------------


class Utf8Relay(ScriptedRelay):
    """Records, per mail, whether it came in an SMTPUTF8 session."""

    def __init__(self) -> None:
        super().__init__()
        self.smtputf8: dict[str, bool] = {}

    async def handle_DATA(self, server, session, envelope) -> str:
        for recipient in envelope.rcpt_tos:
            self.smtputf8[recipient] = envelope.smtp_utf8
        return await super().handle_DATA(server, session, envelope)


def send_utf8(smtp_server: SmtpServer, raw: bytes, to: str) -> dict:
    with smtp_server.client() as client:
        return client.sendmail(JOERG, [to], raw, mail_options=["SMTPUTF8"])


FROM_JOERG = mail(
    "From: Jörg Müller <jörg@client.test>",
    "To: tasks@example.com",
    "Subject: Drucker druckt Streifen",
    "Message-ID: <drucker-1@client.test>",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    body="Der Drucker im 2. Stock druckt nur noch Streifen.\r\nGrüße, Jörg\r\n".encode(),
)


def test_mail_from_an_internationalised_address_is_posted_and_answered_over_smtputf8(
    smtp_server, relay, team
):
    store = smtp_server.store
    assert send_utf8(smtp_server, FROM_JOERG, INTAKE) == {}
    assert [raw_mail.state for raw_mail in filed(store)] == ["done"]
    assert person(store, JOERG).name == "Jörg Müller"
    assert [task.title for task in tasks(store)] == ["Drucker druckt Streifen"]
    assert "Grüße, Jörg" in messages(store)[0].text

    handler = Utf8Relay()
    transport = delivery.SmtpTransport(relay(handler, enable_SMTPUTF8=True), timeout=10)
    assert deliver(store, transport) == delivery.Counts(sent=3)
    assert handler.smtputf8 == {"alice@example.com": False, "bob@example.com": False, JOERG: True}
    (ack_raw,) = [raw for _, rcpts, raw in handler.received if rcpts == [JOERG]]
    assert "\r\nTo: Jörg Müller <jörg@client.test>\r\n".encode() in ack_raw
    ack = parsed(ack_raw)
    assert (ack["Subject"], ack["In-Reply-To"]) == (
        "[#1] Drucker druckt Streifen",
        "<drucker-1@client.test>",
    )

    reply_to = ack["Reply-To"].addresses[0].addr_spec
    answer = mail(
        "From: Jörg Müller <jörg@client.test>",
        f"To: {reply_to}",
        "Subject: Re: [#1] Drucker druckt Streifen",
        "Message-ID: <drucker-2@client.test>",
        "In-Reply-To: <drucker-1@client.test>",
        body=b"Auch im 3. Stock.\r\n",
    )
    assert send_utf8(smtp_server, answer, reply_to) == {}
    filed(store, 2)
    texts = [(message.text, message.author_id) for message in messages(store)]
    joerg = person(store, JOERG).id
    assert texts[1:] == [("Auch im 3. Stock.", joerg)]


def test_a_relay_without_smtputf8_keeps_the_answer_pending_and_says_why(smtp_server, relay, team):
    store = smtp_server.store
    send_utf8(smtp_server, FROM_JOERG, INTAKE)
    filed(store)
    transport = delivery.SmtpTransport(relay(ScriptedRelay()), timeout=10)
    assert deliver(store, transport) == delivery.Counts(sent=2, retried=1)
    ack = outbox(store)["ack", JOERG]
    assert (ack.state, ack.last_error) == (
        "pending",
        "SMTPNotSupported: SMTPUTF8 is not supported by this server",
    )


# --- what PostgreSQL refuses: NUL, values longer than their column -----------------------------

LONG_ID = "x" * 1500 + "@mail.acme.test"


def folded(message_id: str) -> str:
    """A long id split over lines, as a mail program folds a header (lines of 998 at most)."""
    return "\r\n ".join(message_id[i : i + 70] for i in range(0, len(message_id), 70))


def test_an_over_long_message_id_is_stored_shortened_and_replies_naming_it_thread(
    smtp_server, team
):
    store = smtp_server.store
    first = mail(
        "From: Carol <carol@acme.test>",
        "To: tasks@example.com",
        "Subject: Printer",
        f"Message-ID: <{folded(LONG_ID)}>",
    )
    assert smtp_server.send(first, INTAKE) == {}
    assert smtp_server.send(first, INTAKE) == {}  # sent again: the same mail, stored once
    (raw_mail,) = filed(store)
    short = storable.storable_id(LONG_ID)
    assert (raw_mail.message_id, raw_mail.state, len(short)) == (short, "done", 998)
    follow_up = mail(
        "From: Carol <carol@acme.test>",
        "To: tasks@example.com",
        "Subject: Re: Printer",
        "Message-ID: <printer-2@acme.test>",
        f"In-Reply-To: <{folded(LONG_ID)}>",
        body=b"Still broken.\r\n",
    )
    assert smtp_server.send(follow_up, INTAKE) == {}
    filed(store, 2)
    assert len(tasks(store)) == 1
    assert [(m.message_id, m.text) for m in messages(store)][1:] == [
        ("printer-2@acme.test", "Still broken.")
    ]
    assert messages(store)[1].in_reply_to == short


def test_a_nul_in_the_message_id_is_dropped_and_the_mail_stored_once(smtp_server, team):
    store = smtp_server.store
    raw = mail(
        "From: Carol <carol@acme.test>",
        "To: tasks@example.com",
        "Subject: Printer",
        "Message-ID: <printer\x00-1@acme.test>",
    )
    assert smtp_server.send(raw, INTAKE) == {}
    assert smtp_server.send(raw, INTAKE) == {}
    assert [(r.message_id, r.state) for r in filed(store)] == [("printer-1@acme.test", "done")]


def test_nul_in_subject_and_body_and_a_long_display_name_are_stored_alike(smtp_server, team):
    store = smtp_server.store
    raw = mail(
        f"From: {'C' * 250} <carol@acme.test>",
        "To: tasks@example.com",
        "Subject: Printer\x00 on fire",
        "Message-ID: <printer-nul@acme.test>",
        body=b"It\x00 burns.\r\n",
    )
    assert smtp_server.send(raw, INTAKE) == {}
    assert [r.state for r in filed(store)] == ["done"]
    assert quarantined(store) == []
    assert [task.title for task in tasks(store)] == ["Printer on fire"]
    assert [(m.subject, m.text) for m in messages(store)] == [("Printer on fire", "It burns.")]
    assert person(store, "carol@acme.test").name == "C" * 200


@pytest.mark.parametrize(
    ("column", "length"),
    [
        (models.Person.name, storable.NAME_LENGTH),
        (models.Person.email, storable.EMAIL_LENGTH),
        (models.Attachment.filename, storable.FILE_NAME_LENGTH),
        (models.Attachment.content_type, storable.CONTENT_TYPE_LENGTH),
        (models.Attachment.content_id, storable.ID_BYTES),
        (models.RawMail.message_id, storable.ID_BYTES),
        (models.Message.message_id, storable.ID_BYTES),
        (models.Message.in_reply_to, storable.ID_BYTES),
    ],
    ids=str,
)
def test_the_core_cuts_values_to_the_lengths_of_their_columns(column, length):
    assert column.type.length == length


def test_a_nul_in_the_envelope_sender_is_dropped_and_the_mail_filed(smtp_server, team):
    """PostgreSQL refuses NUL in text: kept as is, the mail would get 451 forever."""
    raw = mail(
        "From: Carol <carol@acme.test>",
        "To: tasks@example.com",
        "Subject: Printer",
        "Message-ID: <printer-envelope@acme.test>",
    )
    with smtp_server.client() as client:
        client.ehlo()
        assert client.mail("carol\x00@acme.test")[0] == 250
        assert client.rcpt(INTAKE)[0] == 250
        assert client.data(raw)[0] == 250
    smtp_server.wait_filed()
    with Session(smtp_server.store.engine) as session:
        (kept,) = session.exec(select(models.RawMail)).all()
    assert (kept.mail_from, kept.state) == ("carol@acme.test", "done")
