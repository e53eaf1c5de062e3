"""Unsubscribing from a task's mail: ``List-Unsubscribe`` (RFC 2369) and one-click (RFC 8058).

``GET /unsubscribe/<token>`` shows a confirmation form and changes nothing (mail scanners
fetch links).  ``POST`` to the same URL mutes the task for the person the link names:
mail programs send it as ``List-Unsubscribe=One-Click`` without cookies or a CSRF token,
so the signed token is the whole authorization, and the path is exempt from CSRF.  A mute
only ever stops mail to the link's own owner, and doing it twice changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template
from sqlmodel import Session

from qmail import models
from qmail.auth.signed import LinkTokens
from qmail.threads.tasks import record_event


class UnsubscribeController(Controller):
    path = "/unsubscribe"

    @get("/{token:str}", sync_to_thread=True)
    def confirm(
        self, session: NamedDependency[Session], state: State, token: FromPath[str]
    ) -> Response[bytes]:
        """The question, with a button; nothing changes yet."""
        found = _read(session, state.links, token)
        if found is None:
            return _invalid()
        task, person = found
        muted = session.get(models.Mute, (task.id, person.id)) is not None
        return _page({"task": task, "owner": person, "done": muted})

    @post("/{token:str}", sync_to_thread=True, status_code=200)
    def unsubscribe(
        self, session: NamedDependency[Session], state: State, token: FromPath[str]
    ) -> Response[bytes]:
        """Mute the task for the link's owner (RFC 8058 one-click, or the page's button)."""
        found = _read(session, state.links, token)
        if found is None:
            return _invalid()
        task, person = found
        assert task.id is not None and person.id is not None
        if session.get(models.Mute, (task.id, person.id)) is None:
            now = datetime.now(UTC)
            session.add(models.Mute(task_id=task.id, person_id=person.id, created_at=now))
            record_event(session, task, "unsubscribed", person, now)
            session.commit()
        return _page({"task": task, "owner": person, "done": True})


def _read(
    session: Session, links: LinkTokens, token: str
) -> tuple[models.Task, models.Person] | None:
    pair = links.read_unsubscribe(token)
    if pair is None:
        return None
    task, person = session.get(models.Task, pair[0]), session.get(models.Person, pair[1])
    if task is None or person is None:
        return None
    return task, person


def _page(context: dict[str, object]) -> Response[bytes]:
    return Template(  # type: ignore[return-value]
        "unsubscribe.html", context=context, headers={"Referrer-Policy": "no-referrer"}
    )


def _invalid() -> Response[bytes]:
    return Template(  # type: ignore[return-value]
        "error.html",
        context={
            "status": 400,
            "title": "This link does not work",
            "message": "The unsubscribe link is damaged. Use the link in a recent mail.",
        },
        status_code=400,
    )
