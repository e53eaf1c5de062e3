"""The task page, ``/tasks/{number}``, and its forms: reply, hidden branch, tags, status.

An edge only.  The task is read by ``queries.tasks.read_task``, the same permission-checked
query as ``GET /api/tasks/{number}``, so the page never shows a branch the API would not;
a task the reader may not see is a 404, like one that does not exist.  Posting goes
through ``threads.posting.post_and_notify``, as the API does, and
tags and status through ``threads.commands.apply_commands``, as mail commands do.

Every rule is enforced here, in the handlers, never only by what the template offers:
only the team changes tags and status or opens hidden branches, and a hidden branch only
ever takes team members who already take part in the task (a client's id in the form is
refused, whatever the page showed).  Forms carry Litestar's CSRF token (``app.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlmodel import Session

from qmail import models
from qmail.access import Reader
from qmail.core.mail import Command
from qmail.core.route import normalize_tag
from qmail.errors import BadRequest, Forbidden
from qmail.queries.events import task_history
from qmail.queries.inbox import mark_read
from qmail.queries.tasks import read_task, tags_of, visible_branch, visible_task
from qmail.threads import posting
from qmail.threads.branches import fork_points, open_hidden_branch, team_candidates
from qmail.threads.commands import apply_commands
from qmail.web.forms import Form, form_id, form_ids, form_value, message_text

_STATUS_COMMANDS = {"closed": "close", "open": "reopen"}


def require_team(person: Reader, action: str) -> None:
    """403 for clients: checked after the task's visibility, so outsiders still get 404."""
    if not person.is_team:
        raise Forbidden(f"only team members {action}")


def tag_commands(
    session: Session, task: models.Task, form: dict[str, str | list[str]]
) -> list[Command]:
    """The ``tag``/``untag`` commands a tag form asks for, leaving out what changes nothing."""
    add, remove = (
        normalize_tag(form_value(form, name).strip().lstrip("#")) for name in ("add", "remove")
    )
    if not add and not remove:
        raise BadRequest("name a tag to add or remove")
    assert task.id is not None
    current = set(tags_of(session, [task.id])[task.id])
    commands = [Command("tag", add)] if add and add not in current else []
    if remove and remove in current:
        commands.append(Command("untag", remove))
    return commands


def see_task(number: int, anchor: str = "") -> Redirect:
    """Back to the task page after a form (303: the browser then GETs it)."""
    return Redirect(f"/tasks/{number}{anchor}", status_code=303)


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
        if seen and mark_read(session, person, detail.id, max(seen), datetime.now(UTC)):
            session.commit()
        task = session.get(models.Task, detail.id)
        assert task is not None
        assignee = session.get(models.Person, task.assignee_id) if task.assignee_id else None
        context = {
            "person": person,
            "task": detail,
            "assignee": assignee,
            "forks": fork_points(session, [branch.id for branch in detail.branches]),
            "history": task_history(session, person, detail.id),
            "candidates": (
                team_candidates(session, person, detail.id, state.team) if person.is_team else []
            ),
        }
        return Template("task.html", context=context)

    @post("/messages", sync_to_thread=True)
    def reply(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        state: State,
        number: FromPath[int],
        data: Form,
    ) -> Redirect:
        """Post to a branch the reader may see; its other readers are told by mail."""
        branch_id = form_id(data, "branch_id")
        if branch_id is None:
            raise BadRequest("branch_id is missing")
        text = message_text(data)
        task, branch = visible_branch(session, person, number, branch_id)
        now = datetime.now(UTC)
        message = posting.post_and_notify(
            session, state.context, task, branch, person.person, text, "web", now
        )
        session.commit()
        return see_task(number, f"#message-{message.id}")

    @post("/branches", sync_to_thread=True)
    def open_branch(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        state: State,
        number: FromPath[int],
        data: Form,
    ) -> Redirect:
        """Open a hidden branch for the team, from the task or one of its messages."""
        task = visible_task(session, person, number)
        require_team(person, "open hidden branches")
        chosen, message_id, text = (
            form_ids(data, "member"),
            form_id(data, "message_id"),
            message_text(data, required=False),
        )
        now = datetime.now(UTC)
        branch = open_hidden_branch(session, task, person, chosen, message_id, state.team, now)
        if text:
            posting.post_and_notify(
                session, state.context, task, branch, person.person, text, "web", now
            )
        session.commit()  # the task's updated_at stays: the branch is hidden
        return see_task(number, f"#branch-{branch.id}")

    @post("/tags", sync_to_thread=True)
    def change_tags(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        state: State,
        number: FromPath[int],
        data: Form,
    ) -> Redirect:
        """Add or remove a tag (``add``/``remove``), each change an event."""
        task = visible_task(session, person, number)
        require_team(person, "change tags")
        commands = tag_commands(session, task, data)
        self.apply(session, state, task, person, commands)
        return see_task(number)

    @post("/status", sync_to_thread=True)
    def change_status(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        state: State,
        number: FromPath[int],
        data: Form,
    ) -> Redirect:
        """Close or reopen the task (``status`` = ``closed``/``open``), an event."""
        task = visible_task(session, person, number)
        require_team(person, "close or reopen tasks")
        status = form_value(data, "status")
        if status not in _STATUS_COMMANDS:
            raise BadRequest("status must be open or closed")
        commands = [] if task.status == status else [Command(_STATUS_COMMANDS[status])]
        self.apply(session, state, task, person, commands)
        return see_task(number)

    @staticmethod
    def apply(
        session: Session,
        state: State,
        task: models.Task,
        person: Reader,
        commands: list[Command],
    ) -> None:
        """Carry out commands as mail commands are, and commit; nothing to do, no event."""
        if not commands:
            return
        now = datetime.now(UTC)
        apply_commands(session, task, person.person, tuple(commands), state.settings, now)
        task.updated_at = now
        session.commit()
