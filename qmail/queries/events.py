"""What happened, as readers may see it: a task's history and the activity stream.

Events on a branch the reader may not see are never loaded, so a hidden branch cannot leak
through the activity stream, its Atom feed or a task's history.  Both read newest first
along an index (``event(created_at, id)``, ``event(task_id, created_at, id)``); the
activity stream is narrowed by ``queries.activity_filters`` and pages on with a cursor
after the last event shown.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import AnyReader, Reader, Viewer, branch_visible, task_visible
from qmail.core.glance import excerpt
from qmail.queries.activity_filters import ActivityFilters
from qmail.queries.paging import before, key_cursor, read_key_cursor

ACTIVITY_SIZE = 100


HISTORY_SIZE = 500


# What each kind of event says, after the name of who did it.
_PHRASES = {
    "task_created": "opened the task",
    "message": "wrote a message",
    "tag": "tagged it",
    "untag": "removed the tag",
    "close": "closed it",
    "reopen": "reopened it",
    "assign": "assigned it to",
    "unassign": "unassigned it",
    "assign_refused": "could not assign it (not a team member):",
    "participant_added": "added",
    "participant_removed": "removed",
    "branch_opened": "opened a hidden branch",
    "ignored": "ignored an automatic mail:",
    "held": "held a mail it may not post:",
    "unsubscribed": "unsubscribed from its mail",
    "resubscribed": "subscribed to its mail again",
}


# Kinds whose detail is an id or a repeat of the title, not something to show.
_QUIET_DETAIL = {"task_created", "message", "branch_opened"}


# Failed attempts at team commands, mail held from someone who may not post, and tags (the
# team's own words for a task: "waiting", "finance-q4") are the team's business.
_TEAM_ONLY_KINDS = ("assign_refused", "held", "tag", "untag")


@dataclass(frozen=True)
class EventLine:
    """One line of a task's history or of the activity stream, ready to show."""

    created_at: datetime
    number: int
    title: str
    who: str
    text: str
    hidden: bool
    message_id: int | None  # for ``message`` events: the anchor on the task page
    event_id: int = 0
    email: str = ""  # who did it, when a person did


def describe(kind: str, detail: str) -> str:
    """The words for an event: ``tagged it urgent``, ``closed it``…"""
    phrase = _PHRASES.get(kind, kind.replace("_", " "))
    if kind in _QUIET_DETAIL or not detail:
        return phrase
    return f"{phrase} {detail}"


def _events_statement(person: Viewer, filters: ActivityFilters | None = None) -> Any:
    """SELECT the events ``person`` may see, with their task, author and branch.

    An event on a branch counts only if the branch is visible to ``person``; an event
    without a branch belongs to the task and is visible with it.  The author is an alias,
    so that the filters' own ``Person`` subqueries are not correlated with it.
    """
    branch = aliased(models.Branch)
    author = aliased(models.Person)
    statement = (
        select(  # type: ignore[call-overload]  # sqlmodel types select() up to 4 columns
            models.Event,
            col(models.Task.number),
            col(models.Task.title),
            col(author.name),
            col(author.email),
            col(branch.hidden),
        )
        .join(models.Task, col(models.Task.id) == models.Event.task_id)
        .outerjoin(branch, col(branch.id) == models.Event.branch_id)
        .outerjoin(author, col(author.id) == models.Event.person_id)
        .where(task_visible(person))
        .where(or_(col(models.Event.branch_id).is_(None), branch_visible(person, branch)))
        .order_by(col(models.Event.created_at).desc(), col(models.Event.id).desc())
    )
    if not person.is_team:
        statement = statement.where(col(models.Event.kind).not_in(_TEAM_ONLY_KINDS))
    if filters is not None:
        statement = statement.where(*filters.conditions(person, branch))
    return statement


def _line(
    event: models.Event,
    number: int,
    title: str,
    name: str | None,
    email: str | None,
    hidden: bool | None,
) -> EventLine:
    """One row of ``_events_statement`` as a line; a message event links to its message."""
    message_id = int(event.detail) if event.kind == "message" and event.detail.isdigit() else None
    return EventLine(
        created_at=event.created_at,
        number=number,
        title=title,
        who=name or email or "qmail",
        text=describe(event.kind, event.detail),
        hidden=bool(hidden),
        message_id=message_id,
        event_id=event.id or 0,
        email=email or "",
    )


def task_history(
    session: Session, person: Reader, task_id: int, with_messages: bool = True
) -> list[EventLine]:
    """The latest events of one task that ``person`` may see, newest first.

    ``with_messages=False`` leaves out "wrote a message": the task page shows the
    messages themselves.
    """
    statement = _history(person.is_team, with_messages)
    values = {"reader_id": person.id, "task_id": task_id}
    return [_line(*row) for row in session.exec(statement, params=values)]


@functools.lru_cache(maxsize=4)
def _history(is_team: bool, with_messages: bool) -> Any:
    """``task_history``'s statement for every reader of a kind and every task
    (``:reader_id``, ``:task_id``): built once, not on every task page."""
    statement = _events_statement(AnyReader(is_team)).where(
        models.Event.task_id == bindparam("task_id")
    )
    if not with_messages:
        statement = statement.where(models.Event.kind != "message")
    return statement.limit(HISTORY_SIZE)


def activity(
    session: Session,
    person: Reader,
    cursor: str | None = None,
    filters: ActivityFilters | None = None,
    limit: int = ACTIVITY_SIZE,
) -> tuple[list[EventLine], str | None]:
    """The latest events on every task and branch ``person`` may see that match
    ``filters``, newest first, from after ``cursor``; and the cursor of the next page
    (``None`` on the last one)."""
    statement = _events_statement(person, filters)
    if cursor is not None:
        after = read_key_cursor(cursor)
        statement = statement.where(before(models.Event.created_at, models.Event.id, after))
    lines = [_line(*row) for row in session.exec(statement.limit(limit + 1))]
    if len(lines) <= limit:
        return lines, None
    lines = lines[:limit]
    return lines, key_cursor(lines[-1].created_at, lines[-1].event_id)


FEED_EXCERPT = 600


def message_excerpts(session: Session, person: Reader, lines: list[EventLine]) -> dict[int, str]:
    """The start of the message of each ``message`` line, by message id: only messages of
    branches ``person`` may read (the feed shows them; the page links to them)."""
    ids = [line.message_id for line in lines if line.message_id is not None]
    if not ids:
        return {}
    rows = session.exec(
        select(models.Message.id, models.Message.text)
        .join(models.Branch, col(models.Branch.id) == models.Message.branch_id)
        .where(col(models.Message.id).in_(ids), branch_visible(person))
    ).all()
    return {message_id: excerpt(text, FEED_EXCERPT) for message_id, text in rows if message_id}
