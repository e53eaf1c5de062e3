"""Task threads: tasks, their branches and members, tags, and the commands that change them.

Functions take the ``Session`` first and never commit; every change is also an ``Event``,
so a task's history and a person's activity can be shown.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from qmail import models
from qmail.config import Settings
from qmail.core.mail import Address, Command, NewTask
from qmail.people import Team, get_person, on_team


def record_event(
    session: Session,
    task: models.Task,
    kind: str,
    person: models.Person | None = None,
    now: datetime | None = None,
    branch_id: int | None = None,
    detail: str = "",
) -> None:
    """Note a change on a task, for its history and the activity stream."""
    session.add(
        models.Event(
            task_id=task.id,
            branch_id=branch_id,
            person_id=person.id if person else None,
            kind=kind,
            detail=detail,
            created_at=now or models.utcnow(),
        )
    )


def touch(task: models.Task, branch: models.Branch, now: datetime) -> None:
    """Move the task's ``updated_at`` for activity in ``branch``.

    Activity in a hidden branch leaves it alone: everyone who sees the task sees
    ``updated_at`` (and the inbox order it gives), so moving it would tell a client that
    something happened where they cannot look.
    """
    if not branch.hidden:
        task.updated_at = now


def main_branch(session: Session, task_id: int | None) -> models.Branch:
    branch = session.exec(
        select(models.Branch)
        .where(models.Branch.task_id == task_id, col(models.Branch.hidden).is_(False))
        .order_by(col(models.Branch.id))
    ).first()
    assert branch is not None, f"task {task_id} has no main branch"
    return branch


def next_task_number(session: Session) -> int:
    """The next human task number; the row lock serializes concurrent writers."""
    result = session.execute(
        update(models.Counter)
        .where(col(models.Counter.name) == "task")
        .values(value=models.Counter.value + 1)
        .returning(models.Counter.value)
    )
    return int(result.scalar_one())


def add_member(session: Session, branch_id: int, person_id: int, now: datetime) -> None:
    if session.get(models.BranchMember, (branch_id, person_id)) is None:
        session.add(models.BranchMember(branch_id=branch_id, person_id=person_id, added_at=now))


def tag_task(session: Session, task_id: int | None, names: tuple[str, ...]) -> None:
    for name in names:
        tag = session.exec(select(models.Tag).where(models.Tag.name == name)).first()
        if tag is None:
            tag = models.Tag(name=name)
            session.add(tag)
            session.flush()
        if session.get(models.TaskTag, (task_id, tag.id)) is None:
            session.add(models.TaskTag(task_id=task_id, tag_id=tag.id))


def create_task(
    session: Session, route: NewTask, author: models.Person, settings: Settings, now: datetime
) -> tuple[models.Task, models.Branch]:
    """A new task with its main branch; the author and the triage team take part."""
    task = models.Task(
        number=next_task_number(session),
        title=route.title,
        created_by_id=author.id,
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    session.flush()
    branch = models.Branch(task_id=task.id, hidden=False, created_at=now)
    session.add(branch)
    session.flush()
    tag_task(session, task.id, route.tags)
    add_member(session, branch.id, author.id, now)
    for person in triage_team(session, settings, now):
        add_member(session, branch.id, person.id, now)
    record_event(session, task, "task_created", author, now, branch.id, task.title)
    return task, branch


def triage_team(session: Session, settings: Settings, now: datetime) -> list[models.Person]:
    """``mail.triage``, or when it is empty every team member qmail knows."""
    if settings.mail.triage:
        return [get_person(session, Address(email), now) for email in settings.mail.triage]
    team = Team.of(settings)
    return list(session.exec(select(models.Person).where(team.condition())).all())


TEAM_BRANCH = "team"  # the detail of the branch_opened event of a task's team branch


def team_branch(
    session: Session, task: models.Task, author: models.Person, team: Team, now: datetime
) -> models.Branch:
    """The task's hidden team branch, opened on first use; only team members may.

    This is the branch "reply privately to the team" addresses lead to.  Its members are
    the author and the team members who take part in the main branch, never an external
    person.  Hidden branches opened from the web, with members of their own choosing,
    are not it: a private reply never lands in (and so never joins anyone to) them.
    """
    if not team.includes(author):
        raise PermissionError(f"{author.email} is not a team member")
    branch = find_team_branch(session, task.id)
    if branch is None:
        parent = main_branch(session, task.id)
        branch = models.Branch(task_id=task.id, hidden=True, parent_id=parent.id, created_at=now)
        session.add(branch)
        session.flush()
        assert branch.id is not None
        for person in members(session, parent.id):
            if team.includes(person):
                add_member(session, branch.id, person.id, now)
        record_event(session, task, "branch_opened", author, now, branch.id, TEAM_BRANCH)
    return branch


def find_team_branch(session: Session, task_id: int | None) -> models.Branch | None:
    """The task's hidden team branch, if it has been opened."""
    return session.exec(
        select(models.Branch)
        .join(models.Event, col(models.Event.branch_id) == models.Branch.id)
        .where(
            models.Branch.task_id == task_id,
            col(models.Branch.hidden).is_(True),
            models.Event.kind == "branch_opened",
            models.Event.detail == TEAM_BRANCH,
        )
        .order_by(col(models.Branch.id))
    ).first()


def members(session: Session, branch_id: int | None) -> list[models.Person]:
    return list(
        session.exec(
            select(models.Person)
            .join(models.BranchMember, col(models.BranchMember.person_id) == models.Person.id)
            .where(models.BranchMember.branch_id == branch_id)
            .order_by(col(models.Person.id))
        ).all()
    )


def add_copied(
    session: Session,
    branch: models.Branch,
    author: models.Person,
    addresses: list[Address],
    settings: Settings,
    now: datetime,
) -> tuple[tuple[str, str], ...]:
    """Make the people a team member copied participants of ``branch``.

    The caller has made sure that the author is a team member and that the mail is
    proven to be theirs: this is the only way mail creates people it merely names.
    A hidden branch takes only team members: the others are returned with the reason,
    so the author can be told, and are not created.  Never adds anyone to a hidden branch
    by accident.
    """
    refused: list[tuple[str, str]] = []
    task = session.get(models.Task, branch.task_id)
    assert task is not None and branch.id is not None
    team = Team.of(settings)
    for address in addresses:
        if branch.hidden and not on_team(session, team, address.email):
            refused.append((address.email, "not a team member: hidden discussions are team-only"))
            continue
        person = get_person(session, address, now)
        assert person.id is not None
        if session.get(models.BranchMember, (branch.id, person.id)) is None:
            add_member(session, branch.id, person.id, now)
            record_event(session, task, "participant_added", author, now, branch.id, person.email)
    return tuple(refused)


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


def untag_task(session: Session, task_id: int, name: str) -> None:
    tag = session.exec(select(models.Tag).where(models.Tag.name == name)).first()
    link = session.get(models.TaskTag, (task_id, tag.id)) if tag else None
    if link is not None:
        session.delete(link)
