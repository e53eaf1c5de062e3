"""The pages around tasks: ``/activity``, ``/contacts``, ``/contacts/{email}``, ``/outbox``.

An edge only.  Who may see what is decided in the queries, by ``qmail.access``:
events on a branch the reader may not see are never loaded, so a hidden branch cannot
leak through the activity stream or a task's history.  The address book comes from
``qmail.queries.contacts``.  Nothing here writes.  The task page itself is ``task_page.py``.
"""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template
from sqlmodel import Session

from qmail.access import Reader
from qmail.errors import Forbidden, NotFound
from qmail.queries.contacts import address_book, by_company, contact, shared_tasks
from qmail.queries.events import activity
from qmail.queries.outbox import outbox_lines


class ReaderPages(Controller):
    @get("/activity", sync_to_thread=True)
    def activity_page(
        self, session: NamedDependency[Session], person: NamedDependency[Reader]
    ) -> Template:
        """What happened lately on the tasks and branches the reader may see."""
        lines = activity(session, person)
        return Template("activity.html", context={"person": person, "events": lines})

    @get("/contacts", sync_to_thread=True)
    def contacts_page(
        self, session: NamedDependency[Session], person: NamedDependency[Reader]
    ) -> Template:
        """The reader's address book, grouped by company."""
        groups = by_company(address_book(session, person))
        return Template("contacts.html", context={"person": person, "groups": groups})

    @get("/contacts/{email:str}", sync_to_thread=True)
    def contact_page(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        email: FromPath[str],
    ) -> Template:
        """One contact and the tasks shared with them; 404 for anyone not in the book."""
        found = contact(session, person, email) if len(email) <= 320 else None
        if found is None:
            raise NotFound(f"{email} is not one of your contacts")
        tasks = shared_tasks(session, person, found.email)
        context = {"person": person, "contact": found, "tasks": tasks}
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
