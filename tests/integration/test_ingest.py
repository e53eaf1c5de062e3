"""Mail in: the real SMTP server on a loopback port, talked to with smtplib.

Every test sends real .eml fixtures through the ingest server and then reads what the
database holds: the task, the branch, the new text and what was removed as quoted.
"""

from __future__ import annotations

import dataclasses
import smtplib
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from qmail import cli, models, roles
from qmail.config import Settings
from qmail.context import Context
from qmail.core.addresses import reply_address
from qmail.core.mail import ReplyTarget
from qmail.core.parse import parse_mail
from qmail.core.trim import trim_reply
from qmail.db import create_db_engine, session_scope
from qmail.inbound import pipeline
from qmail.inbound import store as qstore
from qmail.inbound.ingest import (
    REPLY_BAD_TOKEN,
    REPLY_TRY_LATER,
    REPLY_UNKNOWN_RECIPIENT,
)
from qmail.people import get_person
from qmail.threads import posting
from tests.conftest import MAIL_DIR, SECRET, eml_bytes, expected, free_port, wait_until
from tests.integration.conftest import SmtpServer, serve_smtp
from tests.integration.test_cli import write_config

INTAKE = "tasks@example.com"
NOW_FOR_PEOPLE = datetime(2024, 6, 1, tzinfo=UTC)
FIRST = "intake_thunderbird_en"


def tasks(store: Context) -> list[models.Task]:
    with Session(store.engine) as session:
        return list(session.exec(select(models.Task).order_by(col(models.Task.number))).all())


def messages(store: Context, number: int = 1) -> list[models.Message]:
    with Session(store.engine) as session:
        return list(
            session.exec(
                select(models.Message)
                .join(models.Task, col(models.Task.id) == models.Message.task_id)
                .where(models.Task.number == number)
                .order_by(col(models.Message.id))
            ).all()
        )


def token_for(store: Context, number: int, email: str) -> str:
    """The reply address a notification to ``email`` about task ``number`` would carry."""
    with Session(store.engine) as session:
        task = session.exec(select(models.Task).where(models.Task.number == number)).one()
        branch = session.exec(select(models.Branch).where(models.Branch.task_id == task.id)).first()
        person = session.exec(select(models.Person).where(models.Person.email == email)).one()
        assert branch is not None and branch.id is not None and person.id is not None
        token = store.tokens.make(ReplyTarget(branch.id, person.id))
    return reply_address(token, store.settings.mail.domain)


def open_first_task(smtp_server: SmtpServer) -> models.Task:
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    (task,) = tasks(smtp_server.store)
    return task


def test_mail_to_intake_opens_a_task_with_title_tags_and_trimmed_text(smtp_server):
    golden = expected(FIRST)
    task = open_first_task(smtp_server)
    assert (task.number, task.title, task.status) == (1, golden["title"], "open")
    with Session(smtp_server.store.engine) as session:
        tags = session.exec(
            select(models.Tag.name).join(models.TaskTag).where(models.TaskTag.task_id == task.id)
        ).all()
        author = session.exec(
            select(models.Person).where(models.Person.email == "carol@acme.test")
        ).one()
        member = session.get(
            models.BranchMember, (messages(smtp_server.store)[0].branch_id, author.id)
        )
    assert sorted(tags) == golden["tags"]
    (message,) = messages(smtp_server.store)
    assert message.text == golden["text"]
    assert golden["quoted_contains"][0] in message.quoted
    assert (author.name, author.role) == ("Carol Client", None)
    assert member is not None, "the sender takes part in the task"


def test_reply_through_its_token_lands_in_the_branch_as_that_person(smtp_server):
    open_first_task(smtp_server)
    address = token_for(smtp_server.store, 1, "carol@acme.test")
    smtp_server.send(eml_bytes("intake_followup_in_reply_to"), address, sender="carol@acme.test")
    first, reply = messages(smtp_server.store)
    assert reply.branch_id == first.branch_id
    assert reply.text == expected("intake_followup_in_reply_to")["text"]
    assert len(tasks(smtp_server.store)) == 1


def test_reply_with_only_in_reply_to_lands_in_the_task(smtp_server):
    open_first_task(smtp_server)
    smtp_server.send(eml_bytes("intake_followup_in_reply_to"), INTAKE, sender="carol@acme.test")
    assert len(tasks(smtp_server.store)) == 1
    first, reply = messages(smtp_server.store)
    assert reply.branch_id == first.branch_id
    assert reply.in_reply_to == "5c1f0e2a-77b1-4f0e-9d0a-4a1b2c3d4e5f@acme.test"


