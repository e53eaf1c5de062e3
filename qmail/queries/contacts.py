"""The address book: the people someone has discussed something with.

A contact is a fact about branches: Q is a contact of P when both are members of a branch
that P may see (``access.branch_visible``) and at least one message was written in it.  A
hidden branch therefore adds contacts only among its members, and a client only ever
meets the people of the branches they take part in.  For each contact: the number of
tasks with such a shared branch, and the first and last message in those branches (the
interaction).  These figures are kept per pair in ``acquaintance``
(``threads.acquaintances`` writes them with every message and member, in the same
transaction), both over all shared branches and over the visible ones; the reader's role
picks which, as ``branch_visible`` would.  Counting them here from the branches cost 0.4 s
at 1 M messages for two team members, who share nearly every task.

The book is read a page at a time, in the order of ``(Person.domain, Person.email)`` (an
index), so a company's people come together and the next page starts after the last
address shown.  A page costs two queries, whatever the size of the book: who is on it,
then what they share with the reader.  Who is on it starts from the smaller side: a team
member (who knows nearly everyone) has the people checked one by one along the index, an
outsider has their own few pairs read.  Never loop over contacts with a query each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import exists, or_, tuple_
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


def _figures(person: Reader) -> tuple[Any, Any, Any]:
    """The columns of ``acquaintance`` that count for ``person``: a team member reads the
    hidden branches they belong to, anyone else only visible ones (``access``)."""
    pair = models.Acquaintance
    if person.is_team:
        return col(pair.tasks), col(pair.first_seen), col(pair.last_seen)
    return col(pair.open_tasks), col(pair.open_first_seen), col(pair.open_last_seen)


def _people_statement(person: Reader) -> Any:
    """SELECT the people sharing a discussed branch with ``person``, in book order."""
    pair = models.Acquaintance
    tasks, _, _ = _figures(person)
    theirs = select(col(pair.other_id)).where(pair.person_id == person.id, tasks > 0)
    condition: Any
    if person.is_team:
        # along the index of people, each looked up among the reader's pairs
        condition = exists(theirs.where(col(pair.other_id) == models.Person.id))
    else:
        # from the reader's own few pairs
        condition = col(models.Person.id).in_(theirs)
    return (
        select(models.Person)
        .where(condition, models.Person.id != person.id)
        .order_by(col(models.Person.domain), col(models.Person.email))
    )


def _contacts(session: Session, person: Reader, people: list[models.Person]) -> list[Contact]:
    """What ``person`` shares with each of ``people`` (tasks, first, last): one query
    reading a row a contact, kept up to date by ``threads.acquaintances``."""
    if not people:
        return []
    pair = models.Acquaintance
    tasks, first, last = _figures(person)
    ids = [other.id for other in people]
    rows = session.execute(
        select(col(pair.other_id), tasks, first, last).where(
            pair.person_id == person.id, col(pair.other_id).in_(ids), tasks > 0
        )
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
