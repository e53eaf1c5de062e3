"""``db.commit_unsynced``: a page view's read mark is committed without waiting for the
disk, and every other commit of the same connection still waits for it (SQLite:
``synchronous`` back to FULL, so a 250 from the SMTP server still means "on the disk").
Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from qmail import models
from qmail.context import Context
from qmail.core.mail import Address
from qmail.db import commit_unsynced, is_sqlite
from qmail.people import get_person

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def synchronous(session: Session) -> int | None:
    """SQLite's sync level of the session's connection (2 is FULL); None elsewhere."""
    if not is_sqlite(session):
        return None
    return int(session.connection().exec_driver_sql("PRAGMA synchronous").scalar_one())


def test_what_the_block_writes_is_committed_and_the_next_commits_sync_again(
    store: Context,
) -> None:
    with Session(store.engine) as session:
        before = synchronous(session)
        with commit_unsynced(session):
            get_person(session, Address("carol@acme.test"), NOW)
        assert synchronous(session) == before
        assert before in (2, None)
    with Session(store.engine) as session:
        emails = session.exec(select(models.Person.email)).all()
    assert emails == ["carol@acme.test"]


def test_a_failing_block_writes_nothing_and_leaves_the_sync_level(store: Context) -> None:
    with Session(store.engine) as session:
        before = synchronous(session)
        with pytest.raises(RuntimeError), commit_unsynced(session):
            get_person(session, Address("carol@acme.test"), NOW)
            session.flush()
            raise RuntimeError("a bug")
        assert synchronous(session) == before
    with Session(store.engine) as session:
        assert session.exec(select(models.Person)).all() == []
