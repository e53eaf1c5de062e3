"""The signed-in person's settings, ``/settings``: the browsers they are signed in on.

An edge only: sessions are read and ended by ``qmail.auth.sessions``.  A person only ever
sees and ends their own sessions; another person's session id answers 404, as an unknown
one does.  Ending the session of the browser in use signs it out.  Forms carry Litestar's
CSRF token (``app.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlmodel import Session

from qmail import models
from qmail.access import Reader
from qmail.auth import sessions
from qmail.errors import NotFound
from qmail.web.deps import SESSION_COOKIE, current_web_session


class SettingsPage(Controller):
    @get("/settings", sync_to_thread=True)
    def settings(
        self,
        request: Request[Any, Any, Any],
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
    ) -> Template:
        """The person's active sessions, this browser's marked, each with a "Sign out" button."""
        assert person.id is not None
        current = current_web_session(request, session)
        rows = sessions.sessions_of(session, person.id, datetime.now(UTC), active_only=True)
        return Template(
            "settings.html",
            context={
                "person": person,
                "sessions": rows,
                "current_id": current.id if current is not None else None,
            },
        )

    @post("/settings/sessions/{session_id:int}/revoke", sync_to_thread=True)
    def revoke(
        self,
        request: Request[Any, Any, Any],
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        session_id: FromPath[int],
    ) -> Response[Any]:
        """End one of the person's own sessions; back to the list (or to ``/login``)."""
        web_session = session.get(models.WebSession, session_id)
        if web_session is None or web_session.person_id != person.id:
            raise NotFound(f"no session {session_id}")
        current = current_web_session(request, session)
        sessions.revoke(session, web_session, datetime.now(UTC))
        session.commit()
        if current is not None and current.id == web_session.id:
            response = Redirect("/login", status_code=303)
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        return Redirect("/settings", status_code=303)
