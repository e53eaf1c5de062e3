"""Notify: Outbox rows delivered to a real Maildir and through a local aiosmtpd relay.

Rows are inserted directly (the store writes them in real use); every test reads back what
the transport produced (the Maildir files, the envelopes the relay recorded) and the rows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import mailbox
import threading
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import event
from sqlmodel import Session, col, select

from qmail import cli, models, roles
from qmail.config import OutboundSettings, Settings
from qmail.context import Context
from qmail.core.compose import mail_environment, notification_parts
from qmail.core.mail import Address
from qmail.core.stencil import File, fill, make_stencil, personal_json
from qmail.db import create_db_engine
from qmail.outbound import delivery
from qmail.outbound.outbox import mail_text
from qmail.outbound.outgoing import write_stencil
from qmail.queries.outbox import list_outbox
from tests.conftest import free_port, wait_until
from tests.integration.conftest import ScriptedRelay
from tests.integration.test_cli import write_config
from tests.unit.test_compose import NOTIFICATION, TEMPLATES
from tests.unit.test_stencil import personal_of, with_placeholders

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def queue(
    store: Context,
    recipient: str = "carol@acme.test",
    subject: str = "[#1] Printer",
    created_at: datetime = NOW,
) -> int:
    """Insert a pending Outbox row as the store would; returns its id."""
    mail = EmailMessage()
    mail["From"] = "Alice (via qmail) <reply+abc@example.com>"
    mail["To"] = recipient
    mail["Subject"] = subject
    mail["Message-ID"] = message_id = f"<{uuid.uuid4().hex}@example.com>"
    mail.set_content("The printer is fixed.\n")
    row = models.Outbox(
        kind="notification",
        recipient=recipient,
        message_id=message_id,
        raw=mail.as_bytes(),
        state="pending",
        next_attempt_at=created_at,
        created_at=created_at,
    )
    with Session(store.engine, expire_on_commit=False) as session:
        session.add(row)
        session.commit()
    assert row.id is not None
    return row.id


def outbox_row(store: Context, outbox_id: int) -> models.Outbox:
    with Session(store.engine) as session:
        row = session.get(models.Outbox, outbox_id)
        assert row is not None
        return row


def aware(moment: datetime | None) -> datetime | None:
    """SQLite returns timestamps without a zone (stored in UTC)."""
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def send(store: Context, transport: delivery.Transport, now: datetime = NOW) -> delivery.Counts:
    return asyncio.run(delivery.send_pending(store.engine, store.settings, transport, lambda: now))


# --- Maildir ------------------------------------------------------------------------------


def test_maildir_delivery_writes_the_raw_bytes_to_new_and_marks_sent(store, tmp_path):
    outbox_id = queue(store)
    counts = send(store, delivery.MaildirTransport(tmp_path / "outbox"))
    assert counts == delivery.Counts(sent=1)
    files = list((tmp_path / "outbox" / "new").iterdir())
    assert [path.read_bytes() for path in files] == [outbox_row(store, outbox_id).raw]
    assert len(mailbox.Maildir(tmp_path / "outbox", create=False)) == 1
    row = outbox_row(store, outbox_id)
    assert (row.state, row.attempts, row.locked_until) == ("sent", 1, None)
    assert aware(row.sent_at) == NOW


def test_maildir_redelivery_after_a_crash_leaves_one_file(store, tmp_path):
    outbox_id = queue(store)
    transport = delivery.MaildirTransport(tmp_path / "outbox")
    send(store, transport)
    with Session(store.engine) as session:  # crash between sending and recording
        row = session.get(models.Outbox, outbox_id)
        assert row is not None
        row.state, row.locked_until = "pending", NOW - timedelta(seconds=1)
        session.commit()
    assert send(store, transport, NOW + timedelta(minutes=10)) == delivery.Counts(sent=1)
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 1
    assert list((tmp_path / "outbox" / "tmp").iterdir()) == []


def test_transport_for_the_default_settings_is_the_configured_maildir(settings):
    transport = delivery.transport_for(settings)
    assert isinstance(transport, delivery.MaildirTransport)
    assert transport.path == Path(settings.root, "var/outbox")
    smtp = settings.replace(outbound={"transport": "smtp", "host": "relay.test"})
    assert isinstance(delivery.transport_for(smtp), delivery.SmtpTransport)


# --- a local relay ------------------------------------------------------------------------


def test_relay_451_is_retried_after_30_seconds_then_sent_once(store, relay):
    handler = ScriptedRelay(data=("451 4.3.0 try later",))
    transport = delivery.SmtpTransport(relay(handler), timeout=10)
    outbox_id = queue(store)
    assert send(store, transport) == delivery.Counts(retried=1)
    row = outbox_row(store, outbox_id)
    assert (row.state, row.attempts, row.locked_until) == ("pending", 1, None)
    assert aware(row.next_attempt_at) == NOW + timedelta(seconds=30)
    assert "451" in row.last_error
    assert send(store, transport, NOW + timedelta(seconds=29)) == delivery.Counts()
    assert send(store, transport, NOW + timedelta(seconds=31)) == delivery.Counts(sent=1)
    row = outbox_row(store, outbox_id)
    assert (row.state, row.attempts, row.last_error) == ("sent", 2, "")
    on_the_wire = row.raw.replace(b"\n", b"\r\n")  # SMTP ends lines with CRLF
    assert handler.received == [("bounces@example.com", ["carol@acme.test"], on_the_wire)]


def keep_notification(store: Context, files: tuple[File, ...] = ()) -> tuple[int, bytes, str]:
    """Queue a notification as the notify stage keeps it (its stencil, and its recipient's
    own values); returns the row's id and the copy ``fill`` makes of it (mail and text)."""
    n = dataclasses.replace(
        NOTIFICATION, date=NOW, recipient=Address("joerg@client.test", "Jörg Müller"), text="Grüße"
    )
    stencil = make_stencil(*notification_parts(with_placeholders(n), mail_environment(TEMPLATES)))
    stencil = make_stencil(stencil.fields, stencil.text, stencil.html, files)
    personal = personal_of(n)
    with Session(store.engine, expire_on_commit=False) as session:
        row = models.Outbox(
            kind="notification",
            recipient=personal.recipient.email,
            message_id=personal.message_id,
            raw=b"",
            stencil_id=write_stencil(session, stencil),
            personal=personal_json(personal),
            next_attempt_at=NOW,
            created_at=NOW,
        )
        session.add(row)
        session.commit()
    assert row.id is not None
    return (row.id, *fill(stencil, personal))


