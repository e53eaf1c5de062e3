"""The activity stream's filters: task, person, company and kind of event, from a query string.

Plain GET parameters (``task``, ``person``, ``company``, ``kind``), read strictly as the
inbox's ``Filters`` reads its own and written back in one order, so a filtered stream is a
link to bookmark, to share, and to give a feed reader (``/activity.atom`` takes the same).

- ``task=12``: the events of task #12;
- ``person=EMAIL`` and ``company=DOMAIN``: the events of the tasks that person, or someone
  at that company, takes part in, as the inbox's ``participant`` and ``company`` filters
  mean it (through a branch the reader may see: a filter never tells a client who is in
  a hidden branch);
- ``kind``: ``messages``, ``status`` (opened, closed, reopened), ``tags``, ``assignments``,
  or ``hidden`` (everything on the hidden branches the reader is in).

Tags and hidden branches are the team's: a client asking for either is refused (400),
as the inbox refuses a client's ``tag``; the query leaves them out for clients anyway
(``queries.events``).  The company is the address book's (``core.companies.company_for``:
sub-domains count, webmail names no company) as the team arranged it: ``companies.at_company``
follows renames and merged domains, as the inbox's filter does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import quote_plus

from sqlalchemy import ColumnElement
from sqlmodel import col

from qmail import models
from qmail.access import Reader, Viewer
from qmail.companies import at_company
from qmail.core.companies import company_for
from qmail.errors import BadRequest
from qmail.queries.filters import MAX_VALUE, taking_part

# What each kind of event the stream can be narrowed to is made of (``hidden`` is a place,
# not a kind: every event on a hidden branch).
KINDS: dict[str, tuple[str, ...]] = {
    "messages": ("message",),
    "status": ("task_created", "close", "reopen"),
    "tags": ("tag", "untag"),
    "assignments": ("assign", "unassign", "assign_refused"),
    "hidden": (),
}
TEAM_KINDS = ("tags", "hidden")


@dataclass(frozen=True)
class ActivityFilters:
    """The filters of one view of the activity stream; an empty field filters nothing."""

    task: str = ""  # a task number
    person: str = ""  # an address: the tasks they take part in (visibly)
    company: str = ""  # a company (``company_for``): the tasks its people take part in
    kind: str = ""  # one of ``KINDS``

    @classmethod
    def read(cls, params: Mapping[str, str], person: Reader) -> ActivityFilters:
        """The filters of a query string, checked and normalised; 400 for a bad one."""
        values = {}
        for name in NAMES:
            value = " ".join(params.get(name, "").split())
            if len(value) > MAX_VALUE:
                raise BadRequest(f"{name} is too long")
            values[name] = value
        found = cls(**values)
        task = found.task.lstrip("#")
        if task and not (task.isascii() and task.isdigit() and len(task) <= 18):
            raise BadRequest("task must be a task number")
        kind = found.kind.lower()
        if kind and kind not in KINDS:
            raise BadRequest(f"kind must be one of {', '.join(KINDS)}")
        if kind in TEAM_KINDS and not person.is_team:
            raise BadRequest(f"{kind} events are the team's own")
        return replace(
            found,
            task=str(int(task)) if task else "",
            person=found.person.lower(),
            company=company_key(found.company) if found.company else "",
            kind=kind,
        )

    def items(self) -> list[tuple[str, str]]:
        return [(name, getattr(self, name)) for name in NAMES if getattr(self, name)]

    def query(self, **changes: str) -> str:
        """The query string of these filters (with ``changes``), ``?…`` or ``""``."""
        values = {**dict(self.items()), **changes}
        parts = [f"{name}={quote_plus(values[name])}" for name in NAMES if values.get(name)]
        return "?" + "&".join(parts) if parts else ""

    def link(self, **changes: str) -> str:
        """The activity page showing these filters (with ``changes``)."""
        return "/activity" + self.query(**changes)

    def page_link(self, cursor: str) -> str:
        """The activity page of these filters from after ``cursor`` (an opaque, URL-safe
        key: ``queries.paging``)."""
        query = self.query()
        return f"/activity{query}{'&' if query else '?'}cursor={cursor}"

    def active(self) -> list[tuple[str, str, str]]:
        """(name, value, link without it) of each filter in use, for "clear" chips."""
        return [(name, value, self.link(**{name: ""})) for name, value in self.items()]

    def conditions(self, person: Viewer, branch: Any) -> list[ColumnElement[bool]]:
        """Conditions on ``Event``, ``Task`` and ``branch`` (the event's branch, an outer
        join: ``None`` for an event of the whole task)."""
        found: list[ColumnElement[bool]] = []
        if self.task:
            found.append(col(models.Task.number) == int(self.task))
        if self.person:
            found.append(taking_part(col(models.Person.email) == self.person, person))
        if self.company:
            found.append(taking_part(at_company(self.company), person))
        if self.kind == "hidden":
            found.append(col(branch.hidden).is_(True))
        elif self.kind:
            found.append(col(models.Event.kind).in_(KINDS[self.kind]))
        return found


NAMES = tuple(field.name for field in fields(ActivityFilters))


def company_key(value: str) -> str:
    """The company a ``company=`` value names, as the address book writes it; 400 when it
    names none (webmail, a public suffix, not a domain).

    >>> company_key("@Mail.ACME.co.uk"), company_key("xn--mller-kva.de")
    ('acme.co.uk', 'müller.de')
    """
    found = company_for("someone@" + value.strip().lstrip("@"))
    if found is None:
        raise BadRequest(f"{value} names no company (a webmail domain, or not a domain)")
    return found
