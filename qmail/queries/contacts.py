"""The address book: the people someone has discussed something with, derived by a query.

Nothing is stored: a contact is a fact about branches, so it can never disagree with them.
Q is a contact of P when both are members of a branch that P may see
(``access.branch_visible``) and at least one message was written in it.  A hidden
branch therefore adds contacts only among its members, and a client only ever meets the
people of the branches they take part in.  For each contact: the number of tasks with such
a shared branch, and the first and last message in those branches (the interaction).

One query however large the book: a self-join of ``BranchMember`` grouped by the other
person, on SQLite and PostgreSQL alike.  Never loop over contacts with a query each.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import and_, distinct, exists, func, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import Reader, branch_visible, task_visible
from qmail.core.companies import company_for
from qmail.db import like_pattern


class Contact(msgspec.Struct, frozen=True):
    """Someone in a person's address book, as that person has met them: the one shape for
    the pages and ``GET /api/contacts`` (msgspec, so the OpenAPI schema describes it)."""

    email: str
    name: str
    company: str | None
    tasks_in_common: int
    first_seen: datetime
    last_seen: datetime


def address_book(session: Session, person: Reader, q: str | None = None) -> list[Contact]:
    """``person``'s contacts, most recently seen first, then by address.

    ``q`` keeps the contacts whose address or name contains it (any case).
    """
    statement = _book_statement(person)
    if q:
        pattern = like_pattern(q.strip())
        statement = statement.where(
            or_(
                col(models.Person.email).ilike(pattern, escape="\\"),
                col(models.Person.name).ilike(pattern, escape="\\"),
            )
        )
    return [_contact(*row) for row in session.exec(statement)]


def contact(session: Session, person: Reader, email: str) -> Contact | None:
    """``email`` as a contact of ``person``, or ``None`` when they have never talked."""
    statement = _book_statement(person).where(models.Person.email == email.strip().lower())
    row = session.exec(statement).first()
    return None if row is None else _contact(*row)


def _book_statement(person: Reader) -> Any:
    """SELECT email, name, tasks, first, last of everyone sharing a discussed branch."""
    mine, theirs = aliased(models.BranchMember), aliased(models.BranchMember)
    last_seen = func.max(col(models.Message.sent_at))
    return (
        select(  # type: ignore[call-overload]  # sqlmodel types select() up to 4 columns
            col(models.Person.email),
            col(models.Person.name),
            func.count(distinct(col(models.Branch.task_id))),
            func.min(col(models.Message.sent_at)),
            last_seen,
        )
        .select_from(mine)
        .join(models.Branch, col(models.Branch.id) == mine.branch_id)
        .join(
            theirs,
            and_(col(theirs.branch_id) == mine.branch_id, col(theirs.person_id) != mine.person_id),
        )
        .join(models.Person, col(models.Person.id) == theirs.person_id)
        # A shared branch without a message is no discussion: the inner join drops it.
        .join(models.Message, col(models.Message.branch_id) == mine.branch_id)
        .where(mine.person_id == person.id, branch_visible(person))
        .group_by(col(models.Person.id), col(models.Person.email), col(models.Person.name))
        .order_by(last_seen.desc(), col(models.Person.email))
    )


def _contact(
    email: str, name: str, tasks: int, first_seen: datetime, last_seen: datetime
) -> Contact:
    return Contact(email, name, company_for(email), tasks, first_seen, last_seen)


NO_COMPANY = "No company"


def by_company(contacts: list[Contact]) -> list[tuple[str, list[Contact]]]:
    """Contacts grouped by company, companies in alphabetical order, "No company" last."""
    groups: dict[str | None, list[Contact]] = {}
    for found in contacts:
        groups.setdefault(found.company, []).append(found)
    named = sorted((company, people) for company, people in groups.items() if company)
    rest = [(NO_COMPANY, groups[None])] if None in groups else []
    return [(str(company), people) for company, people in named] + rest


def shared_tasks(session: Session, person: Reader, email: str) -> list[models.Task]:
    """The tasks where ``person`` and ``email`` talked in a branch ``person`` may see."""
    mine, theirs = aliased(models.BranchMember), aliased(models.BranchMember)
    other = aliased(models.Person)
    talked = exists(select(models.Message.id).where(models.Message.branch_id == models.Branch.id))
    statement = (
        select(models.Task)
        .join(models.Branch, col(models.Branch.task_id) == models.Task.id)
        .join(mine, col(mine.branch_id) == models.Branch.id)
        .join(theirs, col(theirs.branch_id) == models.Branch.id)
        .join(other, col(other.id) == theirs.person_id)
        .where(mine.person_id == person.id, other.email == email, talked)
        .where(branch_visible(person), task_visible(person))
        .distinct()
        .order_by(col(models.Task.updated_at).desc(), col(models.Task.id).desc())
    )
    return list(session.exec(statement).all())
