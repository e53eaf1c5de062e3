"""Task threads: tasks, their branches and members, tags, and the commands that change them.

Functions take the ``Session`` first and never commit; every change is also an ``Event``,
so a task's history and a person's activity can be shown.
"""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, text, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from qmail import models
from qmail.config import Settings
from qmail.core.mail import Address, NewTask
from qmail.db import Prepared, insert_or_skip, insert_row, prepared_insert_or_skip
from qmail.people import Team, get_person
from qmail.threads import acquaintances

# Core statements built once: executed with their values as parameters, they are
# compiled once and found in SQLAlchemy's cache without building a statement per row.
WRITE_EVENT = insert(models.Event)
EVENT_COLUMNS = ("task_id", "branch_id", "person_id", "kind", "detail", "raw_mail_id", "created_at")
# On the driver's cursor (``db.Prepared``): the statements filing runs for every mail.
_RECORD_EVENT = Prepared(WRITE_EVENT, EVENT_COLUMNS)


def record_event(
    session: Session,
    task: models.Task | None,
    kind: str,
    person: models.Person | None = None,
    now: datetime | None = None,
    branch_id: int | None = None,
    detail: str = "",
    raw_mail_id: int | None = None,
) -> None:
    """Note a change on a task, for its history and the activity stream.

    Written at once in Core: nothing reads an event back in the transaction that
    records it, so it needs no object in the session (the task, branch and person
    it names are in the database already).
    """
    _RECORD_EVENT.run(
        session,
        {
            "task_id": task.id if task else None,
            "branch_id": branch_id,
            "person_id": person.id if person else None,
            "kind": kind,
            "detail": detail,
            "raw_mail_id": raw_mail_id,
            "created_at": now or models.utcnow(),
        },
    ).close()


def touch(session: Session, task: models.Task, branch: models.Branch, now: datetime) -> None:
    """Move the task's ``updated_at`` for activity in ``branch``.

    Activity in a hidden branch leaves it alone: everyone who sees the task sees
    ``updated_at`` (and the inbox order it gives), so moving it would tell a client that
    something happened where they cannot look.  Written at once in Core, the object kept
    as written (no flush for it); a task created at ``now`` is left as it is.
    """
    if branch.hidden or task.updated_at == now:
        return
    _TOUCH.run(session, {"task_id": task.id, "updated_at": now}).close()
    set_committed_value(task, "updated_at", now)


_TOUCH = Prepared(  # (the new value bound as the column's: a date as SQLAlchemy stores it)
    update(models.Task).where(col(models.Task.id) == bindparam("task_id")), ("updated_at",)
)


def main_branch(session: Session, task_id: int | None) -> models.Branch:
    branch = session.exec(
        select(models.Branch)
        .where(models.Branch.task_id == task_id, col(models.Branch.hidden).is_(False))
        .order_by(col(models.Branch.id))
    ).first()
    assert branch is not None, f"task {task_id} has no main branch"
    return branch


def next_task_number(session: Session) -> int:
    """The next human task number.

    PostgreSQL takes it from the sequence ``task_number``, which locks nothing: workers
    filing batches side by side never wait for each other's task numbers (a rolled-back
    transaction leaves a gap).  SQLite, with one writer, bumps the ``counter`` row.
    """
    if session.get_bind().dialect.name == "postgresql":
        cursor = _NEXT_IN_SEQUENCE.run(session)
    else:
        cursor = _NEXT_IN_COUNTER.run(session)
    (number,) = cursor.fetchone()
    cursor.close()
    return int(number)


_NEXT_IN_SEQUENCE = Prepared(text("SELECT nextval('task_number')"))
_NEXT_IN_COUNTER = Prepared(
    update(models.Counter)
    .where(col(models.Counter.name) == "task")
    .values(value=models.Counter.value + 1)
    .returning(col(models.Counter.value))
)


def add_member(session: Session, branch_id: int, person_id: int, now: datetime) -> bool:
    """Make the person a member of the branch; ``False`` if they were one already.

    A newcomer to a branch with messages now shares them with its members: the address
    book's figures follow (``acquaintances.note_member``).
    """
    # RETURNING tells whether a row was written: psycopg's rowcount here is -1
    added = prepared_insert_or_skip(
        session, models.BranchMember, ("branch_id", "person_id"), ("added_at",), "person_id"
    ).run(session, {"branch_id": branch_id, "person_id": person_id, "added_at": now})
    written = added.fetchone()
    added.close()
    if written is None:
        return False
    acquaintances.note_member(session, branch_id, person_id)
    return True


