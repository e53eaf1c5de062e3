"""Fanning events out to webhooks: which event goes where, and the JSON it becomes.

The worker tails the ``event`` table by id from each webhook's cursor
(``Webhook.last_event_id``) and writes a ``WebhookDelivery`` row for each event the webhook
may carry, in the transaction that moves the cursor.  Nothing is written on the mail path:
a mail files as fast with a hundred webhooks as with none.

What a webhook may carry is decided here, in the query, as its creator may see it:

- a webhook whose creator is no longer on the team carries nothing;
- an event on a hidden branch goes only to an *internal* webhook, and only when its
  creator is a member of that branch (a webhook never reads more than the person who
  registered it);
- the team's business (tags, held mail, refused commands) goes only to internal ones;
- events without a task (nothing to link to) go nowhere.

Several workers may fan out at once: the cursor moves by a guarded ``UPDATE … WHERE
last_event_id = <what was read>``, so one of them wins each batch and the others roll
back; ``(webhook_id, event_id)`` is unique besides.  On PostgreSQL an event id is taken
when the row is written but becomes visible when its transaction commits, so a smaller id
may appear after a larger one: the cursor stops before a missing id until it shows up or
has been missing ``GAP_WAIT`` (a rolled-back transaction leaves a hole for good).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import Reader, branch_visible, reader_of
from qmail.config import Settings
from qmail.models import utcnow
from qmail.people import Team
from qmail.queries.events import _TEAM_ONLY_KINDS, describe

log = logging.getLogger(__name__)

BATCH = 200
GAP_WAIT = timedelta(seconds=20)


@dataclass
class Gaps:
    """When this process first saw each missing event id, per webhook (in memory only: a
    restarted worker waits ``GAP_WAIT`` again, which costs a delay, never an event)."""

    first_seen: dict[tuple[int, int], datetime] = field(default_factory=dict)

    def settled(
        self, webhook_id: int, after: int, ids: list[int], now: datetime, wait: timedelta
    ) -> int:
        """How many of ``ids`` (ascending, all above ``after``) may be consumed now."""
        expected, count = after + 1, 0
        for event_id in ids:
            if event_id != expected:
                seen = self.first_seen.setdefault((webhook_id, expected), now)
                if now - seen < wait:
                    break
                log.info("webhook %s: no event %s..%s; on", webhook_id, expected, event_id - 1)
            count, expected = count + 1, event_id + 1
        for key in [key for key in self.first_seen if key[0] == webhook_id and key[1] < expected]:
            del self.first_seen[key]
        return count


def newest_event_id(session: Session) -> int:
    """The id of the newest event (0 when there is none): where a new webhook starts."""
    found = session.exec(select(models.Event.id).order_by(col(models.Event.id).desc())).first()
    return found or 0


def fan_out(
    session: Session,
    webhook_id: int,
    settings: Settings,
    now: datetime,
    gaps: Gaps,
    gap_wait: timedelta = GAP_WAIT,
    limit: int = BATCH,
) -> int:
    """Queue the next events for one active webhook and move its cursor; commits.

    Returns how many events the cursor passed (0: nothing new, or another worker won).
    """
    webhook = session.get(models.Webhook, webhook_id)
    creator = session.get(models.Person, webhook.created_by_id) if webhook else None
    if webhook is None or creator is None or not webhook.active:
        return 0
    reader = reader_of(creator, Team.of(settings))
    rows = session.exec(_events_after(reader, webhook.last_event_id, limit)).all()
    ids = [row[0].id for row in rows]
    count = gaps.settled(webhook_id, webhook.last_event_id, ids, now, gap_wait)
    if count == 0:
        return 0
    moved = session.connection().execute(
        update(models.Webhook)
        .where(
            col(models.Webhook.id) == webhook_id,
            col(models.Webhook.last_event_id) == webhook.last_event_id,
        )
        .values(last_event_id=ids[count - 1])
    )
    if moved.rowcount != 1:  # another worker took this batch
        session.rollback()
        return 0
    chosen = [row for row in rows[:count] if reader.is_team and _reaches(webhook, *row[:4])]
    texts = _message_texts(session, [row[0] for row in chosen])
    deliveries = [
        _delivery(webhook_id, now, _payload(settings, texts, *row), row[0], row[2])
        for row in chosen
    ]
    if deliveries:
        session.connection().execute(insert(models.WebhookDelivery), deliveries)
    session.commit()
    return count


def _events_after(reader: Reader, after: int, limit: int) -> Any:
    """SELECT the events after ``after`` with what deciding and describing them needs."""
    branch = aliased(models.Branch)
    visible = or_(col(models.Event.branch_id).is_(None), branch_visible(reader, branch))
    return (
        select(  # type: ignore[call-overload]  # sqlmodel types select() up to 4 columns
            models.Event,
            visible.label("visible"),
            col(branch.hidden),
            col(models.Task.number),
            col(models.Task.title),
            col(models.Person.email),
            col(models.Person.name),
        )
        .outerjoin(branch, col(branch.id) == models.Event.branch_id)
        .outerjoin(models.Task, col(models.Task.id) == models.Event.task_id)
        .outerjoin(models.Person, col(models.Person.id) == models.Event.person_id)
        .where(col(models.Event.id) > after)
        .order_by(col(models.Event.id))
        .limit(limit)
    )


def _reaches(
    webhook: models.Webhook,
    event: models.Event,
    visible: bool | None,
    hidden: bool | None,
    number: int | None,
) -> bool:
    """Whether ``webhook`` carries ``event`` (its creator, a team member, may see it)."""
    if number is None or not visible:
        return False
    if webhook.internal:
        return True
    return not hidden and event.kind not in _TEAM_ONLY_KINDS


def _message_texts(session: Session, events: list[models.Event]) -> dict[int, str]:
    """The text (as trimmed and stored, never HTML) of the messages ``message`` events name."""
    ids = [int(e.detail) for e in events if e.kind == "message" and e.detail.isdigit()]
    if not ids:
        return {}
    query = select(models.Message.id, models.Message.text).where(col(models.Message.id).in_(ids))
    return {message_id: text for message_id, text in session.exec(query).all() if message_id}


def _payload(
    settings: Settings,
    texts: dict[int, str],
    event: models.Event,
    visible: bool | None,
    hidden: bool | None,
    number: int,
    title: str,
    email: str | None,
    name: str | None,
) -> dict[str, Any]:
    """The JSON body of one event's delivery."""
    task_url = f"{settings.web.base_url.rstrip('/')}/tasks/{number}"
    payload: dict[str, Any] = {
        "event_id": event.id,
        "kind": event.kind,
        "description": describe(event.kind, event.detail),
        "created_at": event.created_at.isoformat(),
        "task": {"number": number, "title": title, "url": task_url},
        "branch": {"id": event.branch_id, "hidden": bool(hidden)} if event.branch_id else None,
        "author": {"email": email, "name": name or ""} if email else None,
        "url": task_url,
    }
    message_id = int(event.detail) if event.kind == "message" and event.detail.isdigit() else None
    if message_id is not None and message_id in texts:
        payload["message"] = {"id": message_id, "text": texts[message_id]}
        payload["url"] = f"{task_url}#message-{message_id}"
    return payload


