"""The team's forms on the task page: tags, status, assignee, participants, hidden branches.

An edge only.  Tags, status and assignee go through ``threads.commands.apply_commands``,
as mail commands do; people are added as a team member's mail copies them in
(``threads.branches.add_copied``, which creates someone new).  Every rule is enforced
here, in the handlers, never only by what the template offers: the task must be visible
to the reader (else 404), and only the team changes it (else 403); a hidden branch only
ever takes team members who already take part in the task (a client's id in the form is
refused, whatever the page showed).  Each form works without JavaScript: a POST, then a
303 back to the page.
"""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect
from sqlmodel import Session

from qmail import models
from qmail.access import Reader
from qmail.core.addresses import split_address, typed_address
from qmail.core.mail import Address, Command
from qmail.core.route import normalize_tag
from qmail.errors import BadRequest, NotFound
from qmail.people import is_ours
from qmail.queries.tasks import tags_of, visible_task
from qmail.threads import posting
from qmail.threads.branches import add_copied, open_hidden_branch
from qmail.threads.commands import apply_commands
from qmail.threads.tasks import main_branch, record_event, remove_member
from qmail.web.forms import Form, form_id, form_ids, form_value, message_text
from qmail.web.task_page import require_team, see_task

_STATUS_COMMANDS = {"closed": "close", "open": "reopen"}


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


def assign_commands(
    session: Session, state: State, task: models.Task, form: dict[str, str | list[str]]
) -> list[Command]:
    """The command an assignee form asks for: ``assign`` a team member, or ``unassign``."""
    assignee_id = form_id(form, "assignee")
    if assignee_id == task.assignee_id:
        return []
    if assignee_id is None:
        return [Command("unassign")]
    assignee = session.get(models.Person, assignee_id)
    if assignee is None or not state.team.includes(assignee):
        raise BadRequest("only a team member can be assigned")
    return [Command("assign", assignee.email)]


def form_address(form: dict[str, str | list[str]]) -> Address:
    """The address (and optional name) of a participant form, or 400."""
    email, name = typed_address(form_value(form, "email")), form_value(form, "name").strip()
    if email is None or "." not in split_address(email)[1] or len(name) > 200:
        raise BadRequest("give an address like name@example.com")
    return Address(email, name)


class TaskEdits(Controller):
    path = "/tasks/{number:int}"

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
        self.apply(session, state, task, person, tag_commands(session, task, data))
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

    @post("/assignee", sync_to_thread=True)
    def change_assignee(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        state: State,
        number: FromPath[int],
        data: Form,
    ) -> Redirect:
        """Assign the task to a team member (``assignee`` = their id), or to nobody (``""``)."""
        task = visible_task(session, person, number)
        require_team(person, "assign tasks")
        self.apply(session, state, task, person, assign_commands(session, state, task, data))
        return see_task(number)

    @post("/participants", sync_to_thread=True)
    def add_participant(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        state: State,
        number: FromPath[int],
        data: Form,
    ) -> Redirect:
        """Add someone by address to the public discussion, as copying them in by mail does."""
        task = visible_task(session, person, number)
        require_team(person, "add participants")
        address = form_address(data)
        if is_ours(address.email, state.settings):
            raise BadRequest("that is one of qmail's own addresses")
        now = datetime.now(UTC)
        branch = main_branch(session, task.id)
        add_copied(session, branch, person.person, [address], state.settings, now)
        session.commit()
        return see_task(number, "#participants")

    @post("/participants/remove", sync_to_thread=True)
    def remove_participant(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        number: FromPath[int],
        data: Form,
    ) -> Redirect:
        """Take someone out of the public discussion: they are told nothing more of it (and
        a client no longer sees the task)."""
        task = visible_task(session, person, number)
        require_team(person, "remove participants")
        person_id = form_id(data, "person_id")
        branch = main_branch(session, task.id)
        member = session.get(models.BranchMember, (branch.id, person_id))
        removed = session.get(models.Person, person_id) if member else None
        if member is None or removed is None:
            raise NotFound("no such participant")
        assert branch.id is not None and removed.id is not None
        remove_member(session, branch.id, removed.id)
        now = datetime.now(UTC)
        record_event(
            session, task, "participant_removed", person.person, now, branch.id, removed.email
        )
        session.commit()
        return see_task(number, "#participants")

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
