"""The inbox page, ``/``, and the search page, ``/search``.

An edge only: the tasks come from ``queries.tasks.search_tasks``, the same permission-checked
query as ``GET /api/tasks``, so the page can never show more than the API would; found
tasks and their snippets from ``queries.search``, under the same rules.  Both pages show
a page of rows and a link to the next one (a cursor), never a count of everything.  A
visitor who is not signed in is sent to ``/login`` by the app's error handler.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from sqlmodel import Session

from qmail.access import Reader
from qmail.queries.paging import offset_cursor, read_offset_cursor
from qmail.queries.search import search_page
from qmail.queries.tasks import search_tasks

INBOX_SIZE = 50


class InboxPage(Controller):
    @get("/", sync_to_thread=True)
    def inbox(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Template:
        """The signed-in person's tasks: number, title, tags, status, last update."""
        found = search_tasks(session, person, None, None, None, INBOX_SIZE, cursor=cursor)
        context = {
            "person": person,
            "tasks": found.items,
            "next_cursor": found.next_cursor,
            "first_page": cursor is None,
        }
        return Template("inbox.html", context=context)

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
