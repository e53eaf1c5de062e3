"""The JSON API (CONTRACT.md, "Web and JSON API"): tasks, their branches and attachments.

Every query carries ``task_visible``/``branch_visible`` from ``qmail.permissions``: what a
caller may not see is never loaded, so it cannot leak through a forgotten filter.  A task
or attachment the caller may not see answers 404, exactly like one that does not exist.
Handlers are sync and run in worker threads: the database work is blocking.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from sqlalchemy import func
from sqlmodel import Session, col, select

from qmail import models
from qmail.errors import NotFound
from qmail.permissions import branch_visible, task_visible

# Content that a browser would run as a page in our origin is served as opaque bytes.
_ACTIVE_TYPES = {
    "text/html",
    "image/svg+xml",
    "application/xhtml+xml",
    "text/xml",
    "application/xml",
}


class TaskSummary(msgspec.Struct):
    id: int
    number: int
    title: str
    status: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime


class TaskList(msgspec.Struct):
    items: list[TaskSummary]
    total: int


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


def aware(moment: datetime) -> datetime:
    """``moment`` in UTC; SQLite hands back naive datetimes, which are stored as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with its ``%``, ``_`` and ``\\`` escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def tags_of(session: Session, task_ids: list[int]) -> dict[int, list[str]]:
    """The tag names of each task, in one query."""
    statement = (
        select(models.TaskTag.task_id, models.Tag.name)
        .join(models.Tag, col(models.Tag.id) == models.TaskTag.tag_id)
        .where(col(models.TaskTag.task_id).in_(task_ids))
        .order_by(col(models.Tag.name))
    )
    tags: dict[int, list[str]] = {task_id: [] for task_id in task_ids}
    for task_id, name in session.exec(statement):
        tags[task_id].append(name)
    return tags


def summarize(task: models.Task, tags: list[str]) -> TaskSummary:
    assert task.id is not None
    created_at, updated_at = aware(task.created_at), aware(task.updated_at)
    return TaskSummary(task.id, task.number, task.title, task.status, tags, created_at, updated_at)


