"""The address book: the people someone has discussed something with, derived by a query.

Nothing is stored: a contact is a fact about branches, so it can never disagree with them.
Q is a contact of P when both are members of a branch that P may see
(``access.branch_visible``) and at least one message was written in it.  A hidden
branch therefore adds contacts only among its members, and a client only ever meets the
people of the branches they take part in.  For each contact: the number of tasks with such
a shared branch, and the first and last message in those branches (the interaction).

The book is read a page at a time, in the order of ``(Person.domain, Person.email)`` (an
index), so a company's people come together and the next page starts after the last
address shown.  A page costs two queries, whatever the size of the book: who is on it,
then what they share with the reader.  Who is on it starts from the smaller side: a team
member (in nearly every branch) has the people checked one by one along the index, an
outsider has their own few branches read.  The figures of each contact come from the
branches the two share; for two team members that is nearly every task, the one case
whose cost grows with the database.  Never loop over contacts with a query each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import and_, distinct, exists, func, or_, tuple_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import Reader, branch_visible, task_visible
from qmail.companies import Company, companies_of, company_key
from qmail.db import like_pattern
from qmail.queries.paging import (
    before,
    count_upto,
    key_cursor,
    key_text_cursor,
    read_key_cursor,
    read_key_text_cursor,
)


class Contact(msgspec.Struct, frozen=True):
    """Someone in a person's address book, as that person has met them: the one shape for
    the pages and ``GET /api/contacts`` (msgspec, so the OpenAPI schema describes it).

    ``company`` is the company's name (its domain until the team renames it) and
    ``company_domain`` its key, the domain of its page (``qmail.companies``): both follow
    the team's merges.  ``None`` for webmail addresses."""

    email: str
    name: str
    company: str | None
    tasks_in_common: int
    first_seen: datetime
    last_seen: datetime
    company_domain: str | None = None


BOOK_PAGE = 100


def address_book(
    session: Session,
    person: Reader,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = BOOK_PAGE,
) -> tuple[list[Contact], str | None]:
    """A page of ``person``'s contacts, by company domain and address, from after
    ``cursor``; and the cursor of the next page (``None`` on the last one).

    ``q`` keeps the contacts whose address or name contains it (any case).
    """
    people = _people_statement(person)
    if q and q.strip():
        pattern = like_pattern(q.strip())
        people = people.where(
            or_(
                col(models.Person.email).ilike(pattern, escape="\\"),
                col(models.Person.name).ilike(pattern, escape="\\"),
            )
        )
    if cursor is not None:
        people = people.where(
            tuple_(col(models.Person.domain), col(models.Person.email))
            > tuple_(*read_key_text_cursor(cursor))
        )
    page = session.exec(people.limit(limit + 1)).all()
    following = None
    if len(page) > limit:
        page = page[:limit]
        following = key_text_cursor(page[-1].domain or "", page[-1].email)
    return _contacts(session, person, list(page)), following


def contact(session: Session, person: Reader, email: str) -> Contact | None:
    """``email`` as a contact of ``person``, or ``None`` when they have never talked."""
    other = session.exec(
        select(models.Person).where(models.Person.email == email.strip().lower())
    ).first()
    if other is None or other.id == person.id:
        return None
    found = _contacts(session, person, [other])
    return found[0] if found else None


def _people_statement(person: Reader) -> Any:
    """SELECT the people sharing a discussed branch with ``person``, in book order."""
    mine, theirs = aliased(models.BranchMember), aliased(models.BranchMember)
    branch = aliased(models.Branch)
    talked = exists(select(models.Message.id).where(models.Message.branch_id == branch.id))
    shares = (
        select(col(theirs.person_id))
        .join(branch, col(branch.id) == theirs.branch_id)
        .join(
            mine,
            and_(col(mine.branch_id) == theirs.branch_id, col(mine.person_id) == person.id),
        )
        .where(branch_visible(person, branch), talked)
    )
    condition: Any
    if person.is_team:
        # along the index of people, each checked from their own branches
        condition = exists(shares.where(col(theirs.person_id) == models.Person.id))
    else:
        # from the reader's own few branches
        condition = col(models.Person.id).in_(shares)
    return (
        select(models.Person)
        .where(condition, models.Person.id != person.id)
        .order_by(col(models.Person.domain), col(models.Person.email))
    )


