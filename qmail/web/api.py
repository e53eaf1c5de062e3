"""The JSON API (CONTRACT.md, "Web and JSON API"): tasks, their branches and attachments.

Every query carries ``task_visible``/``branch_visible`` from ``qmail.access``: what a
caller may not see is never loaded, so it cannot leak through a forgotten filter.  A task
or attachment the caller may not see answers 404, exactly like one that does not exist.
Handlers are sync and run in worker threads: the database work is blocking.  The
controllers are mounted under ``/api`` by ``api_guards.api_router``, which refuses bodies
that are not JSON and cookie-authenticated writes without the CSRF token.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import quote

import msgspec
from litestar import Controller, Response, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import Reader, branch_visible
from qmail.context import Context
from qmail.core.addresses import typed_address
from qmail.core.mail import Command
from qmail.core.route import normalize_tag
from qmail.errors import BadRequest, Forbidden, NotFound
from qmail.people import Team, on_team
from qmail.queries.tasks import (
    MessageOut,
    TaskDetail,
    TaskList,
    message_out,
    read_task,
    search_tasks,
    visible_branch,
    visible_task,
)
from qmail.threads import posting
from qmail.threads.commands import apply_commands
from qmail.threads.opening import MAX_RECIPIENTS, open_task
from qmail.web.api_docs import ERRORS

MAX_TEXT = 100_000  # characters; a message is prose, not a file
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class NewMessage(msgspec.Struct):
    branch_id: int
    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]


class NewTaskIn(msgspec.Struct):
    """A task the team opens: its first message goes by mail to ``to``."""

    to: Annotated[list[str], msgspec.Meta(min_length=1, max_length=MAX_RECIPIENTS)]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)]
    tags: Annotated[list[Tag], msgspec.Meta(max_length=20)] = []


class TaskChange(msgspec.Struct):
    """What to change on a task; what is left out stays as it is.  ``assignee``: a team
    member's address, or ``null`` to unassign."""

    status: Literal["open", "closed"] | None = None
    add_tags: Annotated[list[Tag], msgspec.Meta(max_length=20)] = []
    remove_tags: Annotated[list[Tag], msgspec.Meta(max_length=20)] = []
    assignee: str | msgspec.UnsetType | None = msgspec.UNSET


def task_commands(session: Session, change: TaskChange, team: Team) -> list[Command]:
    """The commands a change asks for; 400 for an assignee who is not on the team."""
    commands = (
        [Command({"open": "reopen", "closed": "close"}[change.status])] if change.status else []
    )
    commands += [Command("tag", name) for name in map(normalize_tag, change.add_tags) if name]
    commands += [Command("untag", name) for name in map(normalize_tag, change.remove_tags) if name]
    if change.assignee is None:
        commands.append(Command("unassign"))
    elif isinstance(change.assignee, str):
        email = typed_address(change.assignee)
        if email is None or not on_team(session, team, email):
            raise BadRequest(f"{change.assignee!r} is not a team member's address")
        commands.append(Command("assign", email))
    return commands


# Content that a browser would run as a page in our origin is served as opaque bytes.
_ACTIVE_TYPES = {
    "text/html",
    "image/svg+xml",
    "application/xhtml+xml",
    "text/xml",
    "application/xml",
}


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
    path = "/health"

    @get("/", sync_to_thread=False, security=[{}])
    def health(self) -> dict[str, str]:
        """For load balancers and monitors: answers without authentication."""
        return {"status": "ok"}


class TaskApi(Controller):
    path = "/tasks"

    @get("/", sync_to_thread=True, responses=ERRORS)
    def list_tasks(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        tag: Annotated[str | None, QueryParameter(max_length=100)] = None,
        status: Annotated[str | None, QueryParameter(max_length=20)] = None,
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> TaskList:
        """The tasks the caller may see, filtered by tag, status and words (``q``): newest
        activity first, or best match first with ``q``.  The next page is
        ``cursor=<next_cursor>``, which costs what the first page costs."""
        return search_tasks(session, person, tag, status, q, limit, offset, cursor)

    @post("/", sync_to_thread=True, status_code=201, responses=ERRORS)
    def open_task(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        state: State,
        data: JSONBody[NewTaskIn],
    ) -> TaskDetail:
        """Open a task to a client (team members only): the first message is mailed to the
        ``to`` addresses, each with their own reply address; the triage team takes part."""
        if not person.is_team:
            raise Forbidden("only team members open tasks from the web; clients write by mail")
        addresses = [typed_address(email) for email in data.to]
        bad = [email for email, checked in zip(data.to, addresses, strict=True) if not checked]
        if bad:
            raise BadRequest(f"not an email address: {bad[0]!r}")
        title, text = data.title.strip(), data.text.replace("\r\n", "\n").strip()
        if not title or not text:
            raise BadRequest("title and text must not be empty")
        context: Context = state.context
        task, _ = open_task(
            session,
            context,
            person.person,
            [email for email in addresses if email],
            title,
            text,
            data.tags,
            "api",
            datetime.now(UTC),
        )
        session.commit()
        return read_task(session, person, task.number)

    @patch("/{number:int}", sync_to_thread=True, responses=ERRORS)
    def change_task(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        state: State,
        number: FromPath[int],
        data: JSONBody[TaskChange],
    ) -> TaskDetail:
        """Change a task's status, tags or assignee (team members only), each change an
        event in its history, as the same commands in a team member's mail would be."""
        task = visible_task(session, person, number)
        if not person.is_team:
            raise Forbidden("only team members change a task's status, tags or assignee")
        context: Context = state.context
        commands = task_commands(session, data, Team.of(context.settings))
        apply_commands(
            session, task, person.person, tuple(commands), context.settings, datetime.now(UTC)
        )
        session.commit()
        return read_task(session, person, number)

    @post("/{number:int}/messages", sync_to_thread=True, status_code=201, responses=ERRORS)
    def post_message(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        state: State,
        number: FromPath[int],
        data: JSONBody[NewMessage],
    ) -> MessageOut:
        """Post as the caller to a branch they may see; its other members are told by mail."""
        text = data.text.replace("\r\n", "\n").strip()
        if not text:
            raise BadRequest("text must not be empty")
        task, branch = visible_branch(session, person, number, data.branch_id)
        context: Context = state.context
        now = datetime.now(UTC)
        message = posting.post_and_notify(
            session, context, task, branch, person.person, text, "api", now
        )
        session.commit()
        return message_out(session, message)

    @get("/{number:int}", sync_to_thread=True, responses=ERRORS)
    def get_task(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        number: FromPath[int],
    ) -> TaskDetail:
        """One task with the branches the caller is a member of (or, for the team, can see)."""
        return read_task(session, person, number)


class AttachmentApi(Controller):
    path = "/attachments"

    @get(
        "/{attachment_id:int}",
        sync_to_thread=True,
        media_type="application/octet-stream",
        responses=ERRORS,
    )
    def download(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
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
