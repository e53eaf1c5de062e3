"""Branches of a task beyond its main discussion: the hidden team branch that private
replies lead to, and the people a team member copies in.

Functions take the ``Session`` first and never commit; every change is also an ``Event``.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from qmail import models
from qmail.config import Settings
from qmail.core.mail import Address
from qmail.people import Team, get_person, on_team
from qmail.threads.tasks import add_member, main_branch, members, record_event

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
