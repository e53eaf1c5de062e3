"""The people map: who corresponds with whom, as a graph the reader may see all of.

A person is a node when they are a member of a branch in scope with at least one message;
two people are joined by an edge weighted by the number of tasks they share such a branch
in; a node's size is the number of other people who wrote in their branches ("how many
people write to them").  The scope is the reader's own branches (``mine``), or, for the
team, every branch the reader may see (``team``).  Every branch counted is one
``access.branch_visible`` lets through, so a client's map holds only the people of their
own tasks, and never someone who is only in a hidden branch.

The map covers the ``MAP_TASKS`` tasks of the scope with the newest activity and draws at
most ``MAP_PEOPLE`` people (those most written to, the reader always among them): a
drawing of thousands of circles helps nobody, and the cost stays that of a page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from sqlalchemy import and_, distinct, exists, func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import Reader, branch_visible
from qmail.companies import companies_of, company_key
from qmail.errors import Forbidden

MAP_TASKS = 300
MAP_PEOPLE = 150
SCOPES = ("mine", "team")


@dataclass(frozen=True)
class Node:
    email: str
    name: str
    company: str | None  # the company's name, as the team named it
    company_domain: str | None  # its key, the same for all its people (colours)
    writers: int  # how many other people wrote in their branches
    you: bool


@dataclass(frozen=True)
class Edge:
    source: str  # addresses, the smaller first
    target: str
    tasks: int


@dataclass(frozen=True)
class PeopleMap:
    scope: str
    nodes: list[Node]
    edges: list[Edge]
    tasks: int  # how many tasks were counted
    complete: bool  # False when the scope held more than MAP_TASKS tasks or MAP_PEOPLE people


def people_map(session: Session, person: Reader, scope: str = "mine") -> PeopleMap:
    """The map of ``scope`` as ``person`` may see it; ``team`` is for the team (else 403)."""
    if scope not in SCOPES:
        scope = "mine"
    if scope == "team" and not person.is_team:
        raise Forbidden("the whole team's map is for the team")
    branch = aliased(models.Branch)
    in_scope = _in_scope(person, branch, scope)
    task_ids = list(
        session.exec(
            select(col(models.Task.id))
            .where(col(models.Task.id).in_(select(col(branch.task_id)).where(in_scope)))
            .order_by(col(models.Task.updated_at).desc(), col(models.Task.id).desc())
            .limit(MAP_TASKS + 1)
        ).all()
    )
    complete = len(task_ids) <= MAP_TASKS
    task_ids = task_ids[:MAP_TASKS]
    member = aliased(models.BranchMember)
    counted = and_(in_scope, col(branch.task_id).in_(task_ids))
    memberships = session.execute(
        select(col(branch.task_id), col(member.person_id))  # type: ignore[call-overload]
        .join(member, col(member.branch_id) == branch.id)
        .where(counted)
        .distinct()
    ).all()
    writers = dict(
        session.execute(
            select(  # type: ignore[call-overload]
                col(member.person_id), func.count(distinct(col(models.Message.author_id)))
            )
            .select_from(member)
            .join(branch, col(branch.id) == member.branch_id)
            .join(models.Message, col(models.Message.branch_id) == branch.id)
            .where(counted, col(models.Message.author_id) != member.person_id)
            .group_by(col(member.person_id))
        ).all()
    )
    return _drawn(session, person, scope, memberships, writers, len(task_ids), complete)


def _in_scope(person: Reader, branch: Any, scope: str) -> Any:
    """Branches counted: visible, with a message, and (``mine``) with the reader in them."""
    message = aliased(models.Message)  # not correlated with a Message the query reads
    talked = exists(select(col(message.id)).where(col(message.branch_id) == branch.id))
    condition = and_(branch_visible(person, branch), talked)
    if scope == "mine":
        mine = aliased(models.BranchMember)
        condition = and_(
            condition,
            col(branch.id).in_(select(col(mine.branch_id)).where(mine.person_id == person.id)),
        )
    return condition


def _drawn(
    session: Session,
    person: Reader,
    scope: str,
    memberships: Iterable[Any],
    writers: dict[int, int],
    tasks: int,
    complete: bool,
) -> PeopleMap:
    """Nodes and edges from (task, person) pairs, the most written-to people kept."""
    by_task: dict[int, set[int]] = {}
    for task_id, person_id in memberships:
        by_task.setdefault(task_id, set()).add(person_id)
    everyone = set().union(*by_task.values()) if by_task else set()
    ranked = sorted(everyone, key=lambda one: (one != person.id, -writers.get(one, 0), one))
    kept = set(ranked[:MAP_PEOPLE])
    complete = complete and len(everyone) <= MAP_PEOPLE
    people = {
        found.id: found
        for found in session.exec(
            select(models.Person).where(col(models.Person.id).in_(sorted(kept)))
        ).all()
    }
    shared: Counter[tuple[str, str]] = Counter()
    for members in by_task.values():
        emails = sorted(people[one].email for one in members if one in people)
        shared.update(combinations(emails, 2))
    keys = {found.email: company_key(found.email) for found in people.values()}
    companies = companies_of(session, [key for key in keys.values() if key])
    nodes = []
    for found in sorted(people.values(), key=lambda one: one.email):
        company = companies.get(keys[found.email] or "")
        nodes.append(
            Node(
                email=found.email,
                name=found.name,
                company=company.name if company else None,
                company_domain=company.key if company else None,
                writers=writers.get(found.id or 0, 0),
                you=found.id == person.id,
            )
        )
    edges = [Edge(source, target, count) for (source, target), count in sorted(shared.items())]
    return PeopleMap(scope, nodes, edges, tasks, complete)
