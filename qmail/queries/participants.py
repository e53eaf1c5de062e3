"""Who takes part in a task's public discussion, who could be its assignee, and whose
turn it is: what the task page shows beside the thread.

The caller has checked that the reader may see the task (``read_task``): the public
discussion is seen by every reader of the task, so these queries need no further filter.
Whether someone unsubscribed (``Mute``) is the team's business: the page shows it to them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from qmail import models
from qmail.people import Team
from qmail.threads.tasks import main_branch


@dataclass(frozen=True)
class Participant:
    """A member of the public discussion, as the task page lists them."""

    id: int
    email: str
    name: str
    on_team: bool
    muted: bool


def participants(session: Session, task_id: int, team: Team) -> list[Participant]:
    """The members of the task's public discussion, in the order they joined."""
    branch = main_branch(session, task_id)
    muted = set(session.exec(select(models.Mute.person_id).where(models.Mute.task_id == task_id)))
    people = session.exec(
        select(models.Person)
        .join(models.BranchMember, col(models.BranchMember.person_id) == models.Person.id)
        .where(models.BranchMember.branch_id == branch.id)
        .order_by(col(models.BranchMember.added_at), col(models.Person.email))
    ).all()
    return [
        Participant(p.id or 0, p.email, p.name, team.includes(p), p.id in muted) for p in people
    ]


def team_members(session: Session, team: Team) -> list[models.Person]:
    """Everyone who may be assigned a task: the team, by name then address."""
    statement = select(models.Person).where(team.condition())
    return list(session.exec(statement.order_by(col(models.Person.name), col(models.Person.email))))


def waiting_on(session: Session, task_id: int, team: Team) -> str | None:
    """Whose turn it is in the public discussion: ``"us"`` when a client wrote last,
    ``"client"`` when the team did, ``None`` before anyone wrote.

    Hidden branches do not count: the client cannot see them, so they answer nothing.
    """
    author = session.exec(
        select(models.Person)
        .join(models.Message, col(models.Message.author_id) == models.Person.id)
        .join(models.Branch, col(models.Branch.id) == models.Message.branch_id)
        .where(models.Message.task_id == task_id, col(models.Branch.hidden).is_(False))
        .order_by(col(models.Message.id).desc())  # as filed: a mail's Date is its sender's
    ).first()
    if author is None:
        return None
    return "client" if team.includes(author) else "us"
