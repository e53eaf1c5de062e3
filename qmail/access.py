"""Who sees what: the one place that decides, for mail, web and API alike.

- A team member sees every task, its main branch, and the hidden branches they belong to.
- An external person sees only the tasks they take part in (a member of a visible branch),
  and only the branches they are a member of.  Hidden branches never take external members.
- Anyone else sees nothing; a task they may not see does not exist for them (404).

The rules are expressed as SQL conditions, so that authorization happens in the query and
a page or an API answer can only ever contain what the reader may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, bindparam, exists, false, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import col

from qmail import models
from qmail.people import Team


@dataclass(frozen=True)
class Reader:
    """A person as the rules see them: who they are, and whether the team counts them in.

    Built once per request (``web/deps.py``) or per use with ``reader_of``, from the
    configuration of the moment, so a role change takes effect at once.
    """

    person: models.Person
    is_team: bool

    @property
    def id(self) -> int | None:
        return self.person.id

    @property
    def email(self) -> str:
        return self.person.email

    @property
    def name(self) -> str:
        return self.person.name


def reader_of(person: models.Person, team: Team) -> Reader:
    return Reader(person, team.includes(person))


class Viewer(Protocol):
    """What the rules ask of a reader: who, and whether on the team."""

    @property
    def id(self) -> Any: ...

    @property
    def is_team(self) -> bool: ...


@dataclass(frozen=True)
class AnyReader:
    """Every reader of a kind (the team, or outsiders), for a statement built once and run
    for each of them: their id is the bound parameter ``:reader_id``."""

    is_team: bool

    @property
    def id(self) -> Any:
        return bindparam("reader_id")


def _member(branch_id: Any, person: Viewer) -> ColumnElement[bool]:
    return exists(
        select(col(models.BranchMember.branch_id)).where(
            col(models.BranchMember.branch_id) == branch_id,
            col(models.BranchMember.person_id) == person.id,
        )
    )


def _branches_of(person: Viewer) -> Any:
    """SELECT the ids of ``person``'s branches (from the index on ``(person_id, branch_id)``)."""
    return select(col(models.BranchMember.branch_id)).where(
        col(models.BranchMember.person_id) == person.id
    )


def branch_visible(person: Viewer | None, branch: Any = models.Branch) -> ColumnElement[bool]:
    """A condition on ``Branch`` (or an alias of it): true for branches ``person`` may read.

    A team member's condition is checked branch by branch (they may read nearly all of
    them); an outsider's starts from their own few branches, so the database can too.
    """
    if person is None:
        return false()
    hidden = col(branch.hidden).is_(True)
    if person.is_team:
        return or_(~hidden, _member(branch.id, person))
    return and_(~hidden, col(branch.id).in_(_branches_of(person)))


def task_visible(person: Viewer | None) -> ColumnElement[bool]:
    """A condition on ``Task``: true for the tasks ``person`` may read.

    An outsider's tasks are those of the branches they may read: a short list, found from
    their memberships, not by looking at every task.
    """
    if person is None:
        return false()
    if person.is_team:
        return col(models.Task.id).is_not(None)
    # An alias, so that a query that also selects from Branch is not correlated with it.
    branch = aliased(models.Branch)
    return col(models.Task.id).in_(
        select(col(branch.task_id)).where(branch_visible(person, branch))
    )


def branch_readers(branch_id: Any, hidden: bool, team: Team) -> ColumnElement[bool]:
    """A condition on ``Person``: the members of branch ``branch_id`` (an id, or a bound
    parameter for one) who may read it; ``hidden``: the branch is hidden.

    These are the people told about its messages by mail.  A hidden branch is read only
    by its team members: should an outsider ever become a member by mistake (or a member
    leave the team), they see nothing and are sent nothing.  The members are looked up by
    the branch, so the query reads them only, not everyone qmail knows.
    """
    member = col(models.Person.id).in_(
        select(col(models.BranchMember.person_id)).where(
            col(models.BranchMember.branch_id) == branch_id
        )
    )
    if hidden:
        return and_(member, team.condition())
    return member
