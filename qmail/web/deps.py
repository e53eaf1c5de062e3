"""Dependencies of the web handlers: a database session and the signed-in person.

Handlers never open sessions or read credentials themselves; they ask for ``session`` and
``person`` by name and get them from here.  Credentials are a bearer token (API clients)
or the session cookie a magic-link sign-in sets (browsers), which counts only while its
``WebSession`` row is active (``qmail.auth.sessions``).  Who may see what is decided
afterwards, in the queries, by ``qmail.access``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlmodel import Session

from qmail import models
from qmail.access import Reader, reader_of
from qmail.auth import sessions
from qmail.auth.api_tokens import find_api_token, mark_used
from qmail.errors import QmailError
from qmail.people import Team

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


def provide_current_user(request: Request, session: NamedDependency[Session]) -> Reader:
    """The person making the request, as the permission rules see them; else 401.

    Whether they are on the team is worked out now, from the configuration and their
    role, so a role change takes effect on their next request.  Runs in a worker thread
    (``sync_to_thread=True``): it queries the database, and every few minutes records a
    session's ``last_seen_at`` or a token's ``last_used_at`` (committed at once, before
    the handler has written anything).
    """
    team: Team = request.app.state.team
    token = bearer_token(request)
    if token is not None:
        # judged by the token alone: a fallback to the cookie would make a request that
        # skipped the API's CSRF check (api_guards) a cookie-authenticated one
        found = find_api_token(session, token)
        if found is None:
            raise Unauthenticated("authentication required")
        mark_used(session, found[0], datetime.now(UTC))
        return reader_of(found[1], team)
    person = person_for_session_cookie(request, session)
    if person is not None:
        return reader_of(person, team)
    raise Unauthenticated("authentication required")


def current_web_session(request: Request, session: Session) -> models.WebSession | None:
    """The active server-side session the request's cookie opens, if any."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    return sessions.active_session(session, cookie, datetime.now(UTC))


def person_for_session_cookie(request: Request, session: Session) -> models.Person | None:
    """The person of an active session (a magic-link sign-in), if the cookie opens one."""
    web_session = current_web_session(request, session)
    if web_session is None:
        return None
    sessions.mark_seen(session, web_session, datetime.now(UTC))
    return session.get(models.Person, web_session.person_id)
