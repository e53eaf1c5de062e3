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
from typing import Annotated
from urllib.parse import quote

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import Reader, branch_visible
from qmail.context import Context
from qmail.errors import BadRequest, NotFound
from qmail.queries.tasks import (
    MessageOut,
    TaskDetail,
    TaskList,
    message_out,
    read_task,
    search_tasks,
    visible_branch,
)
from qmail.threads import posting

MAX_TEXT = 100_000  # characters; a message is prose, not a file


class NewMessage(msgspec.Struct):
    branch_id: int
    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]


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

    @get("/", sync_to_thread=False)
    def health(self) -> dict[str, str]:
        """For load balancers and monitors: answers without authentication."""
        return {"status": "ok"}


class TaskApi(Controller):
    path = "/tasks"

    @get("/", sync_to_thread=True)
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

    @post("/{number:int}/messages", sync_to_thread=True, status_code=201)
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

    @get("/{number:int}", sync_to_thread=True)
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

    @get("/{attachment_id:int}", sync_to_thread=True, media_type="application/octet-stream")
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
