"""The address book over JSON: ``GET /api/contacts`` (CONTRACT.md, "Web and JSON API").

An edge only: ``qmail.queries.contacts`` decides who is a contact (through ``qmail.access``);
this module turns the caller's book into JSON.  Sync handlers in worker threads: the
database work is blocking.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from sqlmodel import Session

from qmail.access import Reader
from qmail.queries.contacts import Contact, address_book


class ContactApi(Controller):
    path = "/contacts"

    @get("/", sync_to_thread=True)
    def list_contacts(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> list[Contact]:
        """The caller's address book: the people they have discussed a task with."""
        return address_book(session, person, q)
