"""The inbox page, ``/``: the tasks the signed-in person may see, newest activity first.

An edge only: the tasks come from ``queries.tasks.search_tasks``, the same permission-checked
query as ``GET /api/tasks``, so the page can never show more than the API would.  A visitor
who is not signed in is sent to ``/login`` by the app's error handler.
"""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.response import Template
from sqlmodel import Session

from qmail.access import Reader
from qmail.queries.tasks import search_tasks

INBOX_SIZE = 200


class InboxPage(Controller):
    @get("/", sync_to_thread=True)
    def inbox(self, session: NamedDependency[Session], person: NamedDependency[Reader]) -> Template:
        """The signed-in person's tasks: number, title, tags, status, last update."""
        found = search_tasks(session, person, None, None, None, INBOX_SIZE, 0)
        return Template(
            "inbox.html", context={"person": person, "tasks": found.items, "total": found.total}
        )
