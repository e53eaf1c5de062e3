"""Webhooks: the team registers URLs on ``/webhooks``; the worker POSTs every event to them,
signed, retried after a failure, logged; hidden branches reach only internal ones.

The world is ``test_pages``'s (Carol's mail opened task 1; Alice and Bob are the team),
changed through the real pages; a receiver on a loopback port (``webhook_receiver``)
checks each signature with the secret the page showed its creator.  The worker's two
steps, fanning events out and POSTing, run as the worker runs them, with a clock of the
test's where a retry is due later.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import Session, col, select

from qmail import models, roles
from qmail.auth.api_tokens import create_api_token
from qmail.config import Settings
from qmail.context import Context
from qmail.core.mail import Address
from qmail.db import create_db_engine, session_scope
from qmail.outbound import webhook_delivery, webhook_fanout, webhooks
from qmail.people import get_person
from qmail.threads.tasks import record_event
from tests.conftest import free_port, wait_until
from tests.integration import test_pages
from tests.integration.browser import VIEWPORTS, launched, look_at, shots_dir, signed_in_page
from tests.integration.conftest import WebServer, serve_web
from tests.integration.test_auth import csrf_token, magic_link
from tests.integration.test_pages import (
    ALICE,
    BOB,
    CAROL,
    SECRET,
    open_hidden_branch,
    post_form,
    signed_in,
)
from tests.integration.test_threads import person_id
from tests.integration.webhook_receiver import receiving

CARA = "cara@example.com"
world = test_pages.world  # the fixture: task 1 from Carol's mail, Alice and Bob on the team
SECRET_SHOWN = re.compile(r'<code class="secret">(whsec_[\w-]+)</code>')


def register(client: httpx.Client, url: str, internal: bool = False) -> httpx.Response:
    fields = {"url": url, **({"internal": "1"} if internal else {})}
    return post_form(client, "/webhooks", fields, page="/webhooks")


def hooks(store: Context) -> list[models.Webhook]:
    with Session(store.engine) as session:
        return list(session.exec(select(models.Webhook).order_by(col(models.Webhook.id))).all())


def deliveries(store: Context, webhook_id: int) -> list[models.WebhookDelivery]:
    with Session(store.engine) as session:
        statement = select(models.WebhookDelivery).where(
            models.WebhookDelivery.webhook_id == webhook_id
        )
        return list(session.exec(statement.order_by(col(models.WebhookDelivery.id))).all())


def fan_out(store: Context, settings: Settings | None = None) -> int:
    """The worker's first step: queue a delivery of each new event for each webhook."""
    gaps = webhook_fanout.Gaps()
    return webhook_fanout.fan_out_all(store.engine, settings or store.settings, gaps)


def deliver(store: Context, now: datetime) -> webhook_delivery.Counts:
    """The worker's second step, at ``now``: POST what is due."""
    return asyncio.run(webhook_delivery.send_pending(store.engine, now_fn=lambda: now))


def shown_secret(page: httpx.Response) -> str:
    match = SECRET_SHOWN.search(page.text)
    assert match, "the page shows no secret"
    return match.group(1)


def add_team_member(store: Context, email: str) -> None:
    with session_scope(store.engine) as session:
        get_person(session, Address(email, email.split("@")[0].title()), datetime.now(UTC))


def test_receiver_answering_500_gets_the_delivery_again_and_the_log_shows_it(world, web_server):
    with receiving(script=(500,)) as receiver, signed_in(world, web_server, ALICE) as alice:
        assert register(alice, receiver.url).status_code == 303
        receiver.secret = shown_secret(alice.get("/webhooks"))
        reply = {"branch_id": "1", "text": "The corrected invoice <b>is</b> attached."}
        assert post_form(alice, "/tasks/1/messages", reply).status_code == 303
        assert fan_out(world) >= 1
        now = datetime.now(UTC)
        assert deliver(world, now) == webhook_delivery.Counts(retried=1)
        (webhook,) = hooks(world)
        (row,) = deliveries(world, webhook.id)
        assert (row.state, row.attempts, row.last_status_code) == ("pending", 1, 500)
        assert row.last_error == "HTTP 500 receiver trouble"
        assert row.next_attempt_at == now + timedelta(seconds=30)
        assert deliver(world, now + timedelta(seconds=29)) == webhook_delivery.Counts()
        assert deliver(world, now + timedelta(seconds=31)) == webhook_delivery.Counts(sent=1)
        log = alice.get("/webhooks").text
    first, second = receiver.of_kind("message")
    assert (first.answered, second.answered) == (500, 200)
    assert first.signed and second.signed
    assert first.body == second.body
    assert first.headers["x-qmail-delivery"] == second.headers["x-qmail-delivery"] == str(row.id)
    assert first.headers["x-qmail-event"] == "message"
    payload = second.payload
    message_id = payload["message"]["id"]
    assert payload["message"]["text"] == "The corrected invoice <b>is</b> attached."
    assert payload["task"] == {
        "number": 1,
        "title": "Invoice 2024-17 is missing a line",
        "url": f"{world.settings.web.base_url}/tasks/1",
    }
    assert payload["author"] == {"email": ALICE, "name": "Alice Admin"}
    assert payload["url"] == f"{world.settings.web.base_url}/tasks/1#message-{message_id}"
    assert (payload["kind"], payload["branch"]["hidden"]) == ("message", False)
    (sent,) = deliveries(world, webhook.id)
    assert (sent.state, sent.attempts, sent.last_status_code, sent.last_error) == (
        "sent",
        2,
        200,
        "",
    )
    assert f'id="delivery-{row.id}"' in log and "HTTP 200" in log
    assert "The corrected invoice" not in log  # the log shows states, not payloads


