"""Branches of a task beyond its main discussion: the hidden team branch that private
replies lead to, hidden branches opened from the task page, and the people a team member
copies in.

Functions take the ``Session`` first and never commit; every change is also an ``Event``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import Reader, branch_visible
from qmail.config import Settings
from qmail.core.mail import Address
from qmail.db import insert_row
from qmail.errors import BadRequest, NotFound
from qmail.people import Team, get_person, on_team
from qmail.threads.tasks import (
    WRITE_BRANCH,
    add_member,
    branch_values,
    main_branch,
    members,
    record_event,
)

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
        team_ids = [p.id for p in members(session, parent.id) if team.includes(p) and p.id]
        branch = _open_hidden(session, task, parent, author, team_ids, now, detail=TEAM_BRANCH)
    return branch


def _open_hidden(
    session: Session,
    task: models.Task,
    parent: models.Branch,
    opener: models.Person,
    member_ids: list[int],
    now: datetime,
    detail: str = "",
    forked_from: int | None = None,
) -> models.Branch:
    """A new hidden branch under ``parent`` with exactly these members: the one place
    hidden branches are made, for private replies and from the task page alike."""
    assert task.id is not None
    values = branch_values(task.id, True, parent.id, forked_from, now)
    branch: models.Branch = insert_row(session, WRITE_BRANCH, models.Branch, values)
    assert branch.id is not None
    for person_id in member_ids:
        add_member(session, branch.id, person_id, now)
    record_event(session, task, "branch_opened", opener, now, branch.id, detail)
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
        if add_member(session, branch.id, person.id, now):
            record_event(session, task, "participant_added", author, now, branch.id, person.email)
    return tuple(refused)


def team_candidates(
    session: Session, person: Reader, task_id: int, team: Team
) -> list[models.Person]:
    """Who may join a hidden branch ``person`` opens: team members in a branch they see."""
    # An alias, so that branch_visible's own BranchMember subquery is not correlated with it.
    member = aliased(models.BranchMember)
    statement = (
        select(models.Person)
        .join(member, col(member.person_id) == models.Person.id)
        .join(models.Branch, col(models.Branch.id) == member.branch_id)
        .where(models.Branch.task_id == task_id, branch_visible(person))
        .where(team.condition(), models.Person.id != person.id)
        .distinct()
        .order_by(col(models.Person.email))
    )
    return list(session.exec(statement).all())


def fork_points(session: Session, branch_ids: list[int]) -> dict[int, int]:
    """The message each of these branches was opened about, for those opened about one."""
    rows = session.exec(
        select(models.Branch.id, models.Branch.forked_from_id).where(
            col(models.Branch.id).in_(branch_ids), col(models.Branch.forked_from_id).is_not(None)
        )
    )
    return {branch_id: message_id for branch_id, message_id in rows if branch_id and message_id}


def fork_parent(
    session: Session, person: Reader, task: models.Task, message_id: int | None
) -> models.Branch:
    """The branch a new one forks from: that of ``message_id``, or the main branch."""
    if message_id is None:
        return main_branch(session, task.id)
    branch = session.exec(
        select(models.Branch)
        .join(models.Message, col(models.Message.branch_id) == models.Branch.id)
        .where(models.Message.id == message_id, models.Message.task_id == task.id)
        .where(branch_visible(person))
    ).first()
    if branch is None:
        raise NotFound(f"no message {message_id} in task #{task.number}")
    return branch


def open_hidden_branch(
    session: Session,
    task: models.Task,
    opener: Reader,
    chosen: list[int],
    message_id: int | None,
    team: Team,
    now: datetime,
) -> models.Branch:
    """A new hidden branch of the opener and the chosen team members; never anyone else."""
    assert task.id is not None and opener.id is not None
    allowed = {candidate.id for candidate in team_candidates(session, opener, task.id, team)}
    refused = sorted(set(chosen) - allowed - {opener.id})
    if refused:
        raise BadRequest("a hidden branch takes only team members who take part in the task")
    parent = fork_parent(session, opener, task, message_id)
    chosen_ids = [opener.id, *sorted(set(chosen) - {opener.id})]
    return _open_hidden(
        session, task, parent, opener.person, chosen_ids, now, forked_from=message_id
    )
