"""The team's webhooks: registering, switching on and off, removing, and a test delivery.

Functions take the ``Session`` first and never commit.  The callers (the ``/webhooks``
page) have made sure the person is on the team; what a webhook then carries is decided by
``webhook_fanout``, as its creator may see it.

A URL must be ``http`` or ``https`` with a host and no user name or password (the page
shows it to the whole team).  The team chooses where its events go: qmail POSTs to any
such address, the machine's own network included, so registering a webhook is a power of
the team only, and a receiver inside the network sees only signed JSON.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete
from sqlmodel import Session, col

from qmail import models
from qmail.errors import BadRequest, NotFound
from qmail.outbound.webhook_fanout import encode, newest_event_id

MAX_URL = 2000
SECRET_PREFIX = "whsec_"
TEST_TEXT = "A test delivery from qmail: if you can read this, the webhook works."


def host_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``webhooks.allowed_hosts`` lets a webhook POST to ``url``'s host: any host
    when the list is empty; ``.example.com`` allows example.com and its subdomains."""
    if not allowed:
        return True
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    for entry in allowed:
        if entry.startswith("."):
            if host == entry[1:] or host.endswith(entry):
                return True
        elif host == entry.rstrip("."):
            return True
    return False


def checked_url(url: str, allowed: tuple[str, ...] = ()) -> str:
    """``url`` stripped, if it is one a webhook may have (at a host ``allowed`` lets in);
    else ``BadRequest`` saying why."""
    url = url.strip()
    if not url:
        raise BadRequest("the URL must not be empty")
    if len(url) > MAX_URL or not url.isprintable() or " " in url:
        raise BadRequest(f"the URL must be one line of at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError as error:
        raise BadRequest(f"the URL is malformed: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise BadRequest("the URL must start with http:// or https://")
    if not parts.hostname:
        raise BadRequest("the URL must name a host")
    if parts.username is not None or parts.password is not None:
        raise BadRequest("the URL must not hold a user name or password (the team sees it)")
    if not host_allowed(url, allowed):
        raise BadRequest(f"{parts.hostname} is not in webhooks.allowed_hosts")
    return url


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def register(
    session: Session,
    creator: models.Person,
    url: str,
    internal: bool,
    now: datetime,
    allowed_hosts: tuple[str, ...] = (),
) -> models.Webhook:
    """A new active webhook for ``url``; it carries the events from now on."""
    assert creator.id is not None
    webhook = models.Webhook(
        url=checked_url(url, allowed_hosts),
        secret=new_secret(),
        internal=internal,
        active=True,
        created_by_id=creator.id,
        created_at=now,
        last_event_id=newest_event_id(session),
    )
    session.add(webhook)
    session.flush()
    return webhook


def get_webhook(session: Session, webhook_id: int) -> models.Webhook:
    webhook = session.get(models.Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"no webhook {webhook_id}")
    return webhook


def set_active(session: Session, webhook: models.Webhook, active: bool) -> None:
    """Switch a webhook off (nothing is queued or sent) or on again, from the newest event:
    what happened while it was off is not sent late."""
    if active and not webhook.active:
        webhook.last_event_id = newest_event_id(session)
    webhook.active = active
    session.add(webhook)


def remove(session: Session, webhook: models.Webhook) -> None:
    """Delete a webhook with its delivery log."""
    session.connection().execute(
        delete(models.WebhookDelivery).where(col(models.WebhookDelivery.webhook_id) == webhook.id)
    )
    session.delete(webhook)


def queue_test(session: Session, webhook: models.Webhook, now: datetime) -> models.WebhookDelivery:
    """Queue a test delivery (``kind`` ``test``, no event) for the worker to POST."""
    assert webhook.id is not None
    payload = {
        "event_id": None,
        "kind": "test",
        "description": TEST_TEXT,
        "created_at": now.isoformat(),
        "webhook_id": webhook.id,
    }
    row = models.WebhookDelivery(
        webhook_id=webhook.id,
        kind="test",
        payload=encode(payload),
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    return row
