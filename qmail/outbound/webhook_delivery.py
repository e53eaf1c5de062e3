"""The webhook edge: POSTs pending ``WebhookDelivery`` rows, signed, with retries.

One round of ``send_pending`` works like the outbox's (``qmail.outbound.delivery``), with
the same claim (``claim_leased``: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, then a guarded
``UPDATE`` per row), so several workers never POST one delivery at once:

1. claim due ``pending`` rows of active webhooks, with a lease; committed before sending;
2. POST outside any transaction, each webhook's rows in order and the webhooks side by
   side: the stored JSON, signed afresh for each attempt (``X-Qmail-Signature:
   t=…,v1=…``, ``qmail.core.webhook_signing``), redirects not followed (the registered URL
   is the only place a delivery goes).  Once a receiver fails, its other rows of the
   round wait as long as the failed one, unsent: a dead receiver costs one timeout a
   round and holds up no other webhook;
3. record: a 2xx answer is ``sent``; anything else (another status, a refused connection, a
   timeout) is tried again after ``backoff`` (30 s doubling up to an hour, with jitter) and
   ``failed`` after ``MAX_ATTEMPTS``; a URL whose host ``webhooks.allowed_hosts`` no longer
   names fails at once, unsent.  The status code and the start of the answer (or the
   network error) are kept for the delivery log.

A worker that dies between the receiver's 2xx and the commit of ``sent`` leaves the row to
be POSTed again when its lease expires: receivers de-duplicate by ``X-Qmail-Delivery``, the
row's id, which stays the same across retries.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from qmail import models
from qmail.core.webhook_signing import SIGNATURE_HEADER, signature_header
from qmail.db import session_scope
from qmail.models import WebhookDelivery, utcnow
from qmail.outbound.delivery import Counts, backoff, claim_leased
from qmail.outbound.webhooks import host_allowed

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12  # 30 s, 1, 2, 4 … 32 min, then hourly: the last try some 5 hours on
LEASE = timedelta(minutes=2)
BATCH = 20
TIMEOUT = 10.0
USER_AGENT = "qmail-webhooks/1"
ANSWER_KEPT = 300  # characters of a refusing receiver's answer kept for the log


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: the status code (``None``: no answer) and why it failed."""

    status: int | None
    error: str = ""
    permanent: bool = False  # a retry cannot help: failed at once

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def claim_due(session: Session, now: datetime, lease: timedelta, limit: int) -> list[Any]:
    """Lease due deliveries of active webhooks, each with its webhook's URL and secret."""
    active = col(WebhookDelivery.webhook_id).in_(
        select(models.Webhook.id).where(col(models.Webhook.active).is_(True))
    )
    rows = claim_leased(session, WebhookDelivery, now, lease, limit, active)
    hooks = {
        hook.id: hook
        for hook in session.exec(
            select(models.Webhook).where(
                col(models.Webhook.id).in_({row.webhook_id for row in rows})
            )
        ).all()
    }
    return [(row, hooks[row.webhook_id].url, hooks[row.webhook_id].secret) for row in rows]


async def post(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    row: WebhookDelivery,
    now: float,
    allowed_hosts: tuple[str, ...] = (),
) -> Attempt:
    """POST one delivery, signed at ``now`` (Unix seconds), if its host is still allowed."""
    if not host_allowed(url, allowed_hosts):
        return Attempt(None, "the host is not in webhooks.allowed_hosts", permanent=True)
    body = row.payload.encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Qmail-Event": row.kind,
        "X-Qmail-Delivery": str(row.id),
        SIGNATURE_HEADER: signature_header(secret, int(now), body),
    }
    try:
        answer = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as error:
        return Attempt(None, _one_line(f"{type(error).__name__}: {error}"))
    if 200 <= answer.status_code < 300:
        return Attempt(answer.status_code)
    text = _one_line(answer.text)[:ANSWER_KEPT]
    return Attempt(answer.status_code, f"HTTP {answer.status_code} {text}".strip())


