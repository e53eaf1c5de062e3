"""The pages around tasks: ``/activity``, ``/contacts``, ``/contacts/{email}``, ``/outbox``.

``/activity`` takes the filters of ``queries.activity_filters`` and links to the same view
as an Atom feed (``web/activity_feed.py``) when the reader has a feed link.

An edge only.  Who may see what is decided in the queries, by ``qmail.access``:
events on a branch the reader may not see are never loaded, so a hidden branch cannot
leak through the activity stream or a task's history.  The address book comes from
``qmail.queries.contacts``.  Nothing here writes.  The task page itself is ``task_page.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template
from sqlmodel import Session

from qmail.access import Reader
from qmail.auth.feeds import feed_token, feed_url
from qmail.errors import Forbidden, NotFound
from qmail.queries.activity_filters import KINDS, TEAM_KINDS, ActivityFilters
from qmail.queries.contacts import address_book, by_company, contact, shared_tasks
from qmail.queries.events import activity
from qmail.queries.outbox import outbox_lines


class ReaderPages(Controller):
    @get("/activity", sync_to_thread=True)
    def activity_page(
        self,
        request: Request[Any, Any, Any],
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        state: State,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Template | Redirect:
        """What happened lately on the tasks and branches the reader may see, filtered as
        the query string says (``queries.activity_filters``), newest first.

        The filter form sends its empty fields too: such a query is sent on to the same
        view's own link (``?kind=messages``, not ``?kind=messages&task=&person=``), the one
        to bookmark."""
        filters = ActivityFilters.read(request.query_params, person)
        if cursor is None and request.url.query and f"?{request.url.query}" != filters.query():
            return Redirect(filters.link(), status_code=303)
        lines, following = activity(session, person, cursor, filters)
        token = feed_token(state.links, person.person)
        base_url = state.settings.web.base_url
        context = {
            "person": person,
            "events": lines,
            "filters": filters,
            "kinds": [kind for kind in KINDS if person.is_team or kind not in TEAM_KINDS],
            "feed": feed_url(base_url, token, filters.query()) if token else None,
            "next_cursor": following,
            "first_page": cursor is None,
        }
        return Template("activity.html", context=context)

    @get("/contacts", sync_to_thread=True)
    def contacts_page(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        cursor: Annotated[str | None, QueryParameter(max_length=1000)] = None,
    ) -> Template:
        """The reader's address book, a page at a time, grouped by company."""
        contacts, following = address_book(session, person, cursor=cursor)
        context = {
            "person": person,
            "groups": by_company(contacts),
            "next_cursor": following,
            "first_page": cursor is None,
        }
        return Template("contacts.html", context=context)

    @get("/contacts/{email:str}", sync_to_thread=True)
    def contact_page(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        email: FromPath[str],
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Template:
        """One contact and the tasks shared with them, a page at a time; 404 for anyone
        not in the book."""
        found = contact(session, person, email) if len(email) <= 320 else None
        if found is None:
            raise NotFound(f"{email} is not one of your contacts")
        tasks, following = shared_tasks(session, person, found, cursor)
        context = {
            "person": person,
            "contact": found,
            "tasks": tasks,
            "next_cursor": following,
            "first_page": cursor is None,
        }
        return Template("contact.html", context=context)

    @get("/outbox", sync_to_thread=True)
    def outbox_page(
        self, session: NamedDependency[Session], person: NamedDependency[Reader]
    ) -> Template:
        """Outbound mail and its delivery state, for the team (it names every recipient)."""
        if not person.is_team:
            raise Forbidden("the outbox is for the team")
        rows = outbox_lines(session, person)
        return Template("outbox.html", context={"person": person, "rows": rows})
