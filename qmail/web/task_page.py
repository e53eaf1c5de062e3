"""The task page, ``/tasks/{number}``, and its one reply box (text, a branch, files).

An edge only.  The task is read by ``queries.tasks.read_task``, the same permission-checked
query as ``GET /api/tasks/{number}``, so the page never shows a branch the API would not;
a task the reader may not see is a 404, like one that does not exist.  Posting goes
through ``threads.posting.post_and_notify``, as the API does: the branch is looked up
again with the reader's permissions (``visible_branch``), so a client who forges the id
of a hidden branch gets a 404, whatever the page offered.  The team's forms (tags,
status, assignee, participants, hidden branches) are in ``task_edits.py``.

Replies are ``multipart/form-data`` so they can carry files; a request larger than the
mail size limit (``smtp.max_message_size``) is refused with 413 before it is read in full
(``replies_controller`` sets the limit from the settings).  Forms carry Litestar's CSRF
token (``app.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.datastructures import State, UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from sqlmodel import Session

from qmail import models
from qmail.access import Reader
from qmail.core.compose import human_size
from qmail.core.headers import one_line
from qmail.core.linkify import linkify
from qmail.core.mail import Attachment
from qmail.db import commit_unsynced
from qmail.errors import BadRequest, Forbidden
from qmail.queries.events import task_history
from qmail.queries.inbox import mark_read
from qmail.queries.participants import participants, team_members, waiting_on
from qmail.queries.tasks import read_task, visible_branch
from qmail.threads import posting
from qmail.threads.branches import fork_points, team_candidates
from qmail.web.forms import form_id, message_text

MAX_FILES = 20  # files in one reply
# Shown inline: raster images only.  SVG can carry script, and is served as bytes anyway.
PREVIEW_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

Upload = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]


def require_team(person: Reader, action: str) -> None:
    """403 for clients: checked after the task's visibility, so outsiders still get 404."""
    if not person.is_team:
        raise Forbidden(f"only team members {action}")


def see_task(number: int, anchor: str = "") -> Redirect:
    """Back to the task page after a form (303: the browser then GETs it)."""
    return Redirect(f"/tasks/{number}{anchor}", status_code=303)


def previewable(content_type: str) -> bool:
    """Whether an attachment is shown as an image on the page (raster types only)."""
    return content_type.split(";")[0].strip().lower() in PREVIEW_TYPES


class TaskPage(Controller):
    path = "/tasks/{number:int}"

    @get("/", sync_to_thread=True)
    def show(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        state: State,
        number: FromPath[int],
    ) -> Template:
        """The task with the branches the reader may see, its history, and its forms."""
        detail = read_task(session, person, number)
        seen = [message.id for branch in detail.branches for message in branch.messages]
        # up to the newest message the reader may see: the inbox then shows the task read
        if seen:
            with commit_unsynced(session):  # a read mark a power cut loses is harmless
                mark_read(session, person, detail.id, max(seen), datetime.now(UTC))
        task = session.get(models.Task, detail.id)
        assert task is not None
        assignee = session.get(models.Person, task.assignee_id) if task.assignee_id else None
        team = state.team
        context = {
            "person": person,
            "task": detail,
            "assignee": assignee,
            "forks": fork_points(session, [branch.id for branch in detail.branches]),
            "history": task_history(session, person, detail.id, with_messages=False),
            "participants": participants(session, detail.id, team),
            "waiting": waiting_on(session, detail.id, team) if task.status == "open" else None,
            "candidates": (
                team_candidates(session, person, detail.id, team) if person.is_team else []
            ),
            "team_members": team_members(session, team) if person.is_team else [],
            "max_files": MAX_FILES,
            "max_size": human_size(state.settings.smtp.max_message_size),
            "linkify": linkify,
            "human_size": human_size,
            "previewable": previewable,
        }
        return Template("task.html", context=context)


class TaskReplies(Controller):
    """The reply box's handler; ``replies_controller`` gives it the mail size limit."""

    path = "/tasks/{number:int}"

    @post("/messages", sync_to_thread=True)
    def reply(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        state: State,
        number: FromPath[int],
        data: Upload,
    ) -> Redirect:
        """Post to a branch the reader may see, with any files; its other readers are told
        by mail, the files attached."""
        branch_id = form_id(data, "branch_id")
        if branch_id is None:
            raise BadRequest("branch_id is missing")
        task, branch = visible_branch(session, person, number, branch_id)
        files = uploaded_files(data, state.settings.smtp.max_message_size)
        text = message_text(data, required=not files)
        now = datetime.now(UTC)
        message = posting.post_and_notify(
            session, state.context, task, branch, person.person, text, "web", now, files
        )
        session.commit()
        return see_task(number, f"#message-{message.id}")


def replies_controller(max_size: int) -> type[TaskReplies]:
    """``TaskReplies`` with the request limit of this configuration: a request larger than
    a mail may be is refused (413) as it arrives, not after it was read."""
    return type("TaskReplies", (TaskReplies,), {"request_max_body_size": max_size})


def uploaded_files(form: dict[str, Any], max_size: int) -> tuple[Attachment, ...]:
    """The files of a reply as attachments; none chosen gives none.

    A browser sends an empty part for a file field left empty; that is skipped.  More
    than ``MAX_FILES``, or files larger together than a mail may be, is a 400.
    """
    values = form.get("files", [])
    uploads = values if isinstance(values, list) else [values]
    files = []
    for upload in uploads:
        if upload == "":  # how Litestar reads an empty file field
            continue
        if not isinstance(upload, UploadFile):
            raise BadRequest("files must be files")
        content = upload.file.read()
        if not upload.filename and not content:
            continue
        files.append(Attachment(file_name(upload.filename), content_type(upload), content))
    if len(files) > MAX_FILES:
        raise BadRequest(f"at most {MAX_FILES} files in one reply")
    if sum(file.size for file in files) > max_size:
        raise BadRequest(f"the files are larger together than {human_size(max_size)}")
    return tuple(files)


def file_name(name: str) -> str:
    """The file's own name, without a folder a browser or a forger put before it.

    >>> file_name("C:\\\\Users\\\\carol\\\\scan.pdf"), file_name("../../etc/passwd"), file_name("")
    ('scan.pdf', 'passwd', 'file')
    """
    base = PureWindowsPath(PurePosixPath(one_line(name)).name).name.strip()
    return base[-255:] or "file"


def content_type(upload: UploadFile) -> str:
    """The type the browser gave, if it is one (``type/subtype``), else opaque bytes."""
    given = one_line(upload.content_type or "").lower()
    if "/" not in given or len(given) > 255:
        return "application/octet-stream"
    return given
