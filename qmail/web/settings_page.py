"""The signed-in person's settings, ``/settings``: their mail, the browsers they are
signed in on, and (``settings_tokens.py``) their API tokens and activity feed link.

An edge only: sessions are read and ended by ``qmail.auth.sessions``, the mail choice is
``qmail.outbound.preferences``'s.  A person only ever sees and changes their own: their
sessions (another person's session id answers 404, as an unknown one does), their choice
of mail (``all`` is refused to a client with 400, whatever the form says), and the tasks
they unsubscribed from, which they may resubscribe to.  Ending the session of the browser
in use signs it out.  Forms carry Litestar's CSRF token (``app.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import Reader, task_visible
from qmail.auth import api_tokens, sessions
from qmail.auth.feeds import feed_token, feed_url
from qmail.errors import NotFound
from qmail.outbound import preferences
from qmail.threads.tasks import record_event
from qmail.web.deps import SESSION_COOKIE, current_web_session
from qmail.web.forms import Form, form_value


class SettingsPage(Controller):
    @get("/settings", sync_to_thread=True)
    def settings(
        self,
        request: Request[Any, Any, Any],
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
    ) -> Template:
        """The person's mail choice, the tasks they unsubscribed from, their active
        sessions (this browser's marked), API tokens and feed link, each with its button."""
        return Template("settings.html", context=settings_context(request, session, person))

    @post("/settings/notifications", sync_to_thread=True)
    def notifications(
        self, session: NamedDependency[Session], person: NamedDependency[Reader], data: Form
    ) -> Response[Any]:
        """Save the person's choice of mail; back to the settings."""
        own = session.get(models.Person, person.id)
        assert own is not None
        choice = form_value(data, "notifications")
        preferences.choose(session, own, choice, person.is_team, datetime.now(UTC))
        session.commit()
        return Redirect("/settings#mail", status_code=303)

    @post("/settings/mutes/{number:int}/resubscribe", sync_to_thread=True)
    def resubscribe(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        number: FromPath[int],
    ) -> Response[Any]:
        """Undo an unsubscribe: mail about task ``number`` comes again, as before."""
        task = session.exec(
            select(models.Task).where(models.Task.number == number, task_visible(person))
        ).first()
        mute = session.get(models.Mute, (task.id, person.id)) if task is not None else None
        if task is None or mute is None:
            raise NotFound(f"you are not unsubscribed from task {number}")
        session.delete(mute)
        record_event(session, task, "resubscribed", person.person, datetime.now(UTC))
        session.commit()
        return Redirect("/settings#mail", status_code=303)

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


def settings_context(
    request: Request[Any, Any, Any], session: Session, person: Reader, **extra: Any
) -> dict[str, Any]:
    """What ``settings.html`` shows ``person`` (``extra``: a token just made, shown once)."""
    assert person.id is not None
    current = current_web_session(request, session)
    rows = sessions.sessions_of(session, person.id, datetime.now(UTC), active_only=True)
    state = request.app.state
    token = feed_token(state.links, person.person)
    return {
        "person": person,
        "notifications": person.person.notifications,
        "choices": preferences.choices_for(person.is_team),
        "muted": _muted_tasks(session, person),
        "sessions": rows,
        "current_id": current.id if current is not None else None,
        "api_tokens": api_tokens.tokens_of(session, person.id),
        "new_token": None,
        "feed": feed_url(state.settings.web.base_url, token) if token else None,
        **extra,
    }


def _muted_tasks(session: Session, person: Reader) -> list[models.Task]:
    """The tasks the person unsubscribed from and may still see, by number."""
    return list(
        session.exec(
            select(models.Task)
            .join(models.Mute, col(models.Mute.task_id) == models.Task.id)
            .where(models.Mute.person_id == person.id, task_visible(person))
            .order_by(col(models.Task.number))
        ).all()
    )