REPLIES = sorted(
    path.stem for pattern in ("reply_*.eml", "trim_*.eml") for path in MAIL_DIR.glob(pattern)
)


def author_address(store: Context, raw: bytes, number: int = 1) -> tuple[str, str]:
    """(sender, reply address): the reply address task ``number``'s notification to the
    author of ``raw`` (its From, made known to qmail here) would carry."""
    sender = parse_mail(raw).sender  # type: ignore[union-attr]
    assert sender is not None
    with session_scope(store.engine) as session:
        get_person(session, sender, NOW_FOR_PEOPLE)
    return sender.email, token_for(store, number, sender.email)


@pytest.mark.parametrize("name", REPLIES)
def test_each_mail_client_reply_is_trimmed_exactly_as_expected(smtp_server, name):
    open_first_task(smtp_server)
    sender, address = author_address(smtp_server.store, eml_bytes(name))
    refused = smtp_server.send(eml_bytes(name), address, sender=sender)
    assert refused == {}
    reply = messages(smtp_server.store)[-1]
    golden = expected(name)
    assert reply.text == golden["text"]
    for fragment in golden.get("quoted_contains", []):
        assert fragment in reply.quoted


def test_the_same_mail_delivered_twice_is_stored_once(smtp_server):
    raw = eml_bytes(FIRST)
    smtp_server.send(raw, INTAKE)
    smtp_server.send(raw, INTAKE)  # e.g. a retry after a timeout
    smtp_server.send(raw, [INTAKE, "tasks@example.com"])
    assert len(tasks(smtp_server.store)) == 1
    with Session(smtp_server.store.engine) as session:
        assert len(session.exec(select(models.RawMail)).all()) == 1


def test_one_mail_to_two_of_our_addresses_is_stored_once(smtp_server):
    open_first_task(smtp_server)
    address = token_for(smtp_server.store, 1, "carol@acme.test")
    smtp_server.send(eml_bytes("intake_followup_in_reply_to"), [address, INTAKE])
    assert len(messages(smtp_server.store)) == 2
    assert len(tasks(smtp_server.store)) == 1


def test_auto_reply_is_recorded_but_not_posted(smtp_server):
    open_first_task(smtp_server)
    smtp_server.send(eml_bytes("intake_out_of_office"), INTAKE, sender="dave@globex.test")
    assert len(messages(smtp_server.store)) == 1
    with Session(smtp_server.store.engine) as session:
        event = session.exec(select(models.Event).where(models.Event.kind == "ignored")).one()
        raw_mail = session.get(models.RawMail, event.raw_mail_id)
    assert event.task_id == tasks(smtp_server.store)[0].id
    assert "auto-replied" in event.detail
    assert raw_mail is not None and raw_mail.state == "ignored"


def test_bounce_with_null_sender_is_not_posted(smtp_server):
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="")
    assert tasks(smtp_server.store) == []


def _refused_rcpt(smtp_server: SmtpServer, address: str) -> tuple[int, bytes]:
    with smtp_server.client() as client:
        client.ehlo()
        client.mail("carol@acme.test")
        return client.rcpt(address)


@pytest.mark.parametrize(
    ("address", "reply"),
    [
        ("nobody@example.com", REPLY_UNKNOWN_RECIPIENT),
        ("tasks@elsewhere.test", REPLY_UNKNOWN_RECIPIENT),
        ("reply+12-3-b-aaaaaaaaaaaaaaaaaaaaaaaaaa@example.com", REPLY_BAD_TOKEN),
        ("reply+not-a-token@example.com", REPLY_BAD_TOKEN),
    ],
)
def test_unknown_recipients_and_forged_tokens_are_refused_with_550(smtp_server, address, reply):
    code, text = _refused_rcpt(smtp_server, address)
    assert f"{code} {text.decode()}" == reply


def test_mail_over_the_size_limit_is_refused_with_552(store, loop_thread):
    with serve_smtp(store, loop_thread, max_message_size=10_000) as server:
        raw = eml_bytes(FIRST) + (b"x" * 76 + b"\r\n") * 300
        with server.client() as client:
            # a client that announces the size (SIZE=) is refused before sending it
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.sendmail("carol@acme.test", [INTAKE], raw)
            assert refused.value.smtp_code == 552
            # one that does not is refused at the end of DATA
            client.rset()
            client.mail("carol@acme.test")
            client.rcpt(INTAKE)
            code, _ = client.data(raw)
            assert code == 552
    assert tasks(store) == []


