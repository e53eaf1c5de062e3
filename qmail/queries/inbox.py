"""The inbox's rows: who opened each task and who wrote last, a snippet, unread or not.

A page of tasks comes from ``queries.tasks.search_tasks``; this adds what a person reads
a list by, for those few tasks only, in four queries however long the list is.

Everything is taken from the messages the reader may see (``access.branch_visible``, in
the query): the last author, the snippet and whether the task is unread.  A hidden
branch therefore never lends a client (or a team member outside it) a snippet, a name or
a bold line.  Unread compares the newest visible message written by someone else with
the one the reader last saw on the task page (``TaskRead``, set by ``mark_read``), never
``Task.updated_at``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import AnyReader, Reader, branch_visible
from qmail.core.glance import excerpt
from qmail.db import Prepared
from qmail.queries.tasks import TaskSummary

SNIPPET_READ = 400  # characters read of the newest message: a snippet needs no more


@dataclass(frozen=True)
class Someone:
    email: str
    name: str

    @property
    def label(self) -> str:
        return self.name or self.email

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2].lower()


@dataclass(frozen=True)
class InboxRow:
    task: TaskSummary
    tags: list[str]  # the team's: always empty for a client
    opener: Someone | None
    last_author: Someone | None  # of the newest message the reader may see
    snippet: str
    assignee: Someone | None
    unread: bool


def inbox_rows(session: Session, person: Reader, tasks: list[TaskSummary]) -> list[InboxRow]:
    """The rows of a page of tasks, as ``person`` may see them."""
    ids = [task.id for task in tasks]
    newest = {
        task_id: (newest, other)
        for task_id, newest, other in _rows(
            session, _newest_visible(person.is_team), reader_id=person.id, ids=ids
        )
    }
    messages = {
        row_id: (author, text)
        for row_id, author, text in _rows(
            session, _MESSAGES, ids=[found[0] for found in newest.values()]
        )
    }
    owners = {
        task_id: (opener, assignee)
        for task_id, opener, assignee in _rows(session, _OWNERS, ids=ids)
    }
    wanted = {author for author, _ in messages.values()}
    wanted |= {who for pair in owners.values() for who in pair if who is not None}
    people = {
        row_id: Someone(email, name)
        for row_id, email, name in _rows(session, _PEOPLE, ids=list(wanted))
    }
    read = dict(_rows(session, _READ_UPTO, reader_id=person.id, ids=ids))
    rows = []
    for task in tasks:
        newest_id, newest_other = newest.get(task.id, (None, None))
        author, text = messages.get(newest_id or 0, (None, ""))
        opener, assignee = owners.get(task.id, (None, None))
        unread = newest_other is not None and newest_other > read.get(task.id, 0)
        rows.append(
            InboxRow(
                task=task,
                tags=task.tags if person.is_team else [],
                opener=people.get(opener or 0),
                last_author=people.get(author or 0),
                snippet=excerpt(text),
                assignee=people.get(assignee or 0),
                unread=unread,
            )
        )
    return rows


def _rows(session: Session, statement: Prepared, **values: Any) -> list[Any]:
    """The rows of ``statement`` for ``values``; none for an empty ``ids`` list."""
    return statement.read(session, values) if values.get("ids") else []


# Built once (for the team, and for everybody else) and run on the driver's cursor
# (``db.Prepared``): every inbox page asks them, with the reader's id and the page's tasks.
@functools.cache
def _newest_visible(is_team: bool) -> Prepared:
    """Per task of ``:ids``: the newest message ``:reader_id`` may see, and the newest not
    their own."""
    message, branch = models.Message, aliased(models.Branch)
    reader = AnyReader(is_team)
    others = case((col(message.author_id) != reader.id, col(message.id)))
    return Prepared(
        select(col(message.task_id), func.max(col(message.id)), func.max(others))
        .join(branch, col(branch.id) == message.branch_id)
        .where(col(message.task_id).in_(bindparam("ids", expanding=True)))
        .where(branch_visible(reader, branch))
        .group_by(col(message.task_id))
    )


_MESSAGES = Prepared(  # (author id, start of the text) of each message: never a whole long mail
    select(
        col(models.Message.id),
        col(models.Message.author_id),
        func.substr(col(models.Message.text), 1, SNIPPET_READ),
    ).where(col(models.Message.id).in_(bindparam("ids", expanding=True)))
)
_OWNERS = Prepared(
    select(col(models.Task.id), col(models.Task.created_by_id), col(models.Task.assignee_id)).where(
        col(models.Task.id).in_(bindparam("ids", expanding=True))
    )
)
_PEOPLE = Prepared(
    select(col(models.Person.id), col(models.Person.email), col(models.Person.name)).where(
        col(models.Person.id).in_(bindparam("ids", expanding=True))
    )
)
_READ_UPTO = Prepared(
    select(col(models.TaskRead.task_id), col(models.TaskRead.message_id)).where(
        col(models.TaskRead.person_id) == bindparam("reader_id"),
        col(models.TaskRead.task_id).in_(bindparam("ids", expanding=True)),
    )
)


def mark_read(
    session: Session, person: Reader, task_id: int, message_id: int, now: datetime
) -> bool:
    """Record that ``person`` has seen task ``task_id`` up to message ``message_id`` (the
    newest they may see there); whether that moved the mark.  Only ever moves forward:
    a page opened earlier in another tab and submitted late does not make read messages
    unread again.  Looked up first, so that opening a page read already writes nothing
    (a write is a commit to disk, and on SQLite a turn of its one writer)."""
    if (
        dict(_rows(session, _READ_UPTO, reader_id=person.id, ids=[task_id])).get(task_id, 0)
        >= message_id
    ):
        return False
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(models.TaskRead).values(
        person_id=person.id, task_id=task_id, message_id=message_id, read_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=["person_id", "task_id"],
        set_={"message_id": statement.excluded.message_id, "read_at": statement.excluded.read_at},
        where=col(models.TaskRead.message_id) < statement.excluded.message_id,
    )
    session.execute(statement)
    return True
