"""Dependencies of the web handlers: a database session and the signed-in person.

Handlers never open sessions or read credentials themselves; they ask for ``session`` and
``person`` by name and get them from here.  Credentials are a bearer token (API clients)
or the session cookie a magic-link sign-in sets (browsers).  Who may see what is decided
afterwards, in the queries, by ``qmail.permissions``.
"""

from __future__ import annotations

from collections.abc import Iterator

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlmodel import Session

from qmail import models
from qmail.apitokens import person_for_api_token
from qmail.errors import QmailError
from qmail.tokens import SessionTokens

SESSION_COOKIE = "qmail_session"


class Unauthenticated(QmailError):
    """No valid credentials came with the request (HTTP 401, ``WWW-Authenticate: Bearer``)."""


def provide_db_session(state: State) -> Iterator[Session]:
    """A session for one request, closed when the request is done.

    Nothing is committed here: cleanup runs on the event loop, where blocking database
    I/O must not happen, so a handler that writes commits inside its own (threaded) body.
    Closing rolls back anything left uncommitted.
    """
    with Session(state.engine, expire_on_commit=False) as session:
        yield session


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750), if any."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def provide_current_user(request: Request, session: NamedDependency[Session]) -> models.Person:
    """The person making the request; anyone else gets 401.

    Runs in a worker thread (``sync_to_thread=True``): it queries the database.
    """
    token = bearer_token(request)
    if token is not None:
        # judged by the token alone: a fallback to the cookie would make a request that
        # skipped the API's CSRF check (api_guards) a cookie-authenticated one
        person = person_for_api_token(session, token)
        if person is None:
            raise Unauthenticated("authentication required")
        return person
    person = person_for_session_cookie(request, session)
    if person is not None:
        return person
    raise Unauthenticated("authentication required")


def person_for_session_cookie(request: Request, session: Session) -> models.Person | None:
    """The person named by a valid session cookie (set by a magic-link sign-in), if any."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    sessions: SessionTokens = request.app.state.sessions
    person_id = sessions.read(cookie)
    return None if person_id is None else session.get(models.Person, person_id)