def test_database_outage_answers_451_so_the_sender_retries(
    settings: Settings, loop_thread, tmp_path
):
    broken = settings.replace(
        database={"url": f"sqlite:///{tmp_path}/missing/dir/x.db"}, smtp={"port": free_port()}
    )
    engine = create_db_engine(broken)
    (tmp_path / "missing" / "dir").rmdir()  # the database vanishes after start-up
    from qmail.auth.signed import LinkTokens, ReplyTokens

    outage = Context(engine, broken, ReplyTokens(SECRET), LinkTokens(SECRET, 60))
    with (
        serve_smtp(outage, loop_thread) as server,
        pytest.raises(smtplib.SMTPDataError) as refused,
        server.client() as client,
    ):
        client.sendmail("carol@acme.test", [INTAKE], eml_bytes(FIRST))
    assert f"{refused.value.smtp_code} {refused.value.smtp_error.decode()}" == REPLY_TRY_LATER


def test_mail_whose_processing_fails_is_quarantined_then_retried(
    smtp_server, monkeypatch, tmp_path, capsys
):
    def broken_trim(text: str):
        raise RuntimeError("trimmer bug")

    monkeypatch.setattr(pipeline, "trim_reply", broken_trim)
    assert smtp_server.send(eml_bytes(FIRST), INTAKE) == {}  # accepted: 250
    assert tasks(smtp_server.store) == []
    with Session(smtp_server.store.engine) as session:
        entry = session.exec(select(models.Quarantine)).one()
        raw_mail = session.get(models.RawMail, entry.raw_mail_id)
    assert entry.reason == "RuntimeError: trimmer bug"
    assert raw_mail is not None and raw_mail.state == "quarantined"

    config = write_config(smtp_server.store.settings, tmp_path / "qmail.toml")
    assert cli.main(["quarantine", "list", "--config", config]) == 0
    assert "RuntimeError: trimmer bug" in capsys.readouterr().out

    monkeypatch.undo()  # the bug is fixed
    assert cli.main(["quarantine", "retry", "--config", config]) == 0
    assert capsys.readouterr().out == f"{entry.id}\tdone\ttask 1\n"
    assert [task.title for task in tasks(smtp_server.store)] == [expected(FIRST)["title"]]
    assert cli.main(["quarantine", "list", "--config", config]) == 0
    assert capsys.readouterr().out == "quarantine is empty\n"


def test_retrying_quarantined_mail_files_it_before_any_worker_can_take_it(
    smtp_server, monkeypatch, tmp_path, capsys
):
    def broken_trim(text: str):
        raise RuntimeError("trimmer bug")

    def open_entries() -> list[tuple[int, str]]:
        with Session(smtp_server.store.engine) as session:
            found = session.exec(
                select(models.Quarantine).where(col(models.Quarantine.resolved_at).is_(None))
            ).all()
            return [(entry.id or 0, entry.reason) for entry in found]

    monkeypatch.setattr(pipeline, "trim_reply", broken_trim)
    assert smtp_server.send(eml_bytes(FIRST), INTAKE) == {}
    ((first, _),) = open_entries()
    config = write_config(smtp_server.store.settings, tmp_path / "qmail.toml")

    # Still broken: the retry fails again and leaves one open entry, the new one.
    assert cli.main(["quarantine", "retry", "--config", config]) == 1
    assert capsys.readouterr().out == f"{first}\tquarantined\ttask -\n"
    ((second, reason),) = open_entries()
    assert second != first and reason == "RuntimeError: trimmer bug"

    # Fixed: while the retry files it, everyone else still sees it quarantined (never
    # "pending", which the SMTP server's own worker would take first).
    monkeypatch.setattr(pipeline, "trim_reply", trim_reply)
    seen = []
    file_mail = pipeline._file

    def watched(session, raw_mail_id, *args):
        with Session(smtp_server.store.engine) as elsewhere:
            seen.append(elsewhere.get(models.RawMail, raw_mail_id).state)
        return file_mail(session, raw_mail_id, *args)

    monkeypatch.setattr(pipeline, "_file", watched)
    assert cli.main(["quarantine", "retry", "--config", config]) == 0
    assert capsys.readouterr().out == f"{second}\tdone\ttask 1\n"
    assert seen == ["quarantined"]
    assert open_entries() == []
    assert [task.title for task in tasks(smtp_server.store)] == [expected(FIRST)["title"]]