def _delivery(
    webhook_id: int,
    now: datetime,
    payload: dict[str, Any],
    event: models.Event,
    hidden: bool | None,
) -> dict[str, Any]:
    """The columns of a new pending delivery of ``payload``."""
    return {
        "webhook_id": webhook_id,
        "event_id": event.id,
        "branch_id": event.branch_id if hidden else None,
        "kind": event.kind,
        "payload": encode(payload),
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "locked_until": None,
        "last_status_code": None,
        "last_error": "",
        "created_at": now,
        "sent_at": None,
    }


def encode(payload: dict[str, Any]) -> str:
    """A payload as the JSON text that is sent (UTF-8, compact, keys in order)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def fan_out_all(
    engine: Engine,
    settings: Settings,
    gaps: Gaps,
    now_fn: Callable[[], datetime] = utcnow,
    gap_wait: timedelta = GAP_WAIT,
) -> int:
    """Fan the new events out to every active webhook, a batch per transaction; how many
    events the cursors passed in all (called in a worker thread)."""
    with Session(engine) as session:
        active = col(models.Webhook.active).is_(True)
        webhook_ids = session.exec(select(models.Webhook.id).where(active)).all()
    total = 0
    for webhook_id in webhook_ids:
        assert webhook_id is not None
        while True:
            with Session(engine, expire_on_commit=False) as session:
                count = fan_out(session, webhook_id, settings, now_fn(), gaps, gap_wait)
            total += count
            if count < BATCH:
                break
    return total