def test_a_receiver_still_failing_after_the_last_attempt_is_given_up(world, web_server):
    with receiving(script=(503,) * 20) as receiver, signed_in(world, web_server, ALICE) as alice:
        assert register(alice, receiver.url).status_code == 303
        (webhook,) = hooks(world)
        receiver.secret = webhook.secret
        with session_scope(world.engine) as session:
            webhook_row = session.get(models.Webhook, webhook.id)
            assert webhook_row is not None
            queued = queue_a_test(session, webhook_row)
        now = datetime.now(UTC)
        for _ in range(webhook_delivery.MAX_ATTEMPTS):
            deliver(world, now)
            now += timedelta(hours=2)
        page = alice.get("/webhooks").text
    (row,) = deliveries(world, webhook.id)
    assert row.id == queued
    assert (row.state, row.attempts, row.last_status_code) == ("failed", 12, 503)
    assert row.last_error == "gave up after 12 attempts: HTTP 503 receiver trouble"
    assert len(receiver.received) == 12 and all(item.signed for item in receiver.received)
    assert "status-failed" in page and "gave up after 12 attempts" in page


def queue_a_test(session: Session, webhook: models.Webhook) -> int:
    row = webhooks.queue_test(session, webhook, datetime.now(UTC))
    session.flush()
    assert row.id is not None
    return row.id


def test_hidden_branch_events_reach_only_internal_webhooks_of_its_members(world, web_server):
    add_team_member(world, CARA)
    with signed_in(world, web_server, ALICE) as alice:
        assert register(alice, "https://public.example.net/hook").status_code == 303
        assert (
            register(alice, "https://internal.example.net/hook", internal=True).status_code == 303
        )
    with signed_in(world, web_server, CARA) as cara:
        assert register(cara, "https://cara.example.net/hook", internal=True).status_code == 303
    public, internal, caras = hooks(world)
    with signed_in(world, web_server, ALICE) as alice:
        assert open_hidden_branch(alice, world).status_code == 303  # Alice and Bob; SECRET
        tags = {"add": "discount"}
        assert post_form(alice, "/tasks/1/tags", tags).status_code == 303
        reply = {"branch_id": "1", "text": "We are on it."}
        assert post_form(alice, "/tasks/1/messages", reply).status_code == 303
    fan_out(world)
    kinds = {hook.id: [row.kind for row in deliveries(world, hook.id)] for hook in hooks(world)}
    payloads = {
        hook.id: " ".join(r.payload for r in deliveries(world, hook.id)) for hook in hooks(world)
    }
    assert kinds[public.id] == ["message"]
    assert SECRET not in payloads[public.id] and "discount" not in payloads[public.id]
    assert kinds[internal.id] == ["branch_opened", "message", "tag", "message"]
    assert SECRET in payloads[internal.id] and "discount" in payloads[internal.id]
    assert kinds[caras.id] == ["tag", "message"]  # Cara is not in the hidden branch
    assert SECRET not in payloads[caras.id]
    with signed_in(world, web_server, CARA) as cara:
        page = cara.get("/webhooks").text
    assert page.count('id="delivery-') == 1 + 2 + 2  # the hidden branch's two are not listed
    assert page.count('<code class="secret">') == 1  # her own webhook's