def test_a_notification_kept_as_a_stencil_reaches_the_relay_exactly_as_filled_in(store, relay):
    handler = ScriptedRelay()
    transport = delivery.SmtpTransport(relay(handler), timeout=10)
    pdf = File("invoice.pdf", "application/pdf", b"%PDF-1.4 " * 500)
    outbox_id, raw, text = keep_notification(store, (pdf,))
    old_id = queue(store)  # queued whole, as every mail was before stencils
    assert send(store, transport) == delivery.Counts(sent=2)
    assert outbox_row(store, outbox_id).raw == b""
    on_the_wire = outbox_row(store, old_id).raw.replace(b"\n", b"\r\n")
    assert handler.received == [
        ("bounces@example.com", ["joerg@client.test"], raw),
        ("bounces@example.com", ["carol@acme.test"], on_the_wire),
    ]
    mail = email.message_from_bytes(raw, policy=default_policy)
    assert (str(mail["To"]), str(mail["Message-ID"]), mail.get_content_type()) == (
        "Jörg Müller <joerg@client.test>",
        "<n-1@example.com>",
        "multipart/mixed",
    )
    assert [part.get_filename() for part in mail.iter_attachments()] == ["invoice.pdf"]
    with Session(store.engine) as session:
        row = session.get(models.Outbox, outbox_id)
        assert row is not None
        assert (mail_text(session, row), row.state) == (text, "sent")
        assert "Grüße" in text


