"""Running qmail's roles: the SMTP ingest server, the web app and the worker.

``qmail serve`` runs all three in one event loop (the embedded default); ``qmail smtp``,
``qmail web`` and ``qmail worker`` run one each, for scale-out against PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import partial

import uvicorn
from sqlmodel import col, select

from qmail import models
from qmail.context import Context
from qmail.core.mail import Envelope
from qmail.db import session_scope
from qmail.inbound import pipeline
from qmail.inbound.ingest import IngestHandler, start_smtp_server
from qmail.outbound import delivery

log = logging.getLogger(__name__)
ROLES = ("smtp", "web", "worker")
STALE_PENDING = timedelta(minutes=2)


def configure_logging() -> None:
    """Log INFO and up to stderr, one line each, for the long-running roles.

    aiosmtpd's logger, ``mail.log``, is kept to warnings and errors.  At INFO it traces
    every command of every session, and a plain QUIT ends with "Connection lost during
    _handle_client()": aiosmtpd's QUIT cancels the session's own task and reports the
    cancellation with the same INFO line as a client that vanished, so no level or
    filter short of matching its wording could tell the two apart.  What matters stays:
    aiosmtpd logs protocol abuse at WARNING and exceptions at ERROR, ``IngestHandler``
    logs its failures on ``qmail.inbound.ingest``, and the pipeline gives every mail one
    line, Message-ID first.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)


def accept(context: Context, raw: bytes, envelope: Envelope, now: datetime) -> pipeline.Outcome:
    return pipeline.accept(raw, envelope, context, now)


def ingest_handler(context: Context) -> IngestHandler:
    return IngestHandler(
        context.settings,
        resolve=partial(pipeline.recipient_for, context=context),
        accept=partial(accept, context),
    )


def sweep_pending(context: Context, now: datetime) -> int:
    """Process raw mails left ``pending`` by a crash between storing and processing."""
    with session_scope(context.engine) as session:
        ids = session.exec(
            select(models.RawMail.id).where(
                models.RawMail.state == "pending",
                col(models.RawMail.received_at) < now - STALE_PENDING,
            )
        ).all()
    for raw_mail_id in ids:
        assert raw_mail_id is not None
        pipeline.process(raw_mail_id, context, now)
    return len(ids)


async def worker(context: Context, interval: float = 1.0) -> None:
    """The background worker: finishes mail a crash left half-processed, delivers the outbox.

    A short interval keeps notifications prompt; a full batch is followed at once by the next.
    """
    transport = delivery.transport_for(context.settings)
    rng = random.Random()
    while True:
        try:
            await asyncio.to_thread(sweep_pending, context, datetime.now(UTC))
        except Exception:
            log.exception("worker sweep failed; trying again in %ss", interval)
        counts = delivery.Counts()
        try:
            counts = await delivery.send_pending(
                context.engine, context.settings, transport, rng=rng
            )
        except Exception:
            log.exception("outbox delivery failed; trying again in %ss", interval)
        if counts.total < delivery.BATCH:
            await asyncio.sleep(interval)


async def serve(context: Context, roles: Iterable[str]) -> None:
    """Run the given roles until SIGINT/SIGTERM."""
    roles = set(roles)
    settings = context.settings
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    tasks: list[asyncio.Task[None]] = []
    smtp_server = None
    if "smtp" in roles:
        smtp_server = await start_smtp_server(settings, ingest_handler(context))
    web_server = None
    if "web" in roles:
        from qmail.web.app import create_app

        config = uvicorn.Config(
            create_app(settings, context.engine),
            host=settings.web.host,
            port=settings.web.port,
            log_level="info",
            lifespan="on",
        )
        # uvicorn captures SIGINT/SIGTERM while it serves, then re-raises them to the
        # handlers installed above, so one signal stops every role.
        web_server = uvicorn.Server(config)
        tasks.append(asyncio.create_task(web_server.serve()))
        log.info("web app on http://%s:%s", settings.web.host, settings.web.port)
    worker_task = asyncio.create_task(worker(context)) if "worker" in roles else None
    await stop.wait()
    log.info("shutting down")
    if smtp_server is not None:
        smtp_server.close()
        await smtp_server.wait_closed()
    if web_server is not None:
        web_server.should_exit = True
    if worker_task is not None:
        worker_task.cancel()
        tasks.append(worker_task)
    await asyncio.gather(*tasks, return_exceptions=True)