def test_a_webhook_carries_nothing_once_its_creator_leaves_the_team(world, web_server):
    with signed_in(world, web_server, ALICE) as alice:
        assert (
            register(alice, "https://internal.example.net/hook", internal=True).status_code == 303
        )
    with session_scope(world.engine) as session:
        alice_row = session.get(models.Person, person_id(world, ALICE))
        assert alice_row is not None
        alice_row.role = "external"
        task = session.exec(select(models.Task)).one()
        record_event(session, task, "close", alice_row, datetime.now(UTC))
    assert fan_out(world) == 1
    (webhook,) = hooks(world)
    assert deliveries(world, webhook.id) == []


def test_the_webhooks_page_is_for_the_team_only(world, web_server):
    with signed_in(world, web_server, ALICE) as alice:
        assert register(alice, "https://hooks.example.net/a").status_code == 303
        assert 'href="/webhooks"' in alice.get("/").text
    (webhook,) = hooks(world)
    with signed_in(world, web_server, CAROL) as carol:
        assert 'href="/webhooks"' not in carol.get("/").text
        assert carol.get("/webhooks").status_code == 403
        token = csrf_token(carol.get("/settings"))
        for path, fields in (
            ("/webhooks", {"url": "https://carol.example/steal"}),
            (f"/webhooks/{webhook.id}/test", {}),
            (f"/webhooks/{webhook.id}/active", {"active": "0"}),
            (f"/webhooks/{webhook.id}/delete", {}),
        ):
            answer = carol.post(path, data={**fields, "_csrf_token": token})
            assert answer.status_code == 403, path
    with web_server.client() as stranger:
        assert stranger.get("/webhooks").headers["location"] == "/login"
    assert [(hook.url, hook.active) for hook in hooks(world)] == [
        ("https://hooks.example.net/a", True)
    ]
    assert deliveries(world, webhook.id) == []


def test_a_form_without_its_csrf_token_is_refused(world, web_server):
    with signed_in(world, web_server, ALICE) as alice:
        alice.get("/webhooks")
        assert alice.post("/webhooks", data={"url": "https://x.example/"}).status_code == 403
    assert hooks(world) == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.net/",
        "javascript:alert(1)",
        "https://user:password@hooks.example.net/",
        "https:///no-host",
        "http://hooks.example.net:port/",
        "https://hooks.example.net/a b",
        "",
    ],
)
def test_urls_that_are_not_plain_http_are_refused(world, web_server, url):
    with signed_in(world, web_server, ALICE) as alice:
        answer = register(alice, url)
    assert answer.status_code == 400
    assert hooks(world) == []


def test_switching_off_stops_deliveries_and_switching_on_starts_from_now(world, web_server):
    with signed_in(world, web_server, ALICE) as alice:
        assert register(alice, "https://hooks.example.net/a").status_code == 303
        (webhook,) = hooks(world)
        off = post_form(alice, f"/webhooks/{webhook.id}/active", {"active": "0"}, "/webhooks")
        assert off.status_code == 303
        assert (
            post_form(alice, "/tasks/1/messages", {"branch_id": "1", "text": "one"}).status_code
            == 303
        )
        fan_out(world)
        assert deliveries(world, webhook.id) == []
        on = post_form(alice, f"/webhooks/{webhook.id}/active", {"active": "1"}, "/webhooks")
        assert on.status_code == 303
        assert (
            post_form(alice, "/tasks/1/messages", {"branch_id": "1", "text": "two"}).status_code
            == 303
        )
        fan_out(world)
        assert [row.kind for row in deliveries(world, webhook.id)] == ["message"]
        assert '"text":"two"' in deliveries(world, webhook.id)[0].payload
        gone = post_form(alice, f"/webhooks/{webhook.id}/delete", {}, "/webhooks")
        assert gone.status_code == 303
    assert hooks(world) == []