def test_forward_to_intake_opens_a_task_with_the_forwarded_mail_as_its_text(smtp_server):
    raw = eml_bytes("reply_apple_mail_forward_en")
    smtp_server.send(raw, INTAKE, sender="bob@acme.example")
    (task,) = tasks(smtp_server.store)
    (message,) = messages(smtp_server.store)
    assert task.title == "Login page returns 500 after deploy"
    assert message.text.startswith("Anna, this came in via the support inbox.")
    for fragment in expected("reply_apple_mail_forward_en")["quoted_contains"]:
        assert fragment in message.text
    assert message.quoted == ""


def test_mail_left_pending_by_a_crash_is_filed_by_the_worker(store):
    # The process died after committing the raw mail and before filing it.
    received = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
    with Session(store.engine) as session:
        qstore.save_raw(
            session, eml_bytes(FIRST), "crash@acme.test", "carol@acme.test", (INTAKE,), received
        )
        session.commit()
    assert roles.file_pending(store, received + timedelta(seconds=1)) == 1
    assert [task.title for task in tasks(store)] == [expected(FIRST)["title"]]
    assert roles.file_pending(store, received + timedelta(seconds=2)) == 0


def test_mail_is_answered_250_once_kept_and_filed_by_the_worker_afterwards(
    store, loop_thread, monkeypatch
):
    """The SMTP answer waits for the disk, not for filing: with the filer stuck, the
    mail is still answered 250, kept and pending; it is filed once the filer moves."""
    stuck, release = threading.Event(), threading.Event()
    real_file = pipeline._file

    def slow_file(*args, **kwargs):
        stuck.set()
        release.wait(30)
        return real_file(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_file", slow_file)
    with serve_smtp(store, loop_thread) as server:
        with server.client() as client:
            assert client.sendmail("carol@acme.test", [INTAKE], eml_bytes(FIRST)) == {}
        assert stuck.wait(30)
        with Session(store.engine) as session:
            (raw_mail,) = session.exec(select(models.RawMail)).all()
        assert raw_mail.state == "pending" and tasks(store) == []
        release.set()
        server.wait_filed()
    assert [task.title for task in tasks(store)] == [expected(FIRST)["title"]]


def test_simultaneous_first_mails_from_one_new_sender_all_become_tasks(smtp_server):
    """Several SMTP sessions at once (several ingest processes on PostgreSQL race the
    same way): the sender, new to us, is created once and no mail is quarantined."""
    from concurrent.futures import ThreadPoolExecutor

    def deliver(n: int) -> dict:
        raw = eml_bytes(FIRST).replace(
            b"Message-ID: <5c1f0e2a", f"Message-ID: <{n}-5c1f0e2a".encode()
        )
        return smtp_server.send(raw, INTAKE, sender="carol@acme.test")

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(deliver, range(12))) == [{}] * 12
    assert len(tasks(smtp_server.store)) == 12
    with Session(smtp_server.store.engine) as session:
        assert session.exec(select(models.Quarantine)).all() == []
        carols = session.exec(select(models.Person).where(models.Person.email == "carol@acme.test"))
        assert len(carols.all()) == 1


def test_a_slow_mail_is_filed_once_though_another_worker_looks_for_pending_mail(store, monkeypatch):
    """A mail that takes long to file (3,000 addresses in Cc, say) is not taken by a
    second worker meanwhile: it would become two tasks."""
    received = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
    with Session(store.engine) as session:
        kept = qstore.save_raw(
            session, eml_bytes(FIRST), "slow@acme.test", "carol@acme.test", (INTAKE,), received
        )
        session.commit()
    claims: list[bool] = []
    filing, release = threading.Event(), threading.Event()
    real_claim, real_apply = qstore.claim_pending, posting.apply_route

    def counted_claim(*args, **kwargs):
        claims.append(True)
        return real_claim(*args, **kwargs)

    def slow_apply(*args, **kwargs):
        posted = real_apply(*args, **kwargs)
        filing.set()
        release.wait(30)
        return posted

    monkeypatch.setattr(qstore, "claim_pending", counted_claim)
    monkeypatch.setattr(posting, "apply_route", slow_apply)
    results: dict[str, int] = {}

    def work(name: str) -> None:
        results[name] = roles.file_pending(store, received)

    first = threading.Thread(target=work, args=("first",))
    first.start()
    assert filing.wait(30)
    second = threading.Thread(target=work, args=("second",))
    second.start()
    wait_until(lambda: len(claims) == 2, timeout=30)  # the second worker looks
    release.set()
    first.join(30)
    second.join(60)
    assert not first.is_alive() and not second.is_alive()
    assert results == {"first": 1, "second": 0}
    assert [task.title for task in tasks(store)] == [expected(FIRST)["title"]]
    with Session(store.engine) as session:
        assert session.get(models.RawMail, kept.raw_mail_id).state == "done"  # type: ignore[union-attr]
        assert session.exec(select(models.Quarantine)).all() == []


