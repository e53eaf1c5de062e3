"""Real servers on loopback ports: the SMTP ingest server and the web app under uvicorn.

Tests talk to them with real clients: ``smtplib`` and ``httpx``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import smtplib
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.smtp import SMTP
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from qmail import models, roles
from qmail.config import OutboundSettings, Settings
from qmail.context import Context
from qmail.core.mail import Address
from qmail.inbound.ingest import start_smtp_server
from qmail.inbound.spool import Spool
from qmail.people import get_person
from tests.conftest import TEST_DATABASE_URL, free_port, wait_until


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``same_on_any_database`` check what no database changes (the files a
    wheel carries, a page's layout): the PostgreSQL pass leaves them to the SQLite pass,
    before any of their fixtures is set up."""
    if not TEST_DATABASE_URL:
        return
    skip = pytest.mark.skip(reason="the same on any database: CI runs it in the SQLite pass")
    for item in items:
        if item.get_closest_marker("same_on_any_database"):
            item.add_marker(skip)


class LoopThread:
    """An asyncio event loop in a background thread, to host servers during a test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


@dataclasses.dataclass
class SmtpServer:
    host: str
    port: int
    store: Context

    def client(self) -> smtplib.SMTP:
        return smtplib.SMTP(self.host, self.port, timeout=10)

    def send(
        self,
        raw: bytes,
        to: list[str] | str,
        sender: str = "client@acme.test",
        mail_options: tuple[str, ...] = (),
    ) -> dict:
        """Send ``raw`` through the real server and wait until the worker has filed it;
        returns smtplib's refused recipients."""
        with self.client() as client:
            refused = client.sendmail(sender, to, raw, mail_options)
        self.wait_filed()
        return refused

    def wait_filed(self, timeout: float = 30) -> None:
        """Wait until no kept mail is waiting to be filed."""
        wait_until(lambda: unfiled(self.store.engine) == 0, timeout=timeout)


def unfiled(engine: Engine) -> int:
    """How many raw mails are kept but not filed yet."""
    with Session(engine) as session:
        waiting = select(func.count()).where(
            col(models.RawMail.state).in_(("pending", "processing"))
        )
        return session.exec(waiting).one()


@pytest.fixture
def smtp_server(store: Context, loop_thread: LoopThread) -> Iterator[SmtpServer]:
    """The ingest server on an ephemeral loopback port, backed by the test's store, with
    the worker's filer beside it (as ``qmail serve`` runs them)."""
    with serve_smtp(store, loop_thread) as server:
        yield server


@contextmanager
def serve_smtp(store: Context, loop_thread: LoopThread, **smtp: object) -> Iterator[SmtpServer]:
    """The ingest server and the filer for ``store``, with ``smtp`` settings changed."""
    settings = store.settings.replace(smtp={"host": "127.0.0.1", "port": free_port(), **smtp})
    store = dataclasses.replace(store, settings=settings)
    server, filer, spool, stop = loop_thread.run(start_ingest(store, settings))
    try:
        yield SmtpServer(settings.smtp.host, settings.smtp.port, store)
    finally:
        loop_thread.run(stop_ingest(server, filer, spool, stop), timeout=60)


async def start_ingest(
    store: Context, settings: Settings
) -> tuple[asyncio.Server, asyncio.Task[None], Spool, asyncio.Event]:
    wake, stop = asyncio.Event(), asyncio.Event()
    spool = Spool(store, on_kept=wake.set)
    server = await start_smtp_server(settings, roles.ingest_handler(store, spool))
    filer = asyncio.create_task(roles.filer(store, wake, interval=0.2, stop=stop))
    return server, filer, spool, stop


async def stop_ingest(
    server: asyncio.Server, filer: asyncio.Task[None], spool: Spool, stop: asyncio.Event
) -> None:
    """Stop taking mail, then let the filer finish its round: a thread still filing when
    the test's database goes away would leave a connection open behind it."""
    await close_server(server)
    await spool.close()
    stop.set()
    await filer


async def close_server(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()


@dataclasses.dataclass
class WebServer:
    base_url: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10)


@dataclasses.dataclass
class InProcessWeb:
    """The web app without a socket: Litestar's test client calls it in-process.

    The same ``client(token)`` as ``WebServer``, for the many API and permission tests
    that need no real server; a few tests keep uvicorn (``web_server``) and a browser.
    """

    app: Litestar
    base_url: str = "http://127.0.0.1:8000"

    def client(self, token: str | None = None) -> TestClient[Litestar]:
        client = TestClient(self.app, base_url=self.base_url, timeout=10)
        if token:
            client.headers["Authorization"] = f"Bearer {token}"
        return client


@pytest.fixture
def web_app(store: Context) -> InProcessWeb:
    """``create_app()`` for the test's database, called in-process."""
    from qmail.web.app import create_app

    return InProcessWeb(create_app(store.settings, store.engine))


@pytest.fixture
def web_server(store: Context) -> Iterator[WebServer]:
    """``create_app()`` served by uvicorn on an ephemeral loopback port."""
    with serve_web(store.settings, store.engine) as server:
        yield server


@contextmanager
def serve_web(settings: Settings, engine: Engine) -> Iterator[WebServer]:
    """The web app for ``settings`` on ``engine``, on an ephemeral loopback port."""
    from qmail.web.app import create_app

    port = free_port()
    settings = settings.replace(
        web={"host": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}"}
    )
    app = create_app(settings, engine)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=15)
    try:
        yield WebServer(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(10)


def utcnow() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def team(store: Context) -> dict[str, int]:
    """Alice and Bob, team members known before the client writes (so both triage it)."""
    with Session(store.engine) as session:
        ids = {}
        for email, name in (("alice@example.com", "Alice Admin"), ("bob@example.com", "Bob")):
            person = get_person(session, Address(email, name), datetime(2024, 6, 1, tzinfo=UTC))
            ids[email] = person.id
        session.commit()
    return ids


# --- a relay for outbound mail --------------------------------------------------------


class ScriptedRelay:
    """An aiosmtpd handler answering RCPT and DATA from scripts (then 250), recording mail."""

    def __init__(self, rcpt: tuple[str, ...] = (), data: tuple[str, ...] = ()) -> None:
        self.rcpt, self.data = list(rcpt), list(data)
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        reply = self.rcpt.pop(0) if self.rcpt else "250 2.1.5 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope) -> str:
        reply = self.data.pop(0) if self.data else "250 2.0.0 Queued"
        if reply.startswith("250"):
            received = (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            self.received.append(received)
        return reply


@pytest.fixture
def relay(loop_thread: LoopThread):
    """Starts a ScriptedRelay on a free loopback port; returns the transport's settings."""
    servers = []

    def start(handler: ScriptedRelay, **smtp_options: object) -> OutboundSettings:
        port = free_port()

        async def listen():
            loop = asyncio.get_running_loop()
            factory = lambda: SMTP(handler, hostname="relay.test", **smtp_options)  # noqa: E731
            return await loop.create_server(factory, "127.0.0.1", port)

        servers.append(loop_thread.run(listen()))
        return OutboundSettings(transport="smtp", host="127.0.0.1", port=port)

    yield start
    for server in servers:
        loop_thread.run(close_server(server))
