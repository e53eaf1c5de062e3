"""The inbox's filters: what a query string asks for, as values, links and SQL conditions.

A filter is plain GET parameters (``tag``, ``status``, ``assignee``, ``participant``,
``company``, ``q``), so any view can be bookmarked, shared and combined; ``Filters``
reads them strictly (a status that is not one is a bad request) and writes them back in
one order, which is also what a saved view stores.

Authorization stays in the query: a participant or a company counts only through a branch
the reader may see (``access.branch_visible``), so a filter can never tell a client who
is in a hidden branch.  A company is the whole company of the domain given, sub-domains
and the domains the team merged into it included (``qmail.companies``).  Tags are the
team's: a client's ``tag`` is refused (400), as the API refuses it, so it can never be
used to probe which of their tasks carry which tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any
from urllib.parse import quote_plus

from sqlalchemy import ColumnElement
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from qmail import models
from qmail.access import Reader, Viewer, branch_visible
from qmail.companies import at_company
from qmail.core.route import normalize_tag
from qmail.errors import BadRequest

MINE, UNASSIGNED = "mine", "unassigned"
STATUSES = ("open", "closed")
MAX_VALUE = 320  # the longest address; no filter value is longer


@dataclass(frozen=True)
class Filters:
    """The filters of one inbox view; an empty field filters nothing."""

    q: str = ""
    tag: str = ""
    status: str = ""
    assignee: str = ""  # MINE, UNASSIGNED or a team member's address
    participant: str = ""  # an address: tasks they take part in (visibly)
    company: str = ""  # a domain: tasks someone at its company takes part in (visibly)

    @classmethod
    def read(cls, params: Mapping[str, str], person: Reader) -> Filters:
        """The filters of a query string (or a form), checked and normalised."""
        values = {}
        for name in NAMES:
            value = " ".join(params.get(name, "").split())
            if len(value) > (200 if name == "q" else MAX_VALUE):
                raise BadRequest(f"{name} is too long")
            values[name] = value
        found = cls(**values)
        if found.status and found.status not in STATUSES:
            raise BadRequest("status must be open or closed")
        if found.tag and not person.is_team:  # as GET /api/tasks?tag= answers a client
            raise BadRequest("tags are the team's own: filter by status or words instead")
        return replace(
            found,
            tag=normalize_tag(found.tag.lstrip("#")),
            assignee=found.assignee.lower(),
            participant=found.participant.lower(),
            company=found.company.lower().lstrip("@"),
        )

    def query(self, **changes: str) -> str:
        """The query string of these filters (with ``changes``), ``?…`` or ``""``.

        Called for each of a page's few hundred links, most of them alike (the same
        status, company or person on many rows): each distinct one is written once per
        page (``_queries``), the filters themselves encoded once (``_encoded``)."""
        key = tuple(changes.items())
        found = self._queries.get(key)
        if found is None:
            found = self._queries[key] = self._query(changes)
        return found

    def _query(self, changes: dict[str, str]) -> str:
        parts = dict(self._encoded)
        for name, value in changes.items():
            if value:
                parts[name] = f"{name}={quote_plus(value)}"
            else:
                parts.pop(name, None)
        ordered = sorted(parts.items(), key=lambda part: _ORDER.get(part[0], len(_ORDER)))
        return "?" + "&".join(part for _, part in ordered) if ordered else ""

    @cached_property
    def _encoded(self) -> dict[str, str]:
        return {name: f"{name}={quote_plus(value)}" for name, value in self.items()}

    @cached_property
    def _queries(self) -> dict[tuple[tuple[str, str], ...], str]:
        return {}

    def link(self, **changes: str) -> str:
        """The inbox showing these filters (with ``changes``)."""
        return "/" + self.query(**changes)

    def active(self) -> list[tuple[str, str, str]]:
        """(name, value, link without it) of each filter in use, for "clear" chips."""
        return [(name, value, self.link(**{name: ""})) for name, value in self.items()]

    def items(self) -> list[tuple[str, str]]:
        return [(name, getattr(self, name)) for name in NAMES if getattr(self, name)]

    def conditions(self, person: Viewer) -> list[ColumnElement[bool]]:
        """Conditions on ``Task`` for every filter but ``q`` (full text is searched apart)."""
        found: list[ColumnElement[bool]] = []
        if self.tag:
            tagged = (
                select(col(models.TaskTag.task_id))
                .join(models.Tag, col(models.Tag.id) == models.TaskTag.tag_id)
                .where(models.Tag.name == self.tag)
            )
            found.append(col(models.Task.id).in_(tagged))
        if self.status:
            found.append(status_is(self.status, listed=not person.is_team))
        if self.assignee:
            found.append(_assigned(self.assignee, person))
        if self.participant:
            found.append(taking_part(col(models.Person.email) == self.participant, person))
        if self.company:
            found.append(taking_part(at_company(self.company), person))
        return found


NAMES = tuple(field.name for field in fields(Filters))  # the order of every query string
_ORDER = {name: index for index, name in enumerate(NAMES)}


def status_is(status: str, listed: bool) -> ColumnElement[bool]:
    """``Task.status == status``; ``listed`` when the tasks come from a short list (a
    client's, or a tag's when counting), which should then be read, not the status index.

    SQLite, without statistics, would rather walk every task of that status along the
    index and check each against the list; ``status || ''`` is an expression no index
    answers, so it does not.  (PostgreSQL plans from its statistics either way.)
    """
    column: Any = col(models.Task.status)
    return (column.concat("") if listed else column) == status


def _assigned(assignee: str, person: Viewer) -> ColumnElement[bool]:
    column = col(models.Task.assignee_id)
    if assignee == MINE:
        return column == person.id
    if assignee == UNASSIGNED:
        return column.is_(None)
    named = select(col(models.Person.id)).where(models.Person.email == assignee)
    return column == named.scalar_subquery()


def taking_part(who: Any, person: Viewer) -> ColumnElement[bool]:
    """Tasks where someone matching ``who`` is a member of a branch ``person`` may see."""
    # aliases, so that branch_visible's own BranchMember subquery is not correlated with them
    branch, member = aliased(models.Branch), aliased(models.BranchMember)
    tasks = (
        select(col(branch.task_id))
        .join(member, col(member.branch_id) == branch.id)
        .join(models.Person, col(models.Person.id) == member.person_id)
        .where(who, branch_visible(person, branch))
    )
    return col(models.Task.id).in_(tasks)