def _contacts(session: Session, person: Reader, people: list[models.Person]) -> list[Contact]:
    """What ``person`` shares with each of ``people``, in one query: tasks, first, last."""
    if not people:
        return []
    mine, theirs = aliased(models.BranchMember), aliased(models.BranchMember)
    branch = aliased(models.Branch)
    first = (
        select(func.min(col(models.Message.sent_at)))
        .where(models.Message.branch_id == branch.id)
        .scalar_subquery()
    )
    last = (
        select(func.max(col(models.Message.sent_at)))
        .where(models.Message.branch_id == branch.id)
        .scalar_subquery()
    )
    ids = [other.id for other in people]
    # The smaller side drives: a team member's own branches are nearly all of them, so
    # theirs are read and each looked up among the reader's (``+ 0`` keeps the database
    # from starting at the reader's); an outsider's own branches are few.
    me = (mine.person_id + 0) if person.is_team else mine.person_id
    rows = session.execute(
        select(  # type: ignore[call-overload]
            col(theirs.person_id),
            func.count(distinct(col(branch.task_id))),
            func.min(first),
            func.max(last),
        )
        .select_from(theirs)
        .join(mine, col(mine.branch_id) == theirs.branch_id)
        .join(branch, col(branch.id) == theirs.branch_id)
        .where(me == person.id, col(theirs.person_id).in_(ids), branch_visible(person, branch))
        .where(first.is_not(None))
        .group_by(col(theirs.person_id))
    ).all()
    figures = {row[0]: row[1:] for row in rows}
    met = [other for other in people if other.id in figures]
    keys = {other.email: company_key(other.email) for other in met}
    companies = companies_of(session, [key for key in keys.values() if key])
    return [
        _contact(
            other.email, other.name, companies.get(keys[other.email] or ""), *figures[other.id]
        )
        for other in met
    ]


def _contact(
    email: str,
    name: str,
    company: Company | None,
    tasks: int,
    first_seen: datetime,
    last_seen: datetime,
) -> Contact:
    if company is None:
        return Contact(email, name, None, tasks, first_seen, last_seen)
    return Contact(email, name, company.name, tasks, first_seen, last_seen, company.key)


NO_COMPANY = "No company"


@dataclass(frozen=True)
class Group:
    """The contacts of one company on a page of the book (``key`` ``None``: no company)."""

    name: str
    key: str | None
    contacts: list[Contact]


def by_company(contacts: list[Contact]) -> list[Group]:
    """Contacts grouped by company, companies by name (any case), "No company" last."""
    groups: dict[str | None, Group] = {}
    for found in contacts:
        name = found.company or NO_COMPANY
        groups.setdefault(found.company_domain, Group(name, found.company_domain, []))
        groups[found.company_domain].contacts.append(found)
    named = sorted(
        (group for key, group in groups.items() if key), key=lambda g: (g.name.lower(), g.key)
    )
    return named + ([groups[None]] if None in groups else [])


TASKS_PAGE = 50
DENSE = 2_000  # branches: someone in more is in nearly everything (the team, at scale)


def shared_tasks(
    session: Session,
    person: Reader,
    other: Contact,
    cursor: str | None = None,
    limit: int = TASKS_PAGE,
) -> tuple[list[models.Task], str | None]:
    """A page of the tasks where ``person`` and ``other`` talked in a branch ``person`` may
    see, newest activity first, from after ``cursor``; and the next page's cursor.

    The side with fewer branches drives; two people in nearly every branch (two team
    members) are found along the tasks' own order instead, each task checked.
    """
    other_id = session.exec(
        select(models.Person.id).where(models.Person.email == other.email)
    ).one()
    mine, theirs = aliased(models.BranchMember), aliased(models.BranchMember)
    branch = aliased(models.Branch)
    talked = exists(select(models.Message.id).where(models.Message.branch_id == branch.id))
    mine_dense, theirs_dense = (
        _in_many_branches(session, person_id) for person_id in (person.id, other_id)
    )
    # ``+ 0``: the database cannot start from that side, so it starts from the other (or,
    # both in nearly everything, from the task's own branches)
    me = (mine.person_id + 0) if mine_dense else mine.person_id
    them = (theirs.person_id + 0) if theirs_dense else theirs.person_id
    shared = (
        select(col(branch.task_id))
        .select_from(theirs)
        .join(mine, col(mine.branch_id) == theirs.branch_id)
        .join(branch, col(branch.id) == theirs.branch_id)
        .where(me == person.id, them == other_id, branch_visible(person, branch), talked)
    )
    if mine_dense and theirs_dense:
        condition: Any = exists(shared.where(col(branch.task_id) == models.Task.id))
    else:
        condition = col(models.Task.id).in_(shared)
    statement = select(models.Task).where(condition, task_visible(person))
    if cursor is not None:
        after = read_key_cursor(cursor)
        statement = statement.where(before(models.Task.updated_at, models.Task.id, after))
    tasks = list(
        session.exec(
            statement.order_by(
                col(models.Task.updated_at).desc(), col(models.Task.id).desc()
            ).limit(limit + 1)
        ).all()
    )
    if len(tasks) <= limit:
        return tasks, None
    tasks = tasks[:limit]
    return tasks, key_cursor(tasks[-1].updated_at, tasks[-1].id or 0)


def _in_many_branches(session: Session, person_id: int | None) -> bool:
    """Whether the person is a member of more than ``DENSE`` branches (counting no further)."""
    mine = select(col(models.BranchMember.branch_id)).where(
        models.BranchMember.person_id == person_id
    )
    return count_upto(session, mine, DENSE)[0] >= DENSE
