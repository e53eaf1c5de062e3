"""The team's webhooks page, ``/webhooks``: register a URL, switch it off or on, delete it,
send it a test, and read its delivery log.

An edge only, for the team: anyone else is refused with 403 (signed out: the sign-in
page), whatever they post.  The registry is ``qmail.outbound.webhooks``, the listing
``qmail.queries.webhooks`` (which keeps hidden branches out of the log for those outside
them and shows a secret only to its webhook's creator).  Forms carry Litestar's CSRF
token (``app.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlmodel import Session

from qmail.access import Reader
from qmail.errors import BadRequest, Forbidden
from qmail.outbound import webhooks
from qmail.queries.webhooks import webhook_views
from qmail.web.forms import Form, form_value


def _team_only(person: Reader) -> None:
    if not person.is_team:
        raise Forbidden("webhooks are for the team")


def _back(webhook_id: int | None = None) -> Response[Any]:
    anchor = f"#webhook-{webhook_id}" if webhook_id is not None else ""
    return Redirect(f"/webhooks{anchor}", status_code=303)


class WebhooksPage(Controller):
    path = "/webhooks"

    @get("/", sync_to_thread=True)
    def webhooks_page(
        self, session: NamedDependency[Session], person: NamedDependency[Reader]
    ) -> Template:
        """Every webhook with its newest deliveries, and the form to add one."""
        _team_only(person)
        views = webhook_views(session, person)
        return Template("webhooks.html", context={"person": person, "webhooks": views})

    @post("/", sync_to_thread=True)
    def add(
        self,
        state: State,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        data: Form,
    ) -> Response[Any]:
        """Register a URL; it receives the events from now on."""
        _team_only(person)
        internal = form_value(data, "internal") == "1"
        allowed = state.settings.webhooks.allowed_hosts
        url = form_value(data, "url")
        now = datetime.now(UTC)
        webhook = webhooks.register(session, person.person, url, internal, now, allowed)
        session.commit()
        return _back(webhook.id)

    @post("/{webhook_id:int}/test", sync_to_thread=True)
    def send_test(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        webhook_id: FromPath[int],
    ) -> Response[Any]:
        """Queue a test delivery; the worker POSTs it within a second or so."""
        _team_only(person)
        webhooks.queue_test(session, webhooks.get_webhook(session, webhook_id), datetime.now(UTC))
        session.commit()
        return _back(webhook_id)

    @post("/{webhook_id:int}/active", sync_to_thread=True)
    def switch(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        webhook_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        """Switch a webhook off (``active=0``) or on again (``active=1``)."""
        _team_only(person)
        choice = form_value(data, "active")
        if choice not in ("0", "1"):
            raise BadRequest("active must be 0 or 1")
        webhooks.set_active(session, webhooks.get_webhook(session, webhook_id), choice == "1")
        session.commit()
        return _back(webhook_id)

    @post("/{webhook_id:int}/delete", sync_to_thread=True)
    def delete(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        webhook_id: FromPath[int],
    ) -> Response[Any]:
        """Delete a webhook and its delivery log."""
        _team_only(person)
        webhooks.remove(session, webhooks.get_webhook(session, webhook_id))
        session.commit()
        return _back()
