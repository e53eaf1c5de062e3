"""The team's webhooks as the ``/webhooks`` page shows them, each with its delivery log.

For team members only (the page refuses anyone else).  A delivery of an event on a hidden
branch is listed only to that branch's members, as the outbox page lists mail about it:
a team member outside the branch must not learn from the log that it exists.  A webhook's
secret is given only to the person who registered it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, or_
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import Reader, branch_visible

LOG_SIZE = 20


@dataclass(frozen=True)
class DeliveryLine:
    """One delivery as the log shows it (without its payload)."""

    id: int
    created_at: datetime
    kind: str
    task_number: int | None
    state: str
    attempts: int
    last_status_code: int | None
    last_error: str
    next_attempt_at: datetime


@dataclass(frozen=True)
class WebhookView:
    """A webhook on the page: the secret only for its creator (else ``None``)."""

    id: int
    url: str
    internal: bool
    active: bool
    created_at: datetime
    created_by: str
    secret: str | None
    deliveries: list[DeliveryLine]


def webhook_views(
    session: Session, reader: Reader, log_size: int = LOG_SIZE, only: int | None = None
) -> list[WebhookView]:
    """Every webhook (or the one ``only`` names), oldest first, with the newest deliveries
    ``reader`` may know of."""
    statement = (
        select(models.Webhook, models.Person.email)
        .join(models.Person, col(models.Person.id) == models.Webhook.created_by_id)
        .order_by(col(models.Webhook.id))
    )
    if only is not None:
        statement = statement.where(models.Webhook.id == only)
    rows = session.exec(statement).all()
    return [
        WebhookView(
            id=webhook.id or 0,
            url=webhook.url,
            internal=webhook.internal,
            active=webhook.active,
            created_at=webhook.created_at,
            created_by=email,
            secret=webhook.secret if webhook.created_by_id == reader.id else None,
            deliveries=delivery_lines(session, reader, webhook.id or 0, log_size),
        )
        for webhook, email in rows
    ]


def delivery_lines(
    session: Session, reader: Reader, webhook_id: int, limit: int = LOG_SIZE
) -> list[DeliveryLine]:
    """The newest deliveries of one webhook that ``reader`` may know of, newest first."""
    delivery = models.WebhookDelivery
    about_visible = exists(
        select(models.Branch.id).where(
            models.Branch.id == delivery.branch_id, branch_visible(reader)
        )
    )
    statement = (
        select(delivery, models.Task.number)
        .outerjoin(models.Event, col(models.Event.id) == delivery.event_id)
        .outerjoin(models.Task, col(models.Task.id) == models.Event.task_id)
        .where(delivery.webhook_id == webhook_id)
        .where(or_(col(delivery.branch_id).is_(None), about_visible))
        .order_by(col(delivery.id).desc())
        .limit(limit)
    )
    return [
        DeliveryLine(
            id=row.id or 0,
            created_at=row.created_at,
            kind=row.kind,
            task_number=number,
            state=row.state,
            attempts=row.attempts,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at,
        )
        for row, number in session.exec(statement).all()
    ]