def test_relay_550_fails_for_good_and_outbox_list_shows_why(
    store, relay, settings, tmp_path, capsys
):
    handler = ScriptedRelay(rcpt=("550 5.1.1 no such user",))
    outbox_id = queue(store, subject="=?utf-8?q?[#1]_Drucker_repariert_=E2=9C=93?=")
    assert send(store, delivery.SmtpTransport(relay(handler))) == delivery.Counts(failed=1)
    row = outbox_row(store, outbox_id)
    assert (row.state, row.attempts) == ("failed", 1)
    assert send(store, delivery.SmtpTransport(relay(ScriptedRelay())), NOW + timedelta(days=1)) == (
        delivery.Counts()
    )
    config = write_config(settings, tmp_path / "qmail.toml")
    assert cli.main(["outbox", "list", "--config", config]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split("\t")[:4] == [str(outbox_id), "failed", "1", "carol@acme.test"]
    assert "[#1] Drucker repariert ✓" in line
    assert line.endswith("550 5.1.1 no such user")
    assert cli.main(["outbox", "list", "--state", "sent", "--config", config]) == 0
    assert capsys.readouterr().out == "outbox is empty\n"


def test_outbox_list_is_newest_first(store, settings, tmp_path, capsys):
    first, second = queue(store, subject="one"), queue(store, subject="two")
    config = write_config(settings, tmp_path / "qmail.toml")
    assert cli.main(["outbox", "list", "--state", "pending", "--config", config]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(second), str(first)]
    assert lines[0].split("\t")[4] == "two"


def test_the_list_of_failed_mail_reads_only_failed_rows_newest_first(store):
    """``qmail outbox list --state failed`` reads its own index (failed rows only), not
    the whole outbox: a busy one holds millions of sent mails and a handful failed."""
    ids = [queue(store, subject=str(n)) for n in range(4)]
    with Session(store.engine) as session:
        for outbox_id in (ids[0], ids[2]):
            session.get_one(models.Outbox, outbox_id).state = "failed"
        session.get_one(models.Outbox, ids[3]).state = "sent"
        session.commit()
        statements: list[tuple[str, object]] = []

        def record(_c, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
            statements.append((statement, parameters))

        event.listen(store.engine, "before_cursor_execute", record)
        try:
            assert [row.id for row in list_outbox(session, "failed")] == [ids[2], ids[0]]
        finally:
            event.remove(store.engine, "before_cursor_execute", record)
        (statement, parameters), connection = statements[-1], session.connection()
        if connection.dialect.name == "sqlite":
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        else:  # (so few rows that a scan would cost less: take the index if there is one)
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        assert "ix_outbox_failed" in " ".join(str(row[-1]) for row in plan)


def test_outbox_list_shows_the_subject_of_a_notification_kept_as_a_stencil(
    store, settings, tmp_path, capsys
):
    outbox_id, _, _ = keep_notification(store)
    config = write_config(settings, tmp_path / "qmail.toml")
    assert cli.main(["outbox", "list", "--config", config]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.split("\t") == [
        str(outbox_id),
        "pending",
        "0",
        "joerg@client.test",
        "[#12] Printer on fire",
        "",
    ]


def test_connection_refused_is_a_temporary_failure(store):
    outbox = OutboundSettings(transport="smtp", host="127.0.0.1", port=free_port())
    outbox_id = queue(store)
    assert send(store, delivery.SmtpTransport(outbox, timeout=5)) == delivery.Counts(retried=1)
    row = outbox_row(store, outbox_id)
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.last_error


def test_a_mail_still_failing_after_two_days_is_given_up(store):
    outbox = OutboundSettings(transport="smtp", host="127.0.0.1", port=free_port())
    outbox_id = queue(store, created_at=NOW - timedelta(days=2, minutes=1))
    assert send(store, delivery.SmtpTransport(outbox, timeout=5)) == delivery.Counts(failed=1)
    assert outbox_row(store, outbox_id).last_error.startswith("gave up after 1 attempts")


def test_smtp_transport_logs_in_over_starttls_when_configured(monkeypatch):
    calls = []

    async def fake_send(raw, **options):
        calls.append((raw, options))

    monkeypatch.setattr(aiosmtplib, "send", fake_send)
    outbound = OutboundSettings("smtp", "", "relay.test", 587, "qmail", "s3cret", starttls=True)
    asyncio.run(delivery.SmtpTransport(outbound, timeout=7).send("c@acme.test", "b@x.test", b"M"))
    asyncio.run(
        delivery.SmtpTransport(OutboundSettings("smtp", host="relay.test")).send(
            "c@acme.test", "b@x.test", b"M"
        )
    )
    assert calls[0] == (
        b"M",
        {
            "sender": "b@x.test",
            "recipients": ["c@acme.test"],
            "hostname": "relay.test",
            "port": 587,
            "start_tls": True,
            "username": "qmail",
            "password": "s3cret",
            "timeout": 7,
        },
    )
    assert calls[1][1]["start_tls"] is False
    assert calls[1][1]["username"] is None and calls[1][1]["password"] is None


def test_smtp_transport_authenticates_with_a_real_relay(store, relay):
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        # handled=False: aiosmtpd answers 535 itself (with True it waits for us to answer)
        return AuthResult(success=auth_data.password == b"s3cret", handled=False)

    handler = ScriptedRelay()
    outbound = relay(handler, authenticator=authenticator, auth_require_tls=False)
    outbox_id = queue(store)
    wrong = delivery.SmtpTransport(
        OutboundSettings(**{**vars(outbound), "username": "qmail", "password": "wrong"})
    )
    assert send(store, wrong) == delivery.Counts(retried=1)  # our config, not the mail's fault
    assert "535" in outbox_row(store, outbox_id).last_error
    right = delivery.SmtpTransport(
        OutboundSettings(**{**vars(outbound), "username": "qmail", "password": "s3cret"})
    )
    assert send(store, right, NOW + timedelta(minutes=1)) == delivery.Counts(sent=1)
    assert set(logins) == {(b"qmail", b"wrong"), (b"qmail", b"s3cret")}
    assert logins[-1] == (b"qmail", b"s3cret")
    assert len(handler.received) == 1


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(550, "5.1.1 no such user", "c@acme.test")]
            ),
            delivery.PermanentDeliveryError,
        ),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(452, "4.2.2 mailbox full", "c@acme.test")]
            ),
            delivery.TemporaryDeliveryError,
        ),
        (aiosmtplib.SMTPDataError(554, "5.7.1 spam"), delivery.PermanentDeliveryError),
        (aiosmtplib.SMTPDataError(421, "4.4.2 timeout"), delivery.TemporaryDeliveryError),
        (aiosmtplib.SMTPServerDisconnected("gone"), delivery.TemporaryDeliveryError),
        (aiosmtplib.SMTPConnectTimeoutError("slow"), delivery.TemporaryDeliveryError),
        (aiosmtplib.SMTPAuthenticationError(535, "bad password"), delivery.TemporaryDeliveryError),
        (ConnectionRefusedError(111, "refused"), delivery.TemporaryDeliveryError),
    ],
)
def test_relay_errors_are_classified_by_their_code(error, kind):
    assert type(delivery.classify(error)) is kind