def record(
    session: Session, row: WebhookDelivery, attempt: Attempt, now: datetime, jitter: float = 0.0
) -> tuple[str, datetime | None]:
    """Store one attempt's outcome and release the lease; returns ``sent``, ``retried`` or
    ``failed``, and when a retried row is due again."""
    attempts = row.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts,
        "locked_until": None,
        "last_status_code": attempt.status,
        "last_error": attempt.error,
    }
    if attempt.ok:
        outcome = "sent"
        values.update(state="sent", sent_at=now)
    elif attempt.permanent:
        outcome = "failed"
        values.update(state="failed")
    elif attempts >= MAX_ATTEMPTS:
        outcome = "failed"
        values.update(
            state="failed", last_error=f"gave up after {attempts} attempts: {attempt.error}"
        )
    else:
        outcome = "retried"
        values.update(next_attempt_at=now + backoff(attempts, jitter))
    session.connection().execute(
        update(WebhookDelivery).where(col(WebhookDelivery.id) == row.id).values(**values)
    )
    return outcome, values.get("next_attempt_at")


def postpone(session: Session, rows: list[WebhookDelivery], until: datetime) -> None:
    """Give claimed rows back unsent, due at ``until`` (their receiver just failed)."""
    ids = [row.id for row in rows]
    session.connection().execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id).in_(ids))
        .values(locked_until=None, next_attempt_at=until)
    )


def release(session: Session, rows: list[WebhookDelivery]) -> None:
    """Give claimed rows back unsent, for the next round."""
    ids = [row.id for row in rows]
    session.connection().execute(
        update(WebhookDelivery).where(col(WebhookDelivery.id).in_(ids)).values(locked_until=None)
    )


async def send_pending(
    engine: Engine,
    allowed_hosts: tuple[str, ...] = (),
    now_fn: Callable[[], datetime] = utcnow,
    lease: timedelta = LEASE,
    limit: int = BATCH,
    rng: random.Random | None = None,
    timeout: float = TIMEOUT,
) -> Counts:
    """One round: claim due deliveries, POST them (no transaction open), record each.

    Each webhook's rows go in order, the webhooks side by side, so a receiver that times
    out delays no other.  Rows still unsent when half the lease has passed are released
    rather than sent late, as the outbox does.  ``rng`` adds jitter to the backoff;
    without one it is exact.
    """
    claimed_at = now_fn()
    claimed = await asyncio.to_thread(_in_session, engine, claim_due, claimed_at, lease, limit)
    batch = _Round(engine, allowed_hosts, now_fn, claimed_at + lease / 2, rng or _NO_JITTER)
    by_webhook: dict[int, list[tuple[WebhookDelivery, str, str]]] = {}
    for item in claimed:
        by_webhook.setdefault(item[0].webhook_id, []).append(item)
    if by_webhook:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            await asyncio.gather(*(batch.send(client, items) for items in by_webhook.values()))
    return batch.counts


class _NoJitter(random.Random):
    def random(self) -> float:
        return 0.0


_NO_JITTER = _NoJitter()


@dataclass
class _Round:
    """What one round of ``send_pending`` shares between its webhooks."""

    engine: Engine
    allowed_hosts: tuple[str, ...]
    now_fn: Callable[[], datetime]
    send_before: datetime
    rng: random.Random
    counts: Counts = field(default_factory=Counts)

    async def send(
        self, client: httpx.AsyncClient, items: list[tuple[WebhookDelivery, str, str]]
    ) -> None:
        """One webhook's claimed rows, in order.  After a failure the rest wait as long as
        it does, unsent and without an attempt counted: a dead receiver costs one timeout
        a round, not one per queued event."""
        for index, (row, url, secret) in enumerate(items):
            rest = [item[0] for item in items[index:]]
            if self.now_fn() >= self.send_before:
                await asyncio.to_thread(_in_session, self.engine, release, rest)
                return
            attempt = await post(client, url, secret, row, time.time(), self.allowed_hosts)
            jitter = self.rng.random()
            outcome, retry_at = await asyncio.to_thread(
                _in_session, self.engine, record, row, attempt, self.now_fn(), jitter
            )
            setattr(self.counts, outcome, getattr(self.counts, outcome) + 1)
            log.info("webhook delivery %s (%s): %s %s", row.id, row.kind, outcome, attempt.error)
            if retry_at is not None and len(rest) > 1:
                await asyncio.to_thread(_in_session, self.engine, postpone, rest[1:], retry_at)
                self.counts.retried += len(rest) - 1
                return


def _in_session(engine: Engine, work: Callable[..., Any], *args: Any) -> Any:
    """Run ``work(session, *args)`` in one short transaction (called in a worker thread)."""
    with session_scope(engine) as session:
        return work(session, *args)


def _one_line(text: str) -> str:
    return " ".join(text.split())
