"""Reading tasks for the API and the pages: permission-checked queries and their shapes.

Every query carries ``task_visible``/``branch_visible`` from ``qmail.access``: what a
caller may not see is never loaded, so it cannot leak through a forgotten filter.  The
shapes are msgspec structs, so the OpenAPI schema describes the answers exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import msgspec
from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import AnyReader, Reader, branch_visible, task_visible
from qmail.core.search import search_terms
from qmail.errors import BadRequest, NotFound
from qmail.queries.filters import status_is
from qmail.queries.paging import (
    COUNT_LIMIT,
    before,
    count_upto,
    key_cursor,
    offset_cursor,
    read_key_cursor,
    read_offset_cursor,
)
from qmail.queries.search import find_tasks


class TaskSummary(msgspec.Struct):
    id: int
    number: int
    title: str
    status: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime


class TaskList(msgspec.Struct):
    """A page of tasks.  ``total`` counts every match up to ``paging.COUNT_LIMIT``;
    ``total_exact`` is false when there are more (or, for a text search, when only the
    newest matching messages were ranked).  ``next_cursor`` asks for the next page
    (``cursor=``), ``None`` on the last one."""

    items: list[TaskSummary]
    total: int
    next_cursor: str | None = None
    total_exact: bool = True


class Author(msgspec.Struct):
    email: str
    name: str


class AttachmentInfo(msgspec.Struct):
    filename: str
    content_type: str
    size: int
    url: str


class MessageOut(msgspec.Struct):
    id: int
    author: Author
    text: str
    quoted: str
    sent_at: datetime
    source: str
    attachments: list[AttachmentInfo]


class BranchOut(msgspec.Struct):
    id: int
    hidden: bool
    parent_id: int | None
    members: list[str]
    messages: list[MessageOut]


class TaskDetail(TaskSummary):
    branches: list[BranchOut]


def tags_of(session: Session, task_ids: list[int]) -> dict[int, list[str]]:
    """The tag names of each task, in one query."""
    tags: dict[int, list[str]] = {task_id: [] for task_id in task_ids}
    for task_id, name in session.exec(_TAGS_OF, params={"ids": task_ids}):
        tags[task_id].append(name)
    return tags


# The statements of every task page and list, built once with their lists as parameters.
_TAGS_OF = (
    select(models.TaskTag.task_id, models.Tag.name)
    .join(models.Tag, col(models.Tag.id) == models.TaskTag.tag_id)
    .where(col(models.TaskTag.task_id).in_(bindparam("ids", expanding=True)))
    .order_by(col(models.Tag.name))
)
_MEMBERS_OF = (
    select(models.BranchMember.branch_id, models.Person.email)
    .join(models.Person, col(models.Person.id) == models.BranchMember.person_id)
    .where(col(models.BranchMember.branch_id).in_(bindparam("ids", expanding=True)))
    .order_by(col(models.BranchMember.added_at), col(models.Person.email))
)
_ATTACHMENTS_OF = (
    select(  # type: ignore[call-overload]  # sqlmodel types select() up to 4 columns
        col(models.Attachment.id),
        col(models.Attachment.message_id),
        col(models.Attachment.filename),
        col(models.Attachment.content_type),
        col(models.Attachment.size),
    )
    .where(col(models.Attachment.message_id).in_(bindparam("ids", expanding=True)))
    .order_by(col(models.Attachment.id))
)


class TaskRow(Protocol):
    """What a summary is made of: a ``Task``, or a row of ``TASK_COLUMNS``."""

    @property
    def id(self) -> int | None: ...
    @property
    def number(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


# A list reads these columns, not whole ``Task`` objects (which cost as much to build again
# as the rest of the page).
TASK_COLUMNS = (
    col(models.Task.id),
    col(models.Task.number),
    col(models.Task.title),
    col(models.Task.status),
    col(models.Task.created_at),
    col(models.Task.updated_at),
)


def _task_rows() -> Any:
    """SELECT ``TASK_COLUMNS``: rows a ``TaskRow``."""
    return select(*TASK_COLUMNS)  # type: ignore[call-overload]  # sqlmodel types up to 4


def summarize(task: TaskRow, tags: list[str]) -> TaskSummary:
    assert task.id is not None
    return TaskSummary(
        task.id, task.number, task.title, task.status, tags, task.created_at, task.updated_at
    )


def search_tasks(
    session: Session,
    person: Reader,
    tag: str | None,
    status: str | None,
    q: str | None,
    limit: int,
    offset: int = 0,
    cursor: str | None = None,
    where: Sequence[Any] = (),
    count_limit: int = COUNT_LIMIT,
) -> TaskList:
    """The tasks ``person`` may see that match the filters: newest activity first, or,
    with words to look for (``q``), best match first.

    Pages follow ``cursor`` (the ``next_cursor`` of the page before); ``offset`` is still
    understood, but costs what it skips.  ``where`` adds conditions on ``Task`` (the
    inbox's filters); ``count_limit`` 0 counts nothing (``total`` is then 0, not exact).
    Tags are the team's: a client's summaries carry none, and a client filtering by one
    is refused (its answers would tell which of their tasks the team tagged so).
    """
    conditions = [task_visible(person), *where]
    if tag and not person.is_team:
        raise BadRequest("tags are the team's own: filter by status or words instead")
    tag_id = _tag_id(tag) if tag else None
    if status:  # a short list (a client's tasks, a tag's) is read, not the status index
        conditions.append(status_is(status, listed=tag_id is not None or not person.is_team))
    if q and q.strip():
        if tag_id is not None:
            tagged = select(col(models.TaskTag.task_id)).where(models.TaskTag.tag_id == tag_id)
            conditions.append(col(models.Task.id).in_(tagged))
        return _ranked(session, person, conditions, search_terms(q), limit, offset, cursor)
    listed, when, row_id = _listed(conditions, tag_id)
    total, exact = 0, False
    if count_limit:
        counted = listed.with_only_columns(col(models.Task.id))
        total, exact = count_upto(session, counted, count_limit)
    if cursor is not None:
        listed = listed.where(before(when, row_id, read_key_cursor(cursor)))
    tasks = session.exec(
        listed.order_by(when.desc(), row_id.desc()).limit(limit + 1).offset(offset)
    ).all()
    following = None
    if len(tasks) > limit:
        tasks = tasks[:limit]
        following = key_cursor(tasks[-1].updated_at, tasks[-1].id or 0)
    return TaskList(_summaries(session, person, list(tasks)), total, following, exact)


def _tag_id(tag: str) -> Any:
    """The id of the tag named so, as a subquery (NULL, so no task, for an unknown name)."""
    name = tag.strip().casefold()
    return select(col(models.Tag.id)).where(models.Tag.name == name).scalar_subquery()


def _listed(conditions: list[Any], tag_id: Any) -> tuple[Any, Any, Any]:
    """SELECT the tasks of ``conditions`` (under the tag ``tag_id``, if any), and the two
    columns they are ordered and paged by: the task's ``(updated_at, id)``, or under a tag
    the copies in ``tasktag`` (the same values), so the tag's tasks are one range of the
    index ``tasktag(tag_id, updated_at, task_id)``, newest first, not all read and sorted.
    """
    listed = _task_rows().where(*conditions)
    if tag_id is None:
        return listed, col(models.Task.updated_at), col(models.Task.id)
    tagged = listed.join(models.TaskTag, col(models.TaskTag.task_id) == models.Task.id).where(
        models.TaskTag.tag_id == tag_id
    )
    return tagged, col(models.TaskTag.updated_at), col(models.TaskTag.task_id)


def _ranked(
    session: Session,
    person: Reader,
    conditions: list[Any],
    terms: tuple[str, ...],
    limit: int,
    offset: int,
    cursor: str | None,
) -> TaskList:
    """A page of the tasks matching ``terms`` (and ``conditions``), best first."""
    found = find_tasks(session, person, terms)
    order = [match.task_id for match in found.matches]
    if len(conditions) > 1 and order:  # a tag or status too: keep the tasks that have it
        kept = set(
            session.exec(
                select(col(models.Task.id)).where(col(models.Task.id).in_(order), *conditions)
            ).all()
        )
        order = [task_id for task_id in order if task_id in kept]
    start = read_offset_cursor(cursor) if cursor is not None else offset
    page = order[start : start + limit]
    tasks = {
        task.id: task for task in session.exec(_task_rows().where(col(models.Task.id).in_(page)))
    }
    following = offset_cursor(start + limit) if start + limit < len(order) else None
    items = _summaries(session, person, [tasks[task_id] for task_id in page if task_id in tasks])
    return TaskList(items, len(order), following, found.exact)


def _summaries(session: Session, person: Reader, tasks: Sequence[TaskRow]) -> list[TaskSummary]:
    tags = visible_tags(session, person, [task.id for task in tasks if task.id is not None])
    return [summarize(task, tags[task.id or 0]) for task in tasks]


def visible_tags(session: Session, person: Reader, task_ids: list[int]) -> dict[int, list[str]]:
    """``tags_of`` for the team; none for a client: tags are the team's own words."""
    if person.is_team:
        return tags_of(session, task_ids)
    return {task_id: [] for task_id in task_ids}


def members_of(session: Session, branch_ids: list[int]) -> dict[int, list[str]]:
    """The members' addresses of each branch, in one query."""
    members: dict[int, list[str]] = {branch_id: [] for branch_id in branch_ids}
    for branch_id, email in session.exec(_MEMBERS_OF, params={"ids": branch_ids}):
        members[branch_id].append(email)
    return members


def attachments_of(session: Session, message_ids: list[int]) -> dict[int, list[AttachmentInfo]]:
    """The attachments of each message, without their content (which may be megabytes)."""
    attachments: dict[int, list[AttachmentInfo]] = {message_id: [] for message_id in message_ids}
    rows = session.exec(_ATTACHMENTS_OF, params={"ids": message_ids})
    for attachment_id, message_id, filename, content_type, size in rows:
        url = f"/api/attachments/{attachment_id}"
        attachments[message_id].append(AttachmentInfo(filename, content_type, size, url))
    return attachments


def messages_of(
    session: Session, branch_ids: list[int], message_id: int | None = None
) -> dict[int, list[MessageOut]]:
    """The messages of each branch (or just one), oldest first, with authors and attachments."""
    statement = (
        select(  # type: ignore[call-overload]  # sqlmodel types select() up to 4 columns
            col(models.Message.id),
            col(models.Message.branch_id),
            col(models.Message.text),
            col(models.Message.quoted),
            col(models.Message.sent_at),
            col(models.Message.source),
            col(models.Person.email),
            col(models.Person.name),
        )
        .join(models.Person, col(models.Person.id) == models.Message.author_id)
        .where(col(models.Message.branch_id).in_(branch_ids))
        .order_by(col(models.Message.sent_at), col(models.Message.id))
    )
    if message_id is not None:
        statement = statement.where(col(models.Message.id) == message_id)
    rows = session.exec(statement).all()
    attachments = attachments_of(session, [row[0] for row in rows if row[0] is not None])
    messages: dict[int, list[MessageOut]] = {branch_id: [] for branch_id in branch_ids}
    for message_id, branch_id, text, quoted, sent_at, source, email, name in rows:
        author = Author(email, name)
        found = attachments[message_id or 0]
        message = MessageOut(message_id or 0, author, text, quoted, sent_at, source, found)
        messages[branch_id].append(message)
    return messages


def read_task(session: Session, person: Reader, number: int) -> TaskDetail:
    """A task with the branches ``person`` may see, in six queries however long the task."""
    task = visible_task(session, person, number)
    assert task.id is not None
    branches = session.exec(
        _visible_branches(person.is_team), params={"reader_id": person.id, "task_id": task.id}
    ).all()
    branch_ids = [branch.id for branch in branches if branch.id is not None]
    members, messages = members_of(session, branch_ids), messages_of(session, branch_ids)
    summary = summarize(task, visible_tags(session, person, [task.id])[task.id])
    return TaskDetail(
        **msgspec.structs.asdict(summary),
        branches=[
            BranchOut(
                branch.id or 0,
                branch.hidden,
                branch.parent_id,
                members[branch.id or 0],
                messages[branch.id or 0],
            )
            for branch in branches
        ],
    )


def visible_task(session: Session, person: Reader, number: int) -> models.Task:
    """Task ``number`` if ``person`` may see it; else 404, as if it did not exist."""
    values = {"reader_id": person.id, "number": number}
    task = session.exec(_visible_task(person.is_team), params=values).first()
    if task is None or task.id is None:
        raise NotFound(f"no task #{number}")
    return task


# ``read_task``'s statements for every reader of a kind (``:reader_id``): built once, not
# on every task page.
@functools.cache
def _visible_task(is_team: bool) -> Any:
    return select(models.Task).where(
        models.Task.number == bindparam("number"), task_visible(AnyReader(is_team))
    )


@functools.cache
def _visible_branches(is_team: bool) -> Any:
    return (
        select(models.Branch)
        .where(
            models.Branch.task_id == bindparam("task_id"),
            branch_visible(AnyReader(is_team)),
        )
        .order_by(col(models.Branch.id))
    )


def visible_branch(
    session: Session, person: Reader, number: int, branch_id: int
) -> tuple[models.Task, models.Branch]:
    """Task ``number`` and its branch ``branch_id``, if ``person`` may see both; else 404."""
    row = session.exec(
        select(models.Task, models.Branch)
        .join(models.Branch, col(models.Branch.task_id) == models.Task.id)
        .where(
            models.Task.number == number,
            models.Branch.id == branch_id,
            task_visible(person),
            branch_visible(person),
        )
    ).first()
    if row is None:
        raise NotFound(f"no branch {branch_id} in task #{number}")
    return row[0], row[1]


def message_out(session: Session, message: models.Message) -> MessageOut:
    """One message in the API's shape (the caller has checked it may be seen)."""
    assert message.branch_id is not None and message.id is not None
    (found,) = messages_of(session, [message.branch_id], message.id)[message.branch_id]
    return found