def search_tasks(
    session: Session,
    person: models.Person,
    tag: str | None,
    status: str | None,
    q: str | None,
    limit: int,
    offset: int,
) -> TaskList:
    """The tasks ``person`` may see that match the filters, newest activity first."""
    conditions = [task_visible(person)]
    if tag:
        tagged = (
            select(models.TaskTag.task_id)
            .join(models.Tag, col(models.Tag.id) == models.TaskTag.tag_id)
            .where(models.Tag.name == tag.strip().casefold())
        )
        conditions.append(col(models.Task.id).in_(tagged))
    if status:
        conditions.append(col(models.Task.status) == status)
    if q:
        pattern = like_pattern(q)
        in_messages = (
            select(models.Message.task_id)
            .join(models.Branch, col(models.Branch.id) == models.Message.branch_id)
            .where(branch_visible(person), col(models.Message.text).ilike(pattern, escape="\\"))
        )
        conditions.append(
            col(models.Task.title).ilike(pattern, escape="\\")
            | col(models.Task.id).in_(in_messages)
        )
    total = session.exec(select(func.count()).select_from(models.Task).where(*conditions)).one()
    tasks = session.exec(
        select(models.Task)
        .where(*conditions)
        .order_by(col(models.Task.updated_at).desc(), col(models.Task.id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    tags = tags_of(session, [task.id for task in tasks if task.id is not None])
    return TaskList(items=[summarize(task, tags[task.id or 0]) for task in tasks], total=total)


def members_of(session: Session, branch_ids: list[int]) -> dict[int, list[str]]:
    """The members' addresses of each branch, in one query."""
    statement = (
        select(models.BranchMember.branch_id, models.Person.email)
        .join(models.Person, col(models.Person.id) == models.BranchMember.person_id)
        .where(col(models.BranchMember.branch_id).in_(branch_ids))
        .order_by(col(models.BranchMember.added_at), col(models.Person.email))
    )
    members: dict[int, list[str]] = {branch_id: [] for branch_id in branch_ids}
    for branch_id, email in session.exec(statement):
        members[branch_id].append(email)
    return members


def attachments_of(session: Session, message_ids: list[int]) -> dict[int, list[AttachmentInfo]]:
    """The attachments of each message, without their content (which may be megabytes)."""
    statement = (
        select(  # type: ignore[call-overload]  # sqlmodel types select() up to 4 columns
            col(models.Attachment.id),
            col(models.Attachment.message_id),
            col(models.Attachment.filename),
            col(models.Attachment.content_type),
            col(models.Attachment.size),
        )
        .where(col(models.Attachment.message_id).in_(message_ids))
        .order_by(col(models.Attachment.id))
    )
    attachments: dict[int, list[AttachmentInfo]] = {message_id: [] for message_id in message_ids}
    for attachment_id, message_id, filename, content_type, size in session.exec(statement):
        url = f"/api/attachments/{attachment_id}"
        attachments[message_id].append(AttachmentInfo(filename, content_type, size, url))
    return attachments


def messages_of(session: Session, branch_ids: list[int]) -> dict[int, list[MessageOut]]:
    """The messages of each branch, oldest first, with authors and attachments."""
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
    rows = session.exec(statement).all()
    attachments = attachments_of(session, [row[0] for row in rows if row[0] is not None])
    messages: dict[int, list[MessageOut]] = {branch_id: [] for branch_id in branch_ids}
    for message_id, branch_id, text, quoted, sent_at, source, email, name in rows:
        author, sent_at = Author(email, name), aware(sent_at)
        found = attachments[message_id or 0]
        message = MessageOut(message_id or 0, author, text, quoted, sent_at, source, found)
        messages[branch_id].append(message)
    return messages


def read_task(session: Session, person: models.Person, number: int) -> TaskDetail:
    """A task with the branches ``person`` may see, in six queries however long the task."""
    task = session.exec(
        select(models.Task).where(models.Task.number == number, task_visible(person))
    ).first()
    if task is None or task.id is None:
        raise NotFound(f"no task #{number}")
    branches = session.exec(
        select(models.Branch)
        .where(models.Branch.task_id == task.id, branch_visible(person))
        .order_by(col(models.Branch.id))
    ).all()
    branch_ids = [branch.id for branch in branches if branch.id is not None]
    members, messages = members_of(session, branch_ids), messages_of(session, branch_ids)
    summary = summarize(task, tags_of(session, [task.id])[task.id])
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


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the real one (RFC 6266, RFC 5987)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def served_type(content_type: str) -> str:
    """The type to serve an attachment as: active or malformed types become opaque bytes."""
    base = content_type.split(";")[0].strip().lower()
    if base in _ACTIVE_TYPES or "/" not in base or any(c in content_type for c in "\r\n"):
        return "application/octet-stream"
    return content_type


class HealthApi(Controller):
    path = "/api/health"

    @get("/", sync_to_thread=False)
    def health(self) -> dict[str, str]:
        """For load balancers and monitors: answers without authentication."""
        return {"status": "ok"}


class TaskApi(Controller):
    path = "/api/tasks"

    @get("/", sync_to_thread=True)
    def list_tasks(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[models.Person],
        tag: Annotated[str | None, QueryParameter(max_length=100)] = None,
        status: Annotated[str | None, QueryParameter(max_length=20)] = None,
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> TaskList:
        """The tasks the caller may see, filtered by tag, status and text."""
        return search_tasks(session, person, tag, status, q, limit, offset)

    @get("/{number:int}", sync_to_thread=True)
    def get_task(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[models.Person],
        number: FromPath[int],
    ) -> TaskDetail:
        """One task with the branches the caller is a member of (or, for the team, can see)."""
        return read_task(session, person, number)


class AttachmentApi(Controller):
    path = "/api/attachments"

    @get("/{attachment_id:int}", sync_to_thread=True, media_type="application/octet-stream")
    def download(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[models.Person],
        attachment_id: FromPath[int],
    ) -> Response[bytes]:
        """An attachment's bytes, only from a branch the caller may see."""
        attachment = session.exec(
            select(models.Attachment)
            .join(models.Message, col(models.Message.id) == models.Attachment.message_id)
            .join(models.Branch, col(models.Branch.id) == models.Message.branch_id)
            .where(models.Attachment.id == attachment_id, branch_visible(person))
        ).first()
        if attachment is None:
            raise NotFound(f"no attachment {attachment_id}")
        return Response(
            attachment.content,
            media_type=served_type(attachment.content_type),
            headers={
                "Content-Disposition": content_disposition(attachment.filename),
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )
