"""Running qmail's roles: the SMTP ingest server, the web app and the worker.

``qmail serve`` runs all three in one event loop (the embedded default); ``qmail smtp``,
``qmail web`` and ``qmail worker`` run one each, for scale-out against PostgreSQL.  The web
app may also run in several processes on the same port (``web.processes``): the first one
(with the other roles) starts the rest, each a web app only, and stops them when it stops.  The
SMTP server only keeps mail; the worker files it (``pipeline.process_pending``), queues
the daily digests (``outbound.digest``), delivers the outbox and POSTs events to the
team's webhooks (``outbound.webhook_fanout``, ``outbound.webhook_delivery``), so mail kept
by ``qmail smtp`` waits for a ``qmail worker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import random
import signal
import socket
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial

import uvicorn

from qmail.config import Settings
from qmail.context import Context, opened_context
from qmail.inbound import pipeline
from qmail.inbound.ingest import IngestHandler, start_smtp_server
from qmail.inbound.spool import Spool
from qmail.outbound import delivery, digest, webhook_delivery, webhook_fanout

log = logging.getLogger(__name__)
ROLES = ("smtp", "web", "worker")


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


def ingest_handler(context: Context, spool: Spool) -> IngestHandler:
    return IngestHandler(
        context.settings,
        resolve=partial(pipeline.recipient_for, context=context),
        keep=spool.put,
    )


def file_pending(context: Context, now: datetime | None = None, budget: float = 0.1) -> int:
    """File every pending raw mail, a batch per transaction; how many were taken.

    A batch is as many mails as take about ``budget`` seconds to file (at least one, at
    most ``pipeline.BATCH``): on SQLite a transaction holds the one write lock, and the
    SMTP server's next commit, with the 250s waiting on it, must not wait long for it.
    ``now`` is the filing time (by default the clock's, read for each batch).  A mail
    that raced another worker and was then filed by it counts there, not here.
    """
    total, per_mail = 0, budget / 10
    while True:
        limit = max(1, min(pipeline.BATCH, int(budget / per_mail)))
        started = time.perf_counter()
        outcomes = pipeline.process_pending(context, now or datetime.now(UTC), limit)
        if outcomes:
            per_mail = (time.perf_counter() - started) / len(outcomes)
        total += sum(not outcome.taken_elsewhere for outcome in outcomes)
        if len(outcomes) < limit:
            return total


async def filer(
    context: Context,
    wake: asyncio.Event,
    interval: float = 1.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Files kept mail: at once when this process's SMTP server kept some (``wake``),
    and every ``interval`` seconds for what other processes kept or a crash left.

    ``stop`` ends it between two rounds, never with a round's thread still at work.
    """
    stop = stop or asyncio.Event()
    while not stop.is_set():
        wake.clear()
        try:
            await asyncio.to_thread(file_pending, context)
        except Exception:
            log.exception("filing mail failed; trying again in %ss", interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), interval)


async def deliverer(context: Context, interval: float = 1.0) -> None:
    """Delivers the outbox; a full batch is followed at once by the next."""
    transport = delivery.transport_for(context.settings)
    rng = random.Random()
    while True:
        counts = delivery.Counts()
        try:
            counts = await delivery.send_pending(
                context.engine, context.settings, transport, rng=rng
            )
        except Exception:
            log.exception("outbox delivery failed; trying again in %ss", interval)
        if counts.total < delivery.BATCH:
            await asyncio.sleep(interval)


async def webhooks(
    context: Context, interval: float = 1.0, stop: asyncio.Event | None = None
) -> None:
    """Fans new events out to the team's webhooks and POSTs what is due, every ``interval``
    seconds (at once again after a full batch).  ``stop`` ends it between rounds."""
    stop = stop or asyncio.Event()
    gaps = webhook_fanout.Gaps()
    rng = random.Random()
    while not stop.is_set():
        counts = delivery.Counts()
        try:
            await asyncio.to_thread(
                webhook_fanout.fan_out_all, context.engine, context.settings, gaps
            )
            allowed = context.settings.webhooks.allowed_hosts
            counts = await webhook_delivery.send_pending(context.engine, allowed, rng=rng)
        except Exception:
            log.exception("webhook delivery failed; trying again in %ss", interval)
        if counts.total < webhook_delivery.BATCH:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)


async def digester(
    context: Context, interval: float = 60.0, stop: asyncio.Event | None = None
) -> None:
    """Queues the daily digests that are due, every ``interval`` seconds (a digest is due
    a day after the last, so a minute late is on time).  ``stop`` ends it between rounds."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await asyncio.to_thread(digest.send_digests, context, datetime.now(UTC))
        except Exception:
            log.exception("queueing digests failed; trying again in %ss", interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def worker(
    context: Context, wake: asyncio.Event | None = None, interval: float = 1.0
) -> None:
    """The background worker: files kept mail, queues daily digests, delivers the outbox
    and the webhooks."""
    await asyncio.gather(
        filer(context, wake or asyncio.Event(), interval),
        digester(context),
        deliverer(context, interval),
        webhooks(context, interval),
    )


async def serve(context: Context, roles: Iterable[str], starts_helpers: bool = True) -> None:
    """Run the given roles until SIGINT/SIGTERM; with the web role, also the other web
    processes of ``web.processes`` (unless this is one of them: ``starts_helpers``)."""
    roles = set(roles)
    settings = context.settings
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    tasks: list[asyncio.Task[None]] = []
    wake = asyncio.Event()  # the SMTP server kept mail: the worker files it at once
    spool = Spool(context, on_kept=wake.set)
    smtp_server = None
    if "smtp" in roles:
        smtp_server = await start_smtp_server(settings, ingest_handler(context, spool))
    web_server = None
    helpers: list[multiprocessing.process.BaseProcess] = []
    if "web" in roles:
        from qmail.web.activity_feed import HideFeedTokens
        from qmail.web.app import create_app

        access = logging.getLogger("uvicorn.access")
        if not any(isinstance(found, HideFeedTokens) for found in access.filters):
            access.addFilter(HideFeedTokens())
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
        listening = web_socket(settings)
        tasks.append(asyncio.create_task(web_server.serve(sockets=[listening])))
        if starts_helpers:
            helpers = start_web_helpers(settings)
        log.info(
            "web app on http://%s:%s (%d processes)",
            settings.web.host,
            settings.web.port,
            settings.web.processes,
        )
    worker_task = asyncio.create_task(worker(context, wake)) if "worker" in roles else None
    await stop.wait()
    log.info("shutting down")
    if smtp_server is not None:
        smtp_server.close()
        await smtp_server.wait_closed()
        await spool.close()
    if web_server is not None:
        web_server.should_exit = True
    stop_web_helpers(helpers)
    if worker_task is not None:
        worker_task.cancel()
        tasks.append(worker_task)
    await asyncio.gather(*tasks, return_exceptions=True)


def web_socket(settings: Settings) -> socket.socket:
    """The web app's listening socket.

    With several web processes each binds its own socket to the same port with
    ``SO_REUSEPORT``, and the kernel spreads new connections over them.  The protocol is
    given (``IPPROTO_TCP``): asyncio sets ``TCP_NODELAY`` on a connection only when its
    socket says TCP, and without it each keep-alive answer waits 40 ms for a delayed ACK
    (as with ``uvicorn --workers``, whose sockets say protocol 0).
    """
    host, port = settings.web.host, settings.web.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if settings.web.processes > 1:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        listening.bind((host, port))
    except OSError:
        listening.close()
        raise
    listening.setblocking(False)
    return listening


def start_web_helpers(settings: Settings) -> list[multiprocessing.process.BaseProcess]:
    """The other ``web.processes - 1`` web processes (fresh interpreters: ``spawn``)."""
    spawning = multiprocessing.get_context("spawn")
    helpers: list[multiprocessing.process.BaseProcess] = [
        spawning.Process(target=run_web_helper, args=(settings,), name=f"qmail-web-{n}")
        for n in range(1, settings.web.processes)
    ]
    for helper in helpers:
        helper.start()
    return helpers


def run_web_helper(settings: Settings) -> None:
    """One more web process: the web role only, on the same port; the first process has
    migrated the database and made the signing key."""
    configure_logging()
    with opened_context(settings, create=False) as context:
        asyncio.run(serve(context, ["web"], starts_helpers=False))


def stop_web_helpers(helpers: list[multiprocessing.process.BaseProcess]) -> None:
    for helper in helpers:
        helper.terminate()  # SIGTERM: it stops as the first process does
    for helper in helpers:
        helper.join(timeout=30)
        if helper.is_alive():
            helper.kill()