def test_backoff_doubles_from_30_seconds_up_to_an_hour_with_a_little_jitter():
    seconds = [delivery.backoff(n).total_seconds() for n in range(1, 10)]
    assert seconds == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert delivery.backoff(1, jitter=0.99).total_seconds() == pytest.approx(32.97)
    assert delivery.backoff(10_000) == timedelta(hours=1)


# --- claims and workers -------------------------------------------------------------------


def test_a_claimed_row_is_not_claimed_again_until_its_lease_expires(store):
    outbox_id = queue(store)
    lease = timedelta(minutes=5)
    with Session(store.engine) as first, Session(store.engine) as second:
        assert [row.id for row in delivery.claim_due(first, NOW, lease, 10)] == [outbox_id]
        assert delivery.claim_due(second, NOW + timedelta(minutes=4), lease, 10) == []
        later = delivery.claim_due(second, NOW + timedelta(minutes=6), lease, 10)
        assert [row.id for row in later] == [outbox_id]


def test_rows_left_when_half_the_lease_has_passed_are_released_unsent(store, tmp_path):
    first, second = queue(store), queue(store)
    minutes = iter(range(100))
    clock = lambda: NOW + timedelta(minutes=next(minutes))  # noqa: E731  one minute per look
    transport = delivery.MaildirTransport(tmp_path / "outbox")
    counts = asyncio.run(delivery.send_pending(store.engine, store.settings, transport, clock))
    assert counts == delivery.Counts(sent=1)
    assert outbox_row(store, first).state == "sent"
    row = outbox_row(store, second)
    assert (row.state, row.attempts, row.locked_until) == ("pending", 0, None)


class RecordingMaildir(delivery.MaildirTransport):
    """A Maildir transport that also notes every call, across threads."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: list[str] = []
        self.lock = threading.Lock()

    async def send(self, recipient: str, mail_from: str, raw: bytes) -> None:
        with self.lock:
            self.calls.append(recipient)
        await asyncio.sleep(0.001)  # let the other workers interleave
        await super().send(recipient, mail_from, raw)


def pending_count(engine) -> int:
    with Session(engine) as session:
        query = select(models.Outbox.id).where(col(models.Outbox.state) == "pending")
        return len(session.exec(query).all())


def test_four_workers_at_once_deliver_every_row_exactly_once(store, tmp_path):
    recipients = [f"person{n}@acme.test" for n in range(100)]
    for recipient in recipients:
        queue(store, recipient)
    transport = RecordingMaildir(tmp_path / "outbox")
    errors: list[BaseException] = []

    def work(settings: Settings) -> None:
        engine = create_db_engine(settings)  # each worker its own pool, as separate processes
        try:
            while pending_count(engine):
                asyncio.run(
                    delivery.send_pending(engine, settings, transport, lambda: NOW, limit=7)
                )
        except BaseException as error:
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=work, args=(store.settings,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sorted(transport.calls) == sorted(recipients)
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 100
    with Session(store.engine) as session:
        rows = session.exec(select(models.Outbox)).all()
    assert {(row.state, row.attempts) for row in rows} == {("sent", 1)}


def test_the_worker_loop_delivers_a_pending_row_within_seconds(store, loop_thread):
    outbox_id = queue(store, created_at=datetime.now(UTC))

    async def start():
        return asyncio.create_task(roles.worker(store, interval=0.05))

    task = loop_thread.run(start())
    try:
        wait_until(lambda: outbox_row(store, outbox_id).state == "sent", timeout=10)
    finally:
        loop_thread.loop.call_soon_threadsafe(task.cancel)
    maildir = Path(store.settings.root, store.settings.outbound.maildir, "new")
    assert [path.read_bytes() for path in maildir.iterdir()] == [outbox_row(store, outbox_id).raw]