@pytest.mark.parametrize("failing", [(2,), (1, 3)])
def test_a_mail_that_fails_is_quarantined_and_the_others_of_its_batch_are_filed(
    store, monkeypatch, failing
):
    """Four new tasks filed in one batch, ``failing`` of them failing after their task was
    written: those are quarantined with the reason and leave nothing behind, the others
    are filed as if alone."""
    received = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
    first = eml_bytes(FIRST)
    with Session(store.engine) as session:
        ids = [
            qstore.save_raw(
                session,
                first.replace(b"Message-ID: <5c1f0e2a", f"Message-ID: <{n}-5c1f0e2a".encode()),
                f"{n}@acme.test",
                "carol@acme.test",
                (INTAKE,),
                received,
            ).raw_mail_id
            for n in range(1, 5)
        ]
        session.commit()
    real_apply = posting.apply_route

    def apply_then_fail(session, route, incoming, *args):
        posted = real_apply(session, route, incoming, *args)
        if ids.index(incoming.raw_mail_id) + 1 in failing:
            raise RuntimeError(f"posting bug after task {posted.task_number}")
        return posted

    monkeypatch.setattr(posting, "apply_route", apply_then_fail)
    outcomes = pipeline.process_pending(store, received, limit=10)
    states = ["quarantined" if n in failing else "done" for n in range(1, 5)]
    assert [(outcome.raw_mail_id, outcome.state) for outcome in outcomes] == list(
        zip(ids, states, strict=True)
    )
    filed = [outcome.task_number for outcome in outcomes if outcome.state == "done"]
    assert [task.number for task in tasks(store)] == filed
    with Session(store.engine) as session:
        assert (
            session.exec(select(models.RawMail.state).order_by(col(models.RawMail.id))).all()
            == states
        )
        reasons = session.exec(select(models.Quarantine.reason)).all()
        assert [reason.split(" after")[0] for reason in reasons] == [
            "RuntimeError: posting bug"
        ] * len(failing)
        people = session.exec(select(models.Person.email)).all()
        assert people == ["carol@acme.test"]
        posted = session.exec(select(models.Message.task_id).order_by(col(models.Message.id)))
        assert posted.all() == [task.id for task in tasks(store)]


