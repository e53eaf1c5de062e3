"""Who sees what: the one place that decides, for mail, web and API alike.

- A team member sees every task, its main branch, and the hidden branches they belong to.
- An external person sees only the tasks they take part in (a member of a visible branch),
  and only the branches they are a member of.  Hidden branches never take external members.
- Anyone else sees nothing; a task they may not see does not exist for them (404).

The rules are expressed as SQL conditions, so that authorization happens in the query and
a page or an API answer can only ever contain what the reader may see.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlmodel import col

from qmail import models


def _member(branch_id: ColumnElement[int], person: models.Person) -> ColumnElement[bool]:
    return exists(
        select(models.BranchMember.branch_id).where(
            models.BranchMember.branch_id == branch_id,
            models.BranchMember.person_id == person.id,
        )
    )


def branch_visible(person: models.Person | None) -> ColumnElement[bool]:
    """A condition on ``Branch``: true for the branches ``person`` may read."""
    if person is None:
        return false()
    branch_id = col(models.Branch.id)
    if person.is_team:
        return or_(col(models.Branch.hidden).is_(False), _member(branch_id, person))
    return and_(col(models.Branch.hidden).is_(False), _member(branch_id, person))


def task_visible(person: models.Person | None) -> ColumnElement[bool]:
    """A condition on ``Task``: true for the tasks ``person`` may read."""
    if person is None:
        return false()
    if person.is_team:
        return col(models.Task.id).is_not(None)
    return exists(
        select(models.Branch.id).where(
            models.Branch.task_id == models.Task.id, branch_visible(person)
        )
    )
