"""The address book over JSON: ``GET /api/contacts`` (CONTRACT.md, "Web and JSON API").

An edge only: ``qmail.queries.contacts`` decides who is a contact (through ``qmail.access``);
this module turns the caller's book into JSON, a page at a time.  Sync handlers in worker
threads: the database work is blocking.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from sqlmodel import Session

from qmail.access import Reader
from qmail.queries.contacts import BOOK_PAGE, Contact, address_book


class ContactApi(Controller):
    path = "/contacts"

    @get("/", sync_to_thread=True)
    def list_contacts(
        self,
        request: Request,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = BOOK_PAGE,
        cursor: Annotated[str | None, QueryParameter(max_length=1000)] = None,
    ) -> Response[list[Contact]]:
        """The caller's address book, the people they have discussed a task with, by
        company domain and address, a page at a time: the next page is named by the
        ``Link: <...>; rel="next"`` header (RFC 8288), absent on the last page."""
        contacts, following = address_book(session, person, q, cursor, limit)
        headers = {}
        if following is not None:
            query = {"limit": str(limit), "cursor": following, **({"q": q} if q else {})}
            headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
        return Response(contacts, headers=headers)
