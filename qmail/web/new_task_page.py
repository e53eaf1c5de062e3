"""The new-task page, ``/tasks/new``: a team member writes first, to a client.

An edge only: ``threads.opening.open_task`` opens the task, as ``POST /api/tasks`` does;
the client gets the first message by mail with their own reply address.  A form that
cannot be taken (no address, a malformed one, no text) is shown again with what was
typed and what is wrong, answered 400.  Team members only: a client writes by mail.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.response import Redirect, Template
from sqlmodel import Session

from qmail.access import Reader
from qmail.core.addresses import typed_address
from qmail.errors import BadRequest, Forbidden
from qmail.threads.opening import open_task
from qmail.web.forms import Form, form_value, message_text

_SEPARATORS = re.compile(r"[,;\s]+")


def addresses_typed(text: str) -> list[str]:
    """The addresses of a "To" field (commas, semicolons, spaces or lines between them)."""
    found = []
    for word in filter(None, _SEPARATORS.split(text)):
        email = typed_address(word)
        if email is None:
            raise BadRequest(f"not an email address: {word!r}")
        found.append(email)
    if not found:
        raise BadRequest("write to at least one address")
    return found


def tags_typed(text: str) -> list[str]:
    return [tag for tag in (part.strip() for part in text.split(",")) if tag]


class NewTaskPage(Controller):
    path = "/tasks/new"

    @get("/", sync_to_thread=False)
    def form(self, person: NamedDependency[Reader]) -> Template:
        """An empty new-task form."""
        _require_team(person)
        return Template("new_task.html", context={"person": person, "values": {}, "error": ""})

    @post("/", sync_to_thread=True)
    def create(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        state: State,
        data: Form,
    ) -> Redirect | Template:
        """Open the task and mail its first message; then show it."""
        _require_team(person)
        values = {name: form_value(data, name) for name in ("to", "title", "text", "tags")}
        try:
            to, title = addresses_typed(values["to"]), values["title"].strip()
            if not title:
                raise BadRequest("the task needs a title")
            text = message_text(data)
            task, _ = open_task(
                session,
                state.context,
                person.person,
                to,
                title[:300],
                text,
                tags_typed(values["tags"]),
                "web",
                datetime.now(UTC),
            )
        except BadRequest as error:
            session.rollback()
            context = {"person": person, "values": values, "error": str(error)}
            return Template("new_task.html", context=context, status_code=400)
        session.commit()
        return Redirect(f"/tasks/{task.number}", status_code=303)


def _require_team(person: Reader) -> None:
    if not person.is_team:
        raise Forbidden("only team members open tasks here; write to the intake address")
