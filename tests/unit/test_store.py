"""The store on a real database (SQLite, and PostgreSQL with QMAIL_TEST_DATABASE_URL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import Session, SQLModel, select

from qmail import models, people, threads
from qmail import store as qstore
from qmail.core.mail import Address
from qmail.db import migrate, session_scope

NOW = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)


def test_migrations_create_exactly_the_models(store):
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_migrating_twice_changes_nothing(store):
    migrate(store.engine)
    with Session(store.engine) as session:
        assert session.get(models.Counter, "task").value == 0  # type: ignore[union-attr]


def test_sqlite_runs_in_wal_mode(store):
    if store.engine.dialect.name != "sqlite":
        return  # PostgreSQL has no journal mode
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_raw_mail_is_stored_once_per_message_id(store):
    with session_scope(store.engine) as session:
        first, new = store_raw(session)
        assert new
    with session_scope(store.engine) as session:
        again, new = store_raw(session)
        assert not new and again.id == first.id


def store_raw(session):
    return qstore.save_raw(session, b"raw", "a@b", "c@d", ("tasks@example.com",), NOW)


def test_task_numbers_stay_unique_under_concurrent_writers(store):
    def number(_: int) -> int:
        with session_scope(store.engine) as session:
            return threads.next_task_number(session)

    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = list(pool.map(number, range(40)))
    assert sorted(numbers) == list(range(1, 41))


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
