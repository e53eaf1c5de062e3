"""The team's webhooks over JSON, ``/api/webhooks``: what the ``/webhooks`` page does, for
scripts (an integration can register itself with a team member's bearer token).

An edge only, for the team (403 for anyone else): the registry is
``qmail.outbound.webhooks``, the listing ``qmail.queries.webhooks``, with the same rules as
the page (a secret only for its webhook's creator, a hidden branch's deliveries only for
its members).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlmodel import Session

from qmail.access import Reader
from qmail.errors import Forbidden, NotFound
from qmail.outbound import webhooks
from qmail.queries.webhooks import WebhookView, webhook_views
from qmail.web.api_docs import ERRORS


class NewWebhook(msgspec.Struct):
    """A URL to POST events to; ``internal`` also carries the team's business."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=webhooks.MAX_URL)]
    internal: bool = False


class WebhookChange(msgspec.Struct):
    """Switch a webhook off (``false``) or on again, from the newest event (``true``)."""

    active: bool


class QueuedTest(msgspec.Struct):
    delivery_id: int


def _team_only(person: Reader) -> None:
    if not person.is_team:
        raise Forbidden("webhooks are for the team")


def _view(session: Session, person: Reader, webhook_id: int) -> WebhookView:
    found = webhook_views(session, person, only=webhook_id)
    if not found:
        raise NotFound(f"no webhook {webhook_id}")
    return found[0]


class WebhookApi(Controller):
    path = "/webhooks"

    @get("/", sync_to_thread=True, responses=ERRORS)
    def list_webhooks(
        self, session: NamedDependency[Session], person: NamedDependency[Reader]
    ) -> list[WebhookView]:
        """Every webhook with its twenty newest deliveries (team members only); the
        ``secret`` only of the caller's own, ``null`` for the others."""
        _team_only(person)
        return webhook_views(session, person)

    @post("/", sync_to_thread=True, status_code=201, responses=ERRORS)
    def add_webhook(
        self,
        state: State,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        data: JSONBody[NewWebhook],
    ) -> WebhookView:
        """Register a URL (http or https); it receives the events from now on.  The answer
        holds the signing ``secret``."""
        _team_only(person)
        allowed = state.settings.webhooks.allowed_hosts
        now = datetime.now(UTC)
        webhook = webhooks.register(session, person.person, data.url, data.internal, now, allowed)
        session.commit()
        assert webhook.id is not None
        return _view(session, person, webhook.id)

    @patch("/{webhook_id:int}", sync_to_thread=True, responses=ERRORS)
    def change_webhook(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        webhook_id: FromPath[int],
        data: JSONBody[WebhookChange],
    ) -> WebhookView:
        """Switch a webhook off or on."""
        _team_only(person)
        webhooks.set_active(session, webhooks.get_webhook(session, webhook_id), data.active)
        session.commit()
        return _view(session, person, webhook_id)

    @delete("/{webhook_id:int}", sync_to_thread=True, responses=ERRORS)
    def delete_webhook(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        webhook_id: FromPath[int],
    ) -> None:
        """Delete a webhook with its delivery log."""
        _team_only(person)
        webhooks.remove(session, webhooks.get_webhook(session, webhook_id))
        session.commit()

    @post("/{webhook_id:int}/test", sync_to_thread=True, status_code=202, responses=ERRORS)
    def send_test(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        webhook_id: FromPath[int],
    ) -> QueuedTest:
        """Queue a test delivery (``"kind": "test"``); the worker POSTs it within seconds."""
        _team_only(person)
        webhook = webhooks.get_webhook(session, webhook_id)
        row = webhooks.queue_test(session, webhook, datetime.now(UTC))
        session.commit()
        assert row.id is not None
        return QueuedTest(row.id)
