"""Companies as a reader may see them: the list, and one company's page.

A company's people, tasks and figures count only through branches the reader may see
(``access.branch_visible``), as the address book does: a client sees the colleagues they
share a branch with, their own tasks, and never a hidden branch or who is only in one.  A
client may look at their own company only (``may_see``); for anyone else's the pages
answer 404, as for a company that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import distinct, exists, func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import Reader, branch_visible
from qmail.companies import Company, at_company, companies_of, company_key, company_of
from qmail.people import Team
from qmail.queries.filters import status_is, taking_part
from qmail.queries.paging import count_upto

PEOPLE_SHOWN = 200
TASKS_SHOWN = 20
TEAM_SHOWN = 5


@dataclass(frozen=True)
class Member:
    """Someone at the company, as the reader meets them: visible tasks, last message."""

    email: str
    name: str
    tasks: int
    last_seen: datetime


@dataclass(frozen=True)
class Talker:
    """A team member and how many messages they wrote where the company takes part."""

    email: str
    name: str
    messages: int


@dataclass(frozen=True)
class CompanyPage:
    company: Company
    people: list[Member]
    people_total: int
    last_contact: datetime | None
    open_tasks: list[models.Task]
    open_total: tuple[int, bool]
    closed_tasks: list[models.Task]
    closed_total: tuple[int, bool]
    talkers: list[Talker]


@dataclass(frozen=True)
class Listed:
    """A line of the companies list."""

    company: Company
    people: int


def may_see(session: Session, person: Reader, company: Company) -> bool:
    """The team sees every company; anyone else only the company of their own address."""
    if person.is_team:
        return True
    own = company_of(session, person.email)
    return own is not None and own.key == company.key


def company_list(session: Session, person: Reader) -> list[Listed]:
    """The companies of the people in branches ``person`` may see, by name; a client's
    list holds their own company only."""
    member, branch = aliased(models.BranchMember), aliased(models.Branch)
    # each person checked along their own memberships, stopping at the first visible one
    seen = exists(
        select(col(member.branch_id))
        .join(branch, col(branch.id) == member.branch_id)
        .where(col(member.person_id) == models.Person.id, branch_visible(person, branch))
    )
    statement = (
        select(col(models.Person.domain), func.count(col(models.Person.id)))
        .where(seen, col(models.Person.domain).is_not(None))
        .group_by(col(models.Person.domain))
    )
    if not person.is_team:
        statement = statement.where(at_company(person.email.rpartition("@")[2]))
    counts: dict[str, int] = {}
    for domain, people in session.exec(statement).all():
        key = company_key(domain or "")
        if key is not None:
            counts[key] = counts.get(key, 0) + people
    companies = companies_of(session, counts)
    merged: dict[str, Listed] = {}
    for key, people in counts.items():
        company = companies[key]
        before = merged.get(company.key)
        merged[company.key] = Listed(company, people + (before.people if before else 0))
    listed = [found for found in merged.values() if may_see(session, person, found.company)]
    return sorted(listed, key=lambda found: (found.company.name.lower(), found.company.key))


def company_page(session: Session, person: Reader, team: Team, company: Company) -> CompanyPage:
    """What ``person`` may see of ``company`` (call ``may_see`` first)."""
    people = _members(session, person, company)
    tasks = select(models.Task).where(taking_part(at_company(company.key), person))
    listed = {
        status: (
            list(
                session.exec(
                    tasks.where(status_is(status, listed=True))
                    .order_by(col(models.Task.updated_at).desc(), col(models.Task.id).desc())
                    .limit(TASKS_SHOWN)
                ).all()
            ),
            count_upto(session, tasks.where(status_is(status, listed=True))),
        )
        for status in ("open", "closed")
    }
    return CompanyPage(
        company=company,
        people=people[:PEOPLE_SHOWN],
        people_total=len(people),
        last_contact=max((found.last_seen for found in people), default=None),
        open_tasks=listed["open"][0],
        open_total=listed["open"][1],
        closed_tasks=listed["closed"][0],
        closed_total=listed["closed"][1],
        talkers=_talkers(session, person, team, company),
    )


def _members(session: Session, person: Reader, company: Company) -> list[Member]:
    """The company's people in branches ``person`` may see, the latest seen first."""
    member, branch = aliased(models.BranchMember), aliased(models.Branch)
    last = (
        select(func.max(col(models.Message.sent_at)))
        .where(models.Message.branch_id == branch.id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(  # type: ignore[call-overload]
            col(models.Person.email),
            col(models.Person.name),
            func.count(distinct(col(branch.task_id))),
            func.max(last),
        )
        .join(member, col(member.person_id) == models.Person.id)
        .join(branch, col(branch.id) == member.branch_id)
        .where(at_company(company.key), branch_visible(person, branch), last.is_not(None))
        .group_by(col(models.Person.email), col(models.Person.name))
    ).all()
    found = sorted((Member(*row) for row in rows), key=lambda one: one.email)
    return sorted(found, key=lambda one: one.last_seen, reverse=True)


def _talkers(session: Session, person: Reader, team: Team, company: Company) -> list[Talker]:
    """The team members who wrote most in the branches ``person`` may see that someone
    at the company is a member of."""
    author, branch = aliased(models.Person), aliased(models.Branch)
    member, someone = aliased(models.BranchMember), aliased(models.Person)
    theirs = (
        select(col(member.branch_id))
        .join(someone, col(someone.id) == member.person_id)
        .where(at_company(company.key, someone))
    )
    written: Any = func.count(col(models.Message.id))
    # from the company's few branches to their messages (``+ 0``: not from the authors')
    rows = session.execute(
        select(col(author.email), col(author.name), written)  # type: ignore[call-overload]
        .select_from(branch)
        .join(models.Message, col(models.Message.branch_id) == branch.id)
        .join(author, col(author.id) == col(models.Message.author_id) + 0)
        .where(team.condition(author), branch_visible(person, branch), col(branch.id).in_(theirs))
        .group_by(col(author.email), col(author.name))
        .order_by(written.desc(), col(author.email))
        .limit(TEAM_SHOWN)
    ).all()
    return [Talker(*row) for row in rows]
