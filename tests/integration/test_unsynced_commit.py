"""``db.commit_unsynced``: a page view's read mark is committed without waiting for the
disk, and every other commit of the same connection still waits for it (SQLite:
``synchronous`` back to FULL, so a 250 from the SMTP server still means "on the disk").
Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from qmail import models
from qmail.auth.api_tokens import create_api_token
from qmail.context import Context
from qmail.core.mail import Address
from qmail.db import commit_unsynced, is_sqlite, session_scope
from qmail.people import get_person
from tests.integration.conftest import WebServer

ALICE = "alice@example.com"

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def synchronous(session: Session) -> int | None:
    """SQLite's sync level of the session's connection (2 is FULL); None elsewhere."""
    if not is_sqlite(session):
        return None
    return int(session.connection().exec_driver_sql("PRAGMA synchronous").scalar_one())


def test_what_the_block_writes_is_committed_and_the_next_commits_sync_again(
    store: Context,
) -> None:
    levels: list[int] = []  # as each connection goes back to the pool, for the next user

    def checked_in(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            levels.append(dbapi_connection.execute("PRAGMA synchronous").fetchone()[0])

    event.listen(store.engine, "checkin", checked_in)
    with Session(store.engine) as session:
        before = synchronous(session)
        with commit_unsynced(session):
            get_person(session, Address("carol@acme.test"), NOW)
        assert synchronous(session) == before
        assert before in (2, None)
    with Session(store.engine) as session:
        emails = session.exec(select(models.Person.email)).all()
    assert emails == ["carol@acme.test"]
    event.remove(store.engine, "checkin", checked_in)
    assert set(levels) <= {2}, "a connection went back to the pool without its sync level"


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


def test_many_task_pages_viewed_at_once_all_mark_their_task_read(
    store: Context, web_server: WebServer, team: dict[str, int]
) -> None:
    """Twenty first views at once, each writing its read mark: more connections than the
    pool keeps, so some are closed as they come back (the level must be set back before)."""
    with session_scope(store.engine) as session:
        alice = session.exec(select(models.Person).where(models.Person.id == team[ALICE])).one()
        token = create_api_token(session, alice)
    with web_server.client(token) as http:
        for n in range(20):
            new = {"to": [f"c{n}@acme.test"], "title": f"T{n}", "text": "Hi"}
            assert http.post("/api/tasks", json=new).status_code == 201
    start = threading.Barrier(20)

    def view(number: int) -> int:
        with web_server.client(token) as http:
            start.wait(timeout=30)
            return http.get(f"/tasks/{number}").status_code

    with ThreadPoolExecutor(20) as pool:
        assert list(pool.map(view, range(1, 21))) == [200] * 20
    with Session(store.engine) as session:
        marks = session.exec(select(models.TaskRead).where(models.TaskRead.person_id == alice.id))
        assert len(marks.all()) == 20
        for _ in range(5):  # connections of the pool, one after the other
            assert synchronous(session) in (2, None)
            session.commit()
