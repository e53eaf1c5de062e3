"""The commands a team member's mail (or a page, or the API) carries out on a task:
``#tag``, ``#untag``, ``#close``, ``#reopen``, ``#assign`` (and ``unassign``, from the
web and the API), each one an event on the task."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from qmail import models
from qmail.config import Settings
from qmail.core.mail import Address, Command
from qmail.people import Team, get_person, on_team
from qmail.threads.tasks import add_member, main_branch, record_event, tag_task, untag_task


def apply_commands(
    session: Session,
    task: models.Task,
    author: models.Person,
    commands: tuple[Command, ...],
    settings: Settings,
    now: datetime,
) -> None:
    """Carry out a team member's command lines, each one an event on the task."""
    assert task.id is not None
    for command in commands:
        if command.name == "tag":
            tag_task(session, task.id, (command.argument,))
        elif command.name == "untag":
            untag_task(session, task.id, command.argument)
        elif command.name in ("close", "reopen"):
            task.status = "closed" if command.name == "close" else "open"
        elif command.name == "unassign":
            task.assignee_id = None
        elif command.name == "assign" and not _assign(
            session, task, command.argument, settings, now
        ):
            record_event(session, task, "assign_refused", author, now, detail=command.argument)
            continue
        record_event(session, task, command.name, author, now, detail=command.argument)


def _assign(
    session: Session, task: models.Task, email: str, settings: Settings, now: datetime
) -> bool:
    """Assign ``task`` to a team member (who then takes part); others cannot be assignees.

    An address qmail has not met yet is created only when the configuration puts it on
    the team: a command naming a stranger creates nobody.
    """
    if not on_team(session, Team.of(settings), email):
        return False
    person = get_person(session, Address(email), now)
    task.assignee_id = person.id
    branch = main_branch(session, task.id)
    assert branch.id is not None and person.id is not None
    add_member(session, branch.id, person.id, now)
    return True
