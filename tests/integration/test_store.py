"""The store on a real database (SQLite, and PostgreSQL with QMAIL_TEST_DATABASE_URL)."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import Session, SQLModel, select

from qmail import models, people
from qmail.access import Reader
from qmail.auth.signed import LinkTokens, ReplyTokens
from qmail.config import DatabaseSettings
from qmail.core.mail import Address, ReplyTarget
from qmail.core.search import search_terms
from qmail.db import alembic_config, create_db_engine, include_name, migrate, session_scope
from qmail.inbound import store as qstore
from qmail.models import UTCDateTime
from qmail.outbound import delivery
from qmail.outbound.outbox import mail_bytes, mail_text
from qmail.queries.search import find_tasks
from qmail.threads.tasks import next_task_number
from tests.conftest import TEST_DATABASE_URL, scratch_schema

NOW = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)


def test_migrations_create_exactly_the_models(store):
    with store.engine.connect() as connection:
        opts = {"compare_type": True, "include_name": include_name}
        context = MigrationContext.configure(connection, opts=opts)
        assert compare_metadata(context, SQLModel.metadata) == []


def test_migrating_twice_changes_nothing(store):
    migrate(store.engine)
    with Session(store.engine) as session:
        assert session.get(models.Counter, "task").value == 0  # type: ignore[union-attr]


def test_sqlite_runs_in_wal_mode(store):
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL has no journal mode (CI runs it in the SQLite pass)")
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL: durable


def test_raw_mail_is_stored_once_per_message_id(store):
    with session_scope(store.engine) as session:
        first = store_raw(session)
        assert first.is_new
    with session_scope(store.engine) as session:
        again = store_raw(session)
        assert not again.is_new and again.raw_mail_id == first.raw_mail_id


def store_raw(session):
    return qstore.save_raw(session, b"raw", "a@b", "c@d", ("tasks@example.com",), NOW)


def test_task_numbers_stay_unique_under_concurrent_writers(store):
    def number(_: int) -> int:
        with session_scope(store.engine) as session:
            return next_task_number(session)

    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = list(pool.map(number, range(40)))
    assert sorted(numbers) == list(range(1, 41))


def test_task_numbers_go_on_from_the_last_task_across_the_sequence_migration(store):
    """PostgreSQL numbers tasks from a sequence since migration 0007; a database that
    already had tasks goes on after its last one (and back, when downgraded)."""
    with session_scope(store.engine) as session:
        for _ in range(3):
            session.add(models.Task(number=next_task_number(session), title="t"))
    config = alembic_config(store.engine)
    command.downgrade(config, "0006")
    with session_scope(store.engine) as session:
        assert session.get(models.Counter, "task").value == 3  # type: ignore[union-attr]
    migrate(store.engine)
    with session_scope(store.engine) as session:
        assert next_task_number(session) == 4


def test_people_are_created_once_and_the_team_follows_the_domain(store):
    with session_scope(store.engine) as session:
        carol = people.get_person(session, Address("carol@acme.test", ""), NOW)
        alice = people.get_person(session, Address("alice@example.com", "Alice"), NOW)
        again = people.get_person(session, Address("carol@acme.test", "Carol C"), NOW)
        assert again.id == carol.id and again.name == "Carol C"
        team = people.Team.of(store.settings)
        assert (team.includes(carol), team.includes(alice)) == (False, True)
    with Session(store.engine) as session:
        assert len(session.exec(select(models.Person)).all()) == 2


def test_upgrading_a_database_in_use_keeps_people_and_what_refers_to_them(settings):
    """SQLite rebuilds a table for most ALTERs (batch mode); with foreign keys on, dropping
    the old ``person`` fails once a task or token refers to someone.  Real databases have
    people in them, so every migration runs here over a populated one."""
    engine = create_db_engine(settings)
    config = alembic_config(engine)
    command.upgrade(config, "0002")
    when = "'2024-01-01 00:00:00+00:00'"
    with engine.begin() as connection:
        for statement in (
            "INSERT INTO person (id, email, name, is_team, created_at, login_count)"
            f" VALUES (1, 'carol@acme.test', 'Carol', false, {when}, 3)",
            "INSERT INTO person (id, email, name, is_team, created_at, login_count)"
            f" VALUES (2, 'alice@example.com', 'Alice', true, {when}, 0)",
            "INSERT INTO task (id, number, title, status, created_by_id, created_at, updated_at)"
            f" VALUES (1, 1, 'Invoice', 'open', 1, {when}, {when})",
            f"INSERT INTO branch (id, task_id, hidden, created_at) VALUES (1, 1, false, {when})",
            f"INSERT INTO branchmember (branch_id, person_id, added_at) VALUES (1, 1, {when})",
            f"INSERT INTO apitoken (person_id, token_hash, created_at) VALUES (1, 'h', {when})",
        ):
            connection.execute(text(statement))
    migrate(engine)
    with Session(engine) as session:
        carol, alice = session.exec(select(models.Person).order_by(models.Person.id)).all()
        assert (carol.id, carol.email, carol.last_login_at) == (1, "carol@acme.test", None)
        assert session.exec(select(models.BranchMember.person_id)).all() == [1]
        # is_team, frozen at first sight, gives way to the configuration as it is now
        assert (carol.role, alice.role) == (None, None)
        team = people.Team.of(settings)
        assert (team.includes(carol), team.includes(alice)) == (False, True)
    engine.dispose()


def test_upgrading_replaces_our_tokens_already_stored_by_placeholders(settings):
    """Replies stored before scrubbing kept the quoted notification, secrets and all."""
    reply = ReplyTokens("old-key").make(ReplyTarget(1, 2))
    link = "https://q.example/auth/magic/" + LinkTokens("old-key", 60).make_login(2)
    quoted = f"> Open in qmail: {link}\n> Reply: mailto:reply+{reply}@q.example\n"
    engine = create_db_engine(settings)
    command.upgrade(alembic_config(engine), "0004")
    when = "'2024-01-01 00:00:00+00:00'"
    with engine.begin() as connection:
        for statement in (
            f"INSERT INTO person (id, email, name, role, created_at) VALUES "
            f"(1, 'carol@acme.test', 'Carol', NULL, {when})",
            "INSERT INTO task (id, number, title, status, created_by_id, created_at, updated_at)"
            f" VALUES (1, 1, 'Fwd: {link}', 'open', 1, {when}, {when})",
            f"INSERT INTO branch (id, task_id, hidden, created_at) VALUES (1, 1, false, {when})",
            "INSERT INTO message (id, task_id, branch_id, author_id, text, quoted, full_text,"
            ' subject, message_id, in_reply_to, "references", source, sent_at) VALUES'
            f" (1, 1, 1, 1, 'Thanks!', :quoted, :full, 'Re: x', 'm1@x', '', '', 'email', {when})",
            "INSERT INTO attachment (id, message_id, filename, content_type, size, inline,"
            " content) VALUES (1, 1, 'notification.txt', 'text/plain', 3, false, :content)",
            "INSERT INTO attachment (id, message_id, filename, content_type, size, inline,"
            " content) VALUES (2, 1, 'photo.png', 'image/png', 3, false, :content)",
        ):
            connection.execute(
                text(statement),
                {"quoted": quoted, "full": "Thanks!\n" + quoted, "content": quoted.encode()},
            )
    migrate(engine)
    with Session(engine) as session:
        message = session.exec(select(models.Message)).one()
        task = session.exec(select(models.Task)).one()
        text_file, photo = session.exec(select(models.Attachment).order_by(models.Attachment.id))
    clean = "> Open in qmail: [sign-in link]\n> Reply: [reply address]\n"
    assert (message.text, message.quoted, message.full_text) == (
        "Thanks!",
        clean,
        "Thanks!\n" + clean,
    )
    assert task.title == "Fwd: [sign-in link]"
    assert text_file.content == clean.encode()
    assert photo.content == quoted.encode(), "binary files are never rewritten"
    engine.dispose()


def test_upgrading_moves_the_fork_point_of_hidden_branches_into_its_column(settings):
    engine = create_db_engine(settings)
    command.upgrade(alembic_config(engine), "0005")
    when = "'2024-01-01 00:00:00+00:00'"
    with engine.begin() as connection:
        for statement in (
            f"INSERT INTO person (id, email, name, created_at) VALUES (1, 'a@x', 'A', {when})",
            "INSERT INTO task (id, number, title, status, created_by_id, created_at, updated_at)"
            f" VALUES (1, 1, 'Invoice', 'open', 1, {when}, {when})",
            f"INSERT INTO branch (id, task_id, hidden, created_at) VALUES (1, 1, false, {when})",
            "INSERT INTO branch (id, task_id, hidden, parent_id, created_at)"
            f" VALUES (2, 1, true, 1, {when}), (3, 1, true, 1, {when})",
            "INSERT INTO message (id, task_id, branch_id, author_id, text, quoted, full_text,"
            ' subject, message_id, in_reply_to, "references", source, sent_at) VALUES'
            f" (7, 1, 1, 1, 'Hi', '', 'Hi', 'x', 'm7@x', '', '', 'email', {when})",
            "INSERT INTO event (task_id, branch_id, person_id, kind, detail, created_at) VALUES"
            f" (1, 2, 1, 'branch_opened', '7', {when}), (1, 3, 1, 'branch_opened', 'team', {when})",
        ):
            connection.execute(text(statement))
    migrate(engine)
    with Session(engine) as session:
        forks = session.exec(select(models.Branch.id, models.Branch.forked_from_id)).all()
    assert sorted(forks) == [(1, None), (2, 7), (3, None)]
    engine.dispose()


def test_upgrading_indexes_the_messages_and_titles_already_stored_for_search(settings):
    engine = create_db_engine(settings)
    command.upgrade(alembic_config(engine), "0006")
    when = "'2024-01-01 00:00:00+00:00'"
    with engine.begin() as connection:
        for statement in (
            f"INSERT INTO person (id, email, name, created_at) VALUES (1, 'a@X.test', 'A', {when})",
            "INSERT INTO task (id, number, title, status, created_by_id, created_at, updated_at)"
            f" VALUES (1, 1, 'Walrus invoice', 'open', 1, {when}, {when})",
            f"INSERT INTO branch (id, task_id, hidden, created_at) VALUES (1, 1, false, {when})",
            f"INSERT INTO branchmember (branch_id, person_id, added_at) VALUES (1, 1, {when})",
            "INSERT INTO message (id, task_id, branch_id, author_id, text, quoted, full_text,"
            ' subject, message_id, in_reply_to, "references", source, sent_at) VALUES'
            f" (7, 1, 1, 1, 'A pelican', '', '', 'x', 'm7@x', '', '', 'email', {when})",
        ):
            connection.execute(text(statement))
    migrate(engine)
    with Session(engine) as session:
        person = session.exec(select(models.Person)).one()
        reader = Reader(person, is_team=True)
        for words, found in (("pelican", [(1, 7)]), ("walrus", [(1, None)]), ("seal", [])):
            matches = find_tasks(session, reader, search_terms(words)).matches
            assert [(match.task_id, match.message_id) for match in matches] == found
        assert person.domain == "x.test"
    engine.dispose()


def test_upgrading_keeps_mail_queued_whole_and_sends_it_as_it_was(settings):
    """Mail queued before notifications were kept as stencils has its bytes in ``raw``:
    after the upgrade it is still claimed (by the new index of pending rows) and sent as
    it is, and its text still recognised in a reply."""
    engine = create_db_engine(settings)
    command.upgrade(alembic_config(engine), "0016")
    raw = b"To: carol@acme.test\r\nSubject: [#1] Invoice\r\n\r\nThe invoice is fixed.\r\n"
    outbox = sa.table(
        "outbox",
        *(sa.column(name) for name in ("kind", "recipient", "message_id", "text", "state")),
        sa.column("last_error"),
        sa.column("attempts"),
        sa.column("raw", sa.LargeBinary),
        *(sa.column(name, UTCDateTime()) for name in ("next_attempt_at", "created_at")),
    )
    common = {
        "kind": "notification",
        "recipient": "carol@acme.test",
        "last_error": "",
        "attempts": 0,
        "next_attempt_at": NOW,
        "created_at": NOW,
    }
    text_ = "The invoice is fixed."
    with engine.begin() as connection:
        connection.execute(
            outbox.insert(),
            [
                common | {"message_id": "n-1@x", "raw": raw, "text": text_, "state": "pending"},
                common | {"message_id": "n-2@x", "raw": raw, "text": text_, "state": "sent"},
            ],
        )
    migrate(engine)
    with Session(engine) as session:
        (claimed,) = delivery.claim_due(session, NOW, timedelta(minutes=5), 10)
        assert (claimed.message_id, claimed.stencil_id) == ("n-1@x", None)
        assert mail_bytes(session, claimed) == raw
        assert mail_text(session, claimed) == "The invoice is fixed."
    engine.dispose()


def test_the_suites_replayed_schema_is_the_one_alembic_builds(store, settings):
    """The PostgreSQL tests get their schema by replaying what Alembic sent once
    (``tests/conftest.py``): it must be the schema Alembic itself builds."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite copies a file (CI runs it in the PG pass)")
    with scratch_schema(TEST_DATABASE_URL) as url:
        migrated = create_db_engine(dataclasses.replace(settings, database=DatabaseSettings(url)))
        migrate(migrated)
        assert catalog(store.engine) == catalog(migrated)
        migrated.dispose()


def catalog(engine):
    """Tables, columns, indexes, constraints, sequences and the revision of a schema."""
    queries = [
        "SELECT table_name, column_name, data_type, is_nullable, column_default,"
        " generation_expression FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY 1, 2",
        "SELECT tablename, indexname, replace(indexdef, current_schema() || '.', '')"
        " FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1, 2",
        "SELECT conname, contype, pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE n.nspname = current_schema() ORDER BY 1",
        "SELECT sequence_name, start_value FROM information_schema.sequences"
        " WHERE sequence_schema = current_schema() ORDER BY 1",
        "SELECT version_num FROM alembic_version",
    ]
    with engine.connect() as connection:
        return [connection.execute(text(query)).all() for query in queries]
