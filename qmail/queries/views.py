"""Inbox views: the common ones built in, a person's own saved ones, and their counts.

A view is a name for a set of filters (``queries.filters.Filters``); a saved view is
stored as the filters' normalised query string, read back through ``Filters.read`` so a
stored view can never ask for more than a typed URL could.  Each view shows how many
open tasks it holds (or, when it names a status, tasks of that status), counted no
further than ``COUNT_CAP``: a view of a million tasks costs what one of a thousand does.
Views with words to search for show no count (that would run the search for each).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

from sqlalchemy import func
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import AnyReader, Reader, task_visible
from qmail.db import Prepared
from qmail.errors import BadRequest, NotFound
from qmail.people import Team
from qmail.queries.filters import MINE, UNASSIGNED, Filters, status_is

COUNT_CAP = 1000
MAX_SAVED = 20
MAX_NAME = 60
MAX_TEAM_SHOWN = 100
TEAM_VIEWS = (
    ("Mine", Filters(assignee=MINE, status="open")),
    ("Unassigned", Filters(assignee=UNASSIGNED, status="open")),
    ("Open", Filters(status="open")),
    ("All", Filters()),
)
CLIENT_VIEWS = (("Open", Filters(status="open")), ("All", Filters()))


@dataclass(frozen=True)
class View:
    name: str
    filters: Filters
    count: str | None  # "12", "1,000+"; None when not counted
    current: bool
    saved_id: int | None = None  # a person's own view, which they may delete


def count_open(session: Session, person: Reader, filters: Filters) -> str | None:
    """How many tasks of ``filters`` are open (or of its status), as shown: "1,000+"."""
    if filters.q:
        return None
    ((found,),) = _count(person.is_team, filters).read(session, {"reader_id": person.id})
    return f"{found:,}" if found <= COUNT_CAP else f"{COUNT_CAP:,}+"


@functools.lru_cache(maxsize=256)
def _count(is_team: bool, filters: Filters) -> Prepared:
    """The count of ``count_open`` for every reader of a kind (``:reader_id``): built and
    compiled once for each view, not on every page."""
    reader = AnyReader(is_team)
    # counted from the list of tasks when there is one (the reader's, a tag's, a company's)
    listed = not is_team or bool(filters.tag or filters.participant or filters.company)
    status = status_is(filters.status or "open", listed)
    conditions = replace(filters, status="").conditions(reader)
    statement = select(col(models.Task.id)).where(task_visible(reader), *conditions, status)
    bounded = statement.limit(COUNT_CAP + 1).subquery()
    return Prepared(select(func.count()).select_from(bounded))


def views_of(session: Session, person: Reader, current: Filters) -> tuple[list[View], str | None]:
    """The built-in views for the reader's role, then their saved ones, each counted; and
    the count of ``current``.  Views that count the same tasks ("All" and "Open") are
    counted once."""
    chosen: list[tuple[str, Filters, int | None]] = [
        (name, filters, None) for name, filters in _built_in(person)
    ]
    for view in saved_views(session, person):
        chosen.append((view.name, Filters.read(dict(parse_qsl(view.query)), person), view.id))
    counts: dict[Filters, str | None] = {}

    def counted(filters: Filters) -> str | None:
        same = replace(filters, status=filters.status or "open")
        if same not in counts:
            counts[same] = count_open(session, person, filters)
        return counts[same]

    views = [
        View(name, filters, counted(filters), filters == current, saved_id)
        for name, filters, saved_id in chosen
    ]
    return views, counted(current)


def _built_in(person: Reader) -> tuple[tuple[str, Filters], ...]:
    return TEAM_VIEWS if person.is_team else CLIENT_VIEWS


def saved_views(session: Session, person: Reader) -> list[models.SavedView]:
    statement = select(models.SavedView).where(models.SavedView.person_id == person.id)
    return list(session.exec(statement.order_by(col(models.SavedView.name))).all())


def save_view(session: Session, person: Reader, name: str, filters: Filters) -> None:
    """Save ``filters`` as ``name`` (replacing a view of that name); not committed."""
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME:
        raise BadRequest(f"a view's name has 1 to {MAX_NAME} characters")
    if not filters.items():
        raise BadRequest("choose a filter to save")
    views = {view.name: view for view in saved_views(session, person)}
    if name not in views and len(views) >= MAX_SAVED:
        raise BadRequest(f"at most {MAX_SAVED} saved views; delete one first")
    view = views.get(name) or models.SavedView(person_id=person.id or 0, name=name, query="")
    view.query = filters.query().lstrip("?")
    session.add(view)


def delete_view(session: Session, person: Reader, view_id: int) -> None:
    """Delete one of ``person``'s own views; another's answers 404, as a missing one."""
    view = session.get(models.SavedView, view_id)
    if view is None or view.person_id != person.id:
        raise NotFound(f"no view {view_id}")
    session.delete(view)


def team_members(session: Session, team: Team) -> list[models.Person]:
    """Who a task may be assigned to (the team), for the assignee filter."""
    statement = select(models.Person).where(team.condition()).order_by(col(models.Person.email))
    return list(session.exec(statement.limit(MAX_TEAM_SHOWN)).all())