def remove_member(session: Session, branch_id: int, person_id: int) -> None:
    """Take the person out of the branch; what they shared with its other members is
    counted again without it (``acquaintances.recount``)."""
    session.connection().execute(
        delete(models.BranchMember).where(
            col(models.BranchMember.branch_id) == branch_id,
            col(models.BranchMember.person_id) == person_id,
        )
    )
    others = session.exec(
        select(models.BranchMember.person_id).where(models.BranchMember.branch_id == branch_id)
    ).all()
    acquaintances.recount(session, person_id, others)


def add_new_members(
    session: Session, branch_id: int, people: list[int | None], now: datetime
) -> None:
    """``add_member`` for the people (ids) of a branch just created, in one statement (it
    has no messages yet, so the address book has nothing to add)."""
    ids = dict.fromkeys(person_id for person_id in people if person_id is not None)
    _ADD_MEMBERS.run_many(
        session,
        [{"branch_id": branch_id, "person_id": person_id, "added_at": now} for person_id in ids],
    )


_ADD_MEMBERS = Prepared(insert(models.BranchMember), ("branch_id", "person_id", "added_at"))


def tag_task(session: Session, task_id: int, names: tuple[str, ...]) -> None:
    for name in names:
        tag = session.exec(select(models.Tag).where(models.Tag.name == name)).first()
        if tag is None:
            tag = models.Tag(name=name)
            session.add(tag)
            session.flush()
        assert tag.id is not None
        session.connection().execute(  # in Core, as the notify stage reads tags in Core
            insert_or_skip(session, models.TaskTag, "task_id", "tag_id"),
            {"task_id": task_id, "tag_id": tag.id},
        )


def create_task(
    session: Session, route: NewTask, author: models.Person, settings: Settings, now: datetime
) -> tuple[models.Task, models.Branch]:
    """A new task with its main branch; the author and the triage team take part.

    Both rows are written in Core, their ids from ``RETURNING``, and kept in the session
    as the ORM would keep them (``db.insert_row``): notifying, in the same transaction,
    finds them there, and a change to them is an update.
    """
    values = {
        "number": next_task_number(session),
        "title": route.title,
        "status": "open",
        "created_by_id": author.id,
        "assignee_id": None,
        "created_at": now,
        "updated_at": now,
    }
    task: models.Task = insert_row(session, _WRITE_TASK, models.Task, values)
    assert task.id is not None and author.id is not None
    branch: models.Branch = insert_row(
        session, WRITE_BRANCH, models.Branch, branch_values(task.id, False, None, None, now)
    )
    assert branch.id is not None
    tag_task(session, task.id, route.tags)
    add_new_members(session, branch.id, [author.id, *triage_team(session, settings, now)], now)
    record_event(session, task, "task_created", author, now, branch.id, task.title)
    return task, branch


def branch_values(
    task_id: int, hidden: bool, parent_id: int | None, forked_from_id: int | None, now: datetime
) -> dict[str, object]:
    """A new branch's values, for ``WRITE_BRANCH``."""
    return {
        "task_id": task_id,
        "hidden": hidden,
        "parent_id": parent_id,
        "forked_from_id": forked_from_id,
        "created_at": now,
    }


_WRITE_TASK = Prepared(
    insert(models.Task).returning(col(models.Task.id)),
    ("number", "title", "status", "created_by_id", "assignee_id", "created_at", "updated_at"),
)
WRITE_BRANCH = Prepared(
    insert(models.Branch).returning(col(models.Branch.id)),
    ("task_id", "hidden", "parent_id", "forked_from_id", "created_at"),
)


def triage_team(session: Session, settings: Settings, now: datetime) -> list[int | None]:
    """The ids of ``mail.triage``, or when it is empty of every team member qmail knows."""
    if settings.mail.triage:
        return [get_person(session, Address(email), now).id for email in settings.mail.triage]
    session.flush()  # (a role just given counts; read in Core, on the driver's cursor)
    cursor = _team_statement(Team.of(settings)).run(session)
    ids = [person_id for (person_id,) in cursor.fetchall()]
    cursor.close()
    return ids


@functools.lru_cache(maxsize=16)
def _team_statement(team: Team) -> Prepared:
    return Prepared(select(models.Person.id).where(team.condition()))


def members(session: Session, branch_id: int | None) -> list[models.Person]:
    return list(
        session.exec(
            select(models.Person)
            .join(models.BranchMember, col(models.BranchMember.person_id) == models.Person.id)
            .where(models.BranchMember.branch_id == branch_id)
            .order_by(col(models.Person.id))
        ).all()
    )


def untag_task(session: Session, task_id: int, name: str) -> None:
    tag = session.exec(select(models.Tag).where(models.Tag.name == name)).first()
    if tag is not None:
        session.connection().execute(
            delete(models.TaskTag).where(
                col(models.TaskTag.task_id) == task_id, col(models.TaskTag.tag_id) == tag.id
            )
        )
