"""Statements run on the driver's cursor (``db.Prepared``, filing's hottest) write and
read what SQLAlchemy itself would, on SQLite and PostgreSQL: dates stored in the same form
(sorted and compared as SQLAlchemy's), ``IN`` lists of any length, a missing value refused,
the database's refusals raised as SQLAlchemy raises them; a row written so
(``db.insert_row``) is held by the session as if the ORM had written it."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, insert, literal, select
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from sqlmodel import Session, col

from qmail import models
from qmail.context import Context
from qmail.core.mail import Address
from qmail.db import Prepared, session_scope
from qmail.people import get_person
from qmail.threads.tasks import EVENT_COLUMNS, WRITE_EVENT

WHEN = datetime(2026, 12, 1, 14, 3, 4, 56789, tzinfo=UTC)


def event(kind: str, detail: str, when: datetime) -> dict[str, object]:
    return {
        "task_id": None,
        "branch_id": None,
        "person_id": None,
        "kind": kind,
        "detail": detail,
        "raw_mail_id": None,
        "created_at": when,
    }


def test_rows_written_past_sqlalchemy_read_back_as_its_own(store: Context) -> None:
    prepared = Prepared(WRITE_EVENT, EVENT_COLUMNS)
    with session_scope(store.engine) as session:
        session.connection().execute(insert(models.Event), event("core", "50% 'off'", WHEN))
        prepared.run(session, event("prepared", "50% 'off'", WHEN)).close()
        prepared.run_many(
            session, [event("many", "x", WHEN + timedelta(seconds=s)) for s in (1, 2)]
        )
    with session_scope(store.engine) as session:
        rows = session.connection().execute(
            select(models.Event.kind, models.Event.detail, models.Event.created_at).order_by(
                col(models.Event.created_at), col(models.Event.id)
            )
        )
        assert [tuple(row) for row in rows] == [
            ("core", "50% 'off'", WHEN),
            ("prepared", "50% 'off'", WHEN),
            ("many", "x", WHEN + timedelta(seconds=1)),
            ("many", "x", WHEN + timedelta(seconds=2)),
        ]
        since = Prepared(
            select(models.Event.kind)
            .where(col(models.Event.created_at) >= bindparam("since"))
            .order_by(col(models.Event.id))
        )
        assert since.run(session, {"since": WHEN}).fetchall() == [
            ("core",),
            ("prepared",),
            ("many",),
            ("many",),
        ]
        assert since.run(session, {"since": WHEN + timedelta(microseconds=1)}).fetchall() == [
            ("many",),
            ("many",),
        ]


def test_a_batch_binding_one_time_again_and_again_keeps_each_rows_own(store: Context) -> None:
    """The conversion of the last value is kept (a batch binds its ``now`` for every
    row): a row with another time, or the same time again after it, is written as given."""
    later = WHEN + timedelta(microseconds=1)
    same_later = datetime(2026, 12, 1, 14, 3, 4, 56790, tzinfo=UTC)  # equal, not identical
    times = [WHEN, WHEN, later, WHEN, same_later, later]
    with session_scope(store.engine) as session:
        Prepared(WRITE_EVENT, EVENT_COLUMNS).run_many(
            session, [event(str(n), "", when) for n, when in enumerate(times)]
        )
    with session_scope(store.engine) as session:
        rows = session.connection().execute(
            select(models.Event.kind, models.Event.created_at).order_by(col(models.Event.id))
        )
        assert [tuple(row) for row in rows] == [(str(n), t) for n, t in enumerate(times)]


def test_a_list_of_any_length_is_expanded_and_a_missing_value_refused(store: Context) -> None:
    with session_scope(store.engine) as session:
        Prepared(WRITE_EVENT, EVENT_COLUMNS).run_many(
            session, [event(kind, "", WHEN) for kind in ("a", "b", "c")]
        )
        kinds = Prepared(
            select(models.Event.kind)
            .where(col(models.Event.kind).in_(bindparam("kinds", expanding=True)))
            .order_by(col(models.Event.kind))
        )
        found = {
            size: [kind for (kind,) in kinds.run(session, {"kinds": ["c", "a", "z"][:size]})]
            for size in (0, 1, 3)
        }
        assert found == {0: [], 1: ["c"], 3: ["a", "c"]}
        with pytest.raises(InvalidRequestError):
            kinds.run(session, {})


def test_a_duplicate_key_is_refused_as_sqlalchemy_refuses_it(store: Context) -> None:
    """A race (two first mails from one new address) is told from a bug by its error."""
    counter = Prepared(insert(models.Counter), ("name", "value"))
    with Session(store.engine) as session:
        counter.run(session, {"name": "twice", "value": 1}).close()
        with pytest.raises(IntegrityError):
            counter.run(session, {"name": "twice", "value": 2})
        session.rollback()
        with pytest.raises(IntegrityError):
            counter.run_many(session, [{"name": "again", "value": 1}] * 2)


def test_a_person_written_in_core_is_held_by_the_session_as_if_the_orm_wrote_them(
    store: Context,
) -> None:
    with session_scope(store.engine) as session:
        person = get_person(session, Address("Ann@Acme.TEST", "Ann"), WHEN)
        assert (person.id, person.domain) == (1, "acme.test")
        assert session.get(models.Person, 1) is person
        assert get_person(session, Address("ann@acme.test"), WHEN) is person
        assert not session.new and not session.dirty
        person.role = "team"
    with Session(store.engine) as session:
        read = session.get(models.Person, 1)
        assert read is not None
        assert (read.email, read.name, read.domain, read.role, read.created_at) == (
            "ann@acme.test",
            "Ann",
            "acme.test",
            "team",
            WHEN,
        )
        assert read.notifications == "mine"


def test_rows_read_past_sqlalchemy_are_converted_as_its_own(store: Context) -> None:
    with session_scope(store.engine) as session:
        Prepared(WRITE_EVENT, EVENT_COLUMNS).run(session, event("read", "x", WHEN)).close()
        statement = select(models.Event.kind, models.Event.created_at, literal(True))
        read = Prepared(statement.where(models.Event.kind == bindparam("kind"))).read(
            session, {"kind": "read"}
        )
        assert read == [tuple(row) for row in session.connection().execute(statement)]
        assert read == [("read", WHEN, True)]


def test_objects_are_built_from_rows_before_the_orm_has_made_any() -> None:
    """A worker's first mail may build its sender from a row before any ORM query has set
    the mappers up (``db.built`` does it then)."""
    code = (
        "from sqlalchemy.orm import make_transient_to_detached\n"
        "from qmail import models\n"
        "from qmail.db import built\n"
        "tag = built(models.Tag, {'id': 3, 'name': 'billing'})\n"
        "make_transient_to_detached(tag)\n"
        "print(tag.id, tag.name)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (done.stdout, done.stderr) == ("3 billing\n", "")
