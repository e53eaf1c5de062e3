"""The inbox page, ``/``, its saved views (``/views``), and the search page, ``/search``.

An edge only: the tasks come from ``queries.tasks.search_tasks``, the same permission-checked
query as ``GET /api/tasks``, so the page can never show more than the API would; the
filters are ``queries.filters.Filters`` (plain GET parameters, so a view is a link), each
row's sender, snippet and unread mark come from ``queries.inbox``, the views and their
capped counts from ``queries.views``.  Both pages show a page of rows and a link to the
next one (a cursor).  A visitor who is not signed in is sent to ``/login`` by the app's
error handler.  Saving and deleting a view are forms with Litestar's CSRF token.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template
from sqlmodel import Session

from qmail.access import Reader
from qmail.core.glance import time_ago
from qmail.queries.filters import Filters
from qmail.queries.inbox import inbox_rows
from qmail.queries.paging import offset_cursor, read_offset_cursor
from qmail.queries.search import search_page
from qmail.queries.tasks import search_tasks
from qmail.queries.views import delete_view, save_view, team_members, views_of
from qmail.web.forms import Form, form_value

INBOX_SIZE = 50


class InboxPage(Controller):
    @get("/", sync_to_thread=True)
    def inbox(
        self,
        request: Request[Any, Any, Any],
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        state: State,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Template:
        """The signed-in person's tasks, filtered as the query string says, newest first
        (best match first with ``q``)."""
        filters = Filters.read(request.query_params, person)
        # the tag apart: search_tasks then reads the tag's tasks in order (tasktag's index)
        where = replace(filters, tag="").conditions(person)
        found = search_tasks(
            session, person, filters.tag or None, None, filters.q, INBOX_SIZE, cursor=cursor,
            where=where, count_limit=0,
        )  # fmt: skip
        views, count = views_of(session, person, filters)
        context = {
            "person": person,
            "filters": filters,
            "rows": inbox_rows(session, person, found.items),
            "views": views,
            "count": count,
            "found": found,
            "team": team_members(session, state.team) if person.is_team else [],
            "next_cursor": found.next_cursor,
            "first_page": cursor is None,
            "ago": partial(time_ago, now=datetime.now(UTC)),
        }
        return Template("inbox.html", context=context)

    @post("/views", sync_to_thread=True)
    def save(
        self, session: NamedDependency[Session], person: NamedDependency[Reader], data: Form
    ) -> Redirect:
        """Save the filters of the form under its ``name``; back to that view."""
        fields = {name: form_value(data, name) for name in data if name != "_csrf_token"}
        filters = Filters.read(fields, person)
        save_view(session, person, form_value(data, "name"), filters)
        session.commit()
        return Redirect(filters.link(), status_code=303)

    @post("/views/{view_id:int}/delete", sync_to_thread=True)
    def delete(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        view_id: FromPath[int],
    ) -> Redirect:
        """Delete one of the reader's saved views."""
        delete_view(session, person, view_id)
        session.commit()
        return Redirect("/", status_code=303)

    @get("/search", sync_to_thread=True)
    def search(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        q: Annotated[str, QueryParameter(max_length=200)] = "",
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Template | Redirect:
        """The tasks whose title or messages (those the reader may see) hold the words."""
        if not q.strip():
            return Redirect("/", status_code=303)
        offset = read_offset_cursor(cursor) if cursor is not None else 0
        results = search_page(session, person, q, offset)
        following = None if results.next_offset is None else offset_cursor(results.next_offset)
        context = {"person": person, "q": q, "results": results, "next_cursor": following}
        return Template("search.html", context=context)
