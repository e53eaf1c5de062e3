"""The contact widget on another site's page, in a real browser, and its mail round trip.

A company's website is a page served by ``http.server`` on its own loopback port (another
origin), embedding qmail's widget with one ``<script>`` tag; qmail runs under uvicorn with
that origin in ``intake.allowed_origins``.  The visitor writes in the widget, the
confirmation request goes out through the worker's SMTP delivery to a relay on loopback,
the visitor follows the link in the mail they got, and the task is there.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlmodel import Session, select

from qmail import models
from qmail.context import Context
from qmail.outbound import delivery
from tests.integration.browser import LAPTOP, PHONE, launched, look_at, shots_dir
from tests.integration.conftest import LoopThread, ScriptedRelay, serve_web

SENT = "Thank you. Please confirm your address"
DONE = "Thank you, your message is with qmail"
CONFIRM_LINK = re.compile(r"https?://\S+/intake/confirm/\S+")
SITE_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>ACME Widgets</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>ACME Widgets</h1><p>We make widgets.</p>
<script src="{qmail}/static/widget.js" data-title="Write to ACME" async></script>
</main></body>
</html>
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclasses.dataclass
class Site:
    """A company's website: ``folder`` served at ``origin``."""

    origin: str
    folder: Path

    def embed(self, qmail: str) -> str:
        """Its page with qmail's widget (at ``qmail``); the page's address."""
        (self.folder / "index.html").write_text(SITE_PAGE.format(qmail=qmail), encoding="utf-8")
        return f"{self.origin}/index.html"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A company's website on an ephemeral loopback port: another origin than qmail's."""
    folder = tmp_path / "site"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Site(f"http://127.0.0.1:{server.server_address[1]}", folder)
    server.shutdown()
    server.server_close()
    thread.join(5)


def deliver(
    store: Context, loop_thread: LoopThread, relay: ScriptedRelay, outbound: object
) -> list[bytes]:
    """Run the worker's delivery once through the relay; the mails it received.

    In the relay's event loop: Playwright's sync API keeps one running in the test's thread.
    """
    settings = store.settings.replace(outbound=vars(outbound))
    transport = delivery.transport_for(settings)
    loop_thread.run(delivery.send_pending(store.engine, settings, transport))
    return [raw for _, _, raw in relay.received]


def test_widget_on_another_site_sends_a_message_that_opens_a_task_once_confirmed(
    store, team, site, relay, loop_thread, request
):
    origin = site.origin
    settings = store.settings.replace(intake={"enabled": True, "allowed_origins": (origin,)})
    sink = ScriptedRelay()
    outbound = relay(sink)
    folder = shots_dir(request)
    with serve_web(settings, store.engine) as web, launched() as browser:
        address = site.embed(web.base_url)
        phone = browser.new_page(viewport=PHONE)  # type: ignore[arg-type]
        phone.goto(address)
        phone.get_by_role("button", name="Send").wait_for()
        look_at(phone, folder, "widget")
        phone.close()

        visitor = browser.new_page(viewport=LAPTOP)  # type: ignore[arg-type]
        visitor.goto(address)
        assert visitor.get_by_role("heading", name="Write to ACME").is_visible()
        visitor.get_by_label("Your email address").fill("dana@client.test")
        visitor.get_by_label("Your name (optional)").fill("Dana Visitor")
        visitor.get_by_label("Subject").fill("Quote for 40 licences")
        visitor.get_by_label("Message").fill("Hello, could you send us a quote?")
        look_at(visitor, folder, "widget-filled")
        visitor.get_by_role("button", name="Send").click()
        visitor.get_by_text(SENT).wait_for()
        assert visitor.get_by_role("button", name="Send").count() == 0
        look_at(visitor, folder, "widget-sent")

        (raw,) = deliver(store, loop_thread, sink, outbound)
        mail = message_from_bytes(raw, policy=policy.default)
        assert mail["To"] == "dana@client.test"
        text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        assert "could you send us a quote" not in text
        link = CONFIRM_LINK.search(text)
        assert link is not None and link.group(0).startswith(web.base_url)

        visitor.goto(link.group(0))
        look_at(visitor, folder, "confirm")
        visitor.get_by_role("button", name="Confirm and send").click()
        visitor.get_by_text(DONE).wait_for()
        look_at(visitor, folder, "confirmed")

    with Session(store.engine) as session:
        (task,) = session.exec(select(models.Task)).all()
        (message,) = session.exec(select(models.Message)).all()
        acks = session.exec(select(models.Outbox).where(models.Outbox.kind == "ack")).all()
    assert task.title == "Quote for 40 licences"
    assert message.text == "Hello, could you send us a quote?"
    assert [ack.recipient for ack in acks] == ["dana@client.test"]


def test_widget_on_a_site_not_allowed_says_it_could_not_send(store, site, request):
    settings = store.settings.replace(intake={"enabled": True, "allowed_origins": ()})
    with serve_web(settings, store.engine) as web, launched() as browser:
        address = site.embed(web.base_url)
        visitor = browser.new_page(viewport=LAPTOP)  # type: ignore[arg-type]
        visitor.goto(address)
        visitor.get_by_label("Your email address").fill("dana@client.test")
        visitor.get_by_label("Message").fill("Hello")
        visitor.get_by_role("button", name="Send").click()
        visitor.get_by_text("Your message could not be sent. Please try again later.").wait_for()
    with Session(store.engine) as session:
        assert session.exec(select(models.IntakeSubmission)).all() == []


def test_the_contact_page_on_our_own_site(store, request):
    settings = store.settings.replace(intake={"enabled": True})
    folder = shots_dir(request)
    with serve_web(settings, store.engine) as web, launched() as browser:
        for viewport in (LAPTOP, PHONE):
            page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
            page.goto(f"{web.base_url}/intake")
            look_at(page, folder, "intake")
        page.get_by_label("Your email address").fill("dana@client.test")
        page.get_by_label("Message").fill("Hello from the page")
        page.get_by_role("button", name="Send").click()
        page.get_by_text(SENT).wait_for()
        look_at(page, folder, "intake-sent")