def test_several_workers_file_every_kept_mail_exactly_once(store, team):
    """Four workers at once on one queue of 40 new tasks: each mail is filed once, none
    is quarantined, and the team is told of each task once."""
    received = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
    first = eml_bytes(FIRST)
    with Session(store.engine) as session:
        for n in range(40):
            raw = first.replace(b"Message-ID: <5c1f0e2a", f"Message-ID: <{n}-5c1f0e2a".encode())
            qstore.save_raw(session, raw, f"{n}@acme.test", "carol@acme.test", (INTAKE,), received)
        session.commit()
    filed: list[int] = []

    def work() -> None:
        filed.append(roles.file_pending(store, received))

    workers = [threading.Thread(target=work) for _ in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(120)
    assert sum(filed) == 40
    assert len(tasks(store)) == 40
    with Session(store.engine) as session:
        states = session.exec(select(models.RawMail.state)).all()
        assert set(states) == {"done"}
        assert session.exec(select(models.Quarantine)).all() == []
        told = select(models.Outbox.recipient, models.Outbox.about_message_id).where(
            models.Outbox.kind == "notification"
        )
        rows = session.exec(told).all()
    assert len(rows) == len(set(rows)) == 80  # Alice and Bob, once per task


def test_a_mail_that_raced_and_was_filed_by_another_worker_counts_once(store, team, monkeypatch):
    """A mail whose filing raced another writer goes back to pending; when a second worker
    files it before the first one's solo retry, it is filed (and counted) once, by the
    second worker alone."""
    received = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
    with Session(store.engine) as session:
        raced = qstore.save_raw(
            session, eml_bytes(FIRST), "1@acme.test", "carol@acme.test", (INTAKE,), received
        ).raw_mail_id
        session.commit()
    real_file, real_process = pipeline._file, pipeline.process
    attempts: list[int] = []
    by_the_other: list[int] = []

    def file_racing_once(session, raw_mail_id, *args):
        attempts.append(raw_mail_id)
        if len(attempts) == 1:
            raise IntegrityError("INSERT INTO person", {}, Exception("duplicate key"))
        return real_file(session, raw_mail_id, *args)

    def other_worker_first(raw_mail_id, *args):
        # The release has been committed: the other worker's round takes the mail.
        by_the_other.append(roles.file_pending(store, received))
        return real_process(raw_mail_id, *args)

    monkeypatch.setattr(pipeline, "_file", file_racing_once)
    monkeypatch.setattr(pipeline, "process", other_worker_first)
    assert roles.file_pending(store, received) == 0
    assert by_the_other == [1]
    assert attempts == [raced, raced]
    assert len(tasks(store)) == 1
    with Session(store.engine) as session:
        assert session.get(models.RawMail, raced).state == "done"  # type: ignore[union-attr]


def test_a_busy_database_while_filing_leaves_the_mail_pending_not_quarantined(
    smtp_server, monkeypatch
):
    """The database being busy or gone is no fault of the mail: it stays pending, and the
    worker files it once the database answers again."""
    tried = threading.Event()

    def busy(text: str):
        tried.set()
        raise OperationalError("UPDATE rawmail", {}, Exception("database is locked"))

    monkeypatch.setattr(pipeline, "trim_reply", busy)
    with smtp_server.client() as client:
        assert client.sendmail("carol@acme.test", [INTAKE], eml_bytes(FIRST)) == {}  # kept: 250
    assert tried.wait(30)
    store = smtp_server.store
    with Session(store.engine) as session:
        (raw_mail,) = session.exec(select(models.RawMail)).all()
        assert (raw_mail.state, session.exec(select(models.Quarantine)).all()) == ("pending", [])
    monkeypatch.undo()
    smtp_server.wait_filed()
    assert [task.title for task in tasks(store)] == [expected(FIRST)["title"]]


def test_unreadable_mail_is_answered_250_and_quarantined_with_the_reason_once(smtp_server):
    """Mail nothing can read is kept and shown to the team (``qmail quarantine list``),
    never bounced; sent again, it is still kept once and quarantined once."""
    raw = (
        b"Message-ID: <broken-1@acme.test>\r\nFrom: carol@acme.test\r\n"
        b"Content-Type: multipart/mixed\r\n\r\nno boundary anywhere\r\n"
    )
    assert smtp_server.send(raw, INTAKE) == {}
    assert smtp_server.send(raw, INTAKE) == {}  # the sender's server tries again
    with Session(smtp_server.store.engine) as session:
        (raw_mail,) = session.exec(select(models.RawMail)).all()
        (entry,) = session.exec(select(models.Quarantine)).all()
    assert raw_mail.state == "quarantined"
    assert entry.reason.startswith("refused: 554 5.6.0 Malformed message")
    assert tasks(smtp_server.store) == []


def test_recipients_past_the_cap_get_452_and_the_mail_goes_to_the_others(store, loop_thread):
    """RFC 5321's answer to too many recipients: 452 for the rest, which the sender's
    server delivers in another transaction; the mail itself is kept for those taken."""
    store = dataclasses.replace(
        store, settings=store.settings.replace(mail={"intake": (INTAKE, "help@example.com")})
    )
    with serve_smtp(store, loop_thread, max_recipients=1) as server:
        with server.client() as client:
            client.ehlo()
            client.mail("carol@acme.test")
            assert client.rcpt(INTAKE)[0] == 250
            assert client.rcpt("help@example.com") == (452, b"4.5.3 Too many recipients")
            assert client.data(eml_bytes(FIRST))[0] == 250
        server.wait_filed()
    with Session(store.engine) as session:
        (raw_mail,) = session.exec(select(models.RawMail)).all()
    assert raw_mail.rcpt_tos == f'["{INTAKE}"]'
    assert [task.title for task in tasks(store)] == [expected(FIRST)["title"]]