def test_two_workers_racing_post_each_event_exactly_once(world, web_server):
    with receiving() as receiver, signed_in(world, web_server, ALICE) as alice:
        assert register(alice, receiver.url).status_code == 303
        receiver.secret = shown_secret(alice.get("/webhooks"))
        with session_scope(world.engine) as session:
            task = session.exec(select(models.Task)).one()
            alice_row = session.get(models.Person, person_id(world, ALICE))
            for number in range(120):
                record_event(session, task, "tag", alice_row, datetime.now(UTC), None, f"t{number}")
        # internal kinds go to internal webhooks only: make this one internal
        with session_scope(world.engine) as session:
            (webhook,) = session.exec(select(models.Webhook)).all()
            webhook.internal = True
        errors: list[BaseException] = []
        sent_by: list[int] = []

        def work(settings: Settings) -> None:
            engine = create_db_engine(settings)  # each worker its own pool, as processes have
            gaps, sent = webhook_fanout.Gaps(), 0
            try:
                for _ in range(40):
                    webhook_fanout.fan_out_all(engine, settings, gaps)
                    sent += asyncio.run(webhook_delivery.send_pending(engine, limit=7)).sent
                    if len(receiver.received) >= 120:
                        break
            except BaseException as error:
                errors.append(error)
            finally:
                sent_by.append(sent)
                engine.dispose()

        workers = [threading.Thread(target=work, args=(world.settings,)) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
    assert errors == []
    assert sum(sent_by) == 120 and min(sent_by) > 0  # both took part
    details = sorted(item.payload["description"] for item in receiver.received)
    assert details == sorted(f"tagged it t{number}" for number in range(120))
    assert all(item.signed for item in receiver.received)
    rows = deliveries(world, webhook.id)
    assert len(rows) == 120
    assert {(row.state, row.attempts) for row in rows} == {("sent", 1)}


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_team_member_adds_a_webhook_and_sends_a_test_in_a_browser(
    world, web_server: WebServer, loop_thread, request, viewport
):
    folder = shots_dir(request)
    link = magic_link(world, web_server, person_id(world, ALICE))
    with receiving() as receiver, launched() as browser:
        page = signed_in_page(browser, link, VIEWPORTS[viewport])
        page.get_by_role("link", name="Webhooks").click()
        page.get_by_label("URL (http or https)").fill(receiver.url)
        page.get_by_label("Internal").check()
        look_at(page, folder, "empty")
        page.get_by_role("button", name="Add webhook").click()
        page.wait_for_url(re.compile(r"/webhooks#webhook-\d+$"))
        page.get_by_text("Show the signing secret").click()
        receiver.secret = page.locator("code.secret").inner_text()
        assert receiver.secret.startswith("whsec_")
        stop = asyncio.Event()

        async def start() -> asyncio.Task[None]:
            return asyncio.create_task(roles.webhooks(world, interval=0.05, stop=stop))

        task = loop_thread.run(start())
        try:
            page.get_by_role("button", name="Send test").click()
            page.wait_for_url(re.compile(r"/webhooks#webhook-\d+$"))
            (test,) = wait_until(lambda: receiver.of_kind("test"), timeout=15)
            wait_until(lambda: deliveries(world, hooks(world)[0].id)[0].state == "sent")
        finally:
            loop_thread.loop.call_soon_threadsafe(stop.set)
            loop_thread.run(_finished(task), timeout=20)
        assert test.signed and test.path == "/hook"
        assert test.payload["webhook_id"] == hooks(world)[0].id
        page.reload()
        row = page.locator("table.deliveries tbody tr")
        assert row.count() == 1
        assert "sent" in row.inner_text() and "HTTP 200" in row.inner_text()
        look_at(page, folder, "sent")


async def _finished(task: asyncio.Task[None]) -> None:
    await asyncio.wait_for(task, 15)


def test_allowed_hosts_limit_where_webhooks_may_post(world):
    allowed = ("hooks.example.net", ".corp.test")
    settings = world.settings.replace(webhooks={"allowed_hosts": allowed})
    store = dataclasses.replace(world, settings=settings)
    with serve_web(settings, world.engine) as web, signed_in(store, web, ALICE) as alice:
        refused = register(alice, "http://127.0.0.1:9/hook")
        assert refused.status_code == 400
        assert "127.0.0.1 is not in webhooks.allowed_hosts" in refused.text
        for url in ("https://hooks.example.net/a", "https://corp.test/b", "https://ci.corp.test/c"):
            assert register(alice, url).status_code == 303, url
        assert register(alice, "https://evilcorp.test/d").status_code == 400
    assert [hook.url.split("/")[2] for hook in hooks(world)] == [
        "hooks.example.net",
        "corp.test",
        "ci.corp.test",
    ]
    narrower = ("hooks.example.net",)  # the operator removes .corp.test later
    with session_scope(world.engine) as session:
        for hook in session.exec(select(models.Webhook)).all():
            webhooks.queue_test(session, hook, datetime.now(UTC))
    counts = asyncio.run(webhook_delivery.send_pending(world.engine, narrower))
    assert counts.failed == 2 and counts.total == 3
    refusals = {
        hook.url: (row.state, row.attempts, row.last_error)
        for hook in hooks(world)
        for row in deliveries(world, hook.id)
    }
    assert refusals["https://corp.test/b"] == (
        "failed",
        1,
        "the host is not in webhooks.allowed_hosts",
    )


def test_an_event_committed_late_behind_a_newer_one_is_still_delivered(world, web_server):
    """On PostgreSQL event 8 may commit after event 9: the cursor waits at the gap for
    ``GAP_WAIT``, and only then gives the missing id up (a rolled-back transaction)."""
    with signed_in(world, web_server, ALICE) as alice:
        assert register(alice, "https://hooks.example.net/a").status_code == 303
    (webhook,) = hooks(world)
    start, now = webhook.last_event_id, datetime.now(UTC)

    def write_event(event_id: int, detail: str) -> None:
        with session_scope(world.engine) as session:
            task = session.exec(select(models.Task)).one()
            event = models.Event(id=event_id, task_id=task.id, kind="close", detail=detail)
            session.add(event)

    def fan_out_at(moment: datetime) -> list[str]:
        with Session(world.engine, expire_on_commit=False) as session:
            webhook_fanout.fan_out(session, webhook.id, world.settings, moment, gaps)
        return [json.loads(row.payload)["description"] for row in deliveries(world, webhook.id)]

    gaps = webhook_fanout.Gaps()
    write_event(start + 2, "second")
    assert fan_out_at(now) == []  # start + 1 may still be on its way
    write_event(start + 1, "first")
    assert fan_out_at(now + timedelta(seconds=1)) == ["closed it first", "closed it second"]
    write_event(start + 4, "fourth")  # start + 3 never comes
    assert fan_out_at(now + timedelta(seconds=2)) == ["closed it first", "closed it second"]
    late = now + timedelta(seconds=2) + webhook_fanout.GAP_WAIT
    assert fan_out_at(late)[-1] == "closed it fourth"


def test_a_dead_receiver_costs_one_attempt_a_round_and_holds_up_no_other(world, web_server):
    with receiving() as healthy, signed_in(world, web_server, ALICE) as alice:
        dead_url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
        assert register(alice, dead_url).status_code == 303
        assert register(alice, healthy.url).status_code == 303
        dead, alive = hooks(world)
        healthy.secret = alive.secret
        with session_scope(world.engine) as session:
            for hook in (dead, alive):
                for _ in range(3):
                    webhooks.queue_test(session, hook, datetime.now(UTC))
        now = datetime.now(UTC)
        counts = deliver(world, now)
    assert counts == webhook_delivery.Counts(sent=3, retried=3)
    assert len(healthy.received) == 3 and all(item.signed for item in healthy.received)
    first, *rest = deliveries(world, dead.id)
    assert (first.state, first.attempts, first.last_status_code) == ("pending", 1, None)
    assert first.last_error.startswith("ConnectError")
    assert first.next_attempt_at == now + timedelta(seconds=30)
    assert [(row.attempts, row.next_attempt_at) for row in rest] == [(0, first.next_attempt_at)] * 2


def api_token(store: Context, email: str) -> str:
    with Session(store.engine) as session:
        person = session.exec(select(models.Person).where(models.Person.email == email)).one()
        token = create_api_token(session, person)
        session.commit()
    return token


def test_an_integration_registers_itself_through_the_json_api(world, web_server):
    with web_server.client(api_token(world, ALICE)) as alice:
        made = alice.post("/api/webhooks", json={"url": "https://crm.example.net/qmail"})
        assert made.status_code == 201, made.text
        webhook = made.json()
        assert webhook["secret"].startswith("whsec_")
        assert (webhook["url"], webhook["internal"], webhook["active"]) == (
            "https://crm.example.net/qmail",
            False,
            True,
        )
        queued = alice.post(f"/api/webhooks/{webhook['id']}/test")
        assert queued.status_code == 202
        changed = alice.patch(f"/api/webhooks/{webhook['id']}", json={"active": False})
        assert changed.json()["active"] is False
        (listed,) = alice.get("/api/webhooks").json()
        assert [line["kind"] for line in listed["deliveries"]] == ["test"]
        assert listed["deliveries"][0]["id"] == queued.json()["delivery_id"]
        bad = alice.post("/api/webhooks", json={"url": "file:///etc/passwd"})
        assert bad.status_code == 400
        assert bad.json() == {"error": "the URL must start with http:// or https://"}
    with web_server.client(api_token(world, BOB)) as bob:
        (seen_by_bob,) = bob.get("/api/webhooks").json()
        assert seen_by_bob["secret"] is None  # Alice's
    with web_server.client(api_token(world, CAROL)) as carol:
        assert carol.get("/api/webhooks").status_code == 403
        refused = carol.post("/api/webhooks", json={"url": "https://carol.example/x"})
        assert refused.status_code == 403
        assert carol.delete(f"/api/webhooks/{webhook['id']}").status_code == 403
    with web_server.client(api_token(world, ALICE)) as alice:
        assert alice.delete(f"/api/webhooks/{webhook['id']}").status_code == 204
        assert alice.get("/api/webhooks").json() == []
