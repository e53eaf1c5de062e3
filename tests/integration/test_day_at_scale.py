"""Issue 11's acceptance, as a team member lives it, in a store of 100,000 messages.

The store is built as ``bench/scale.py`` builds its databases (``bench/scale_data.py``: a
busy tracker's people, tasks, hidden branches, tags and events, straight into the real
schema); then a client writes in through the real SMTP server, and Alice, on the team,
in a real chromium: finds the task from the inbox's search box by a word of the client's
mail, filters the inbox by its tag and then by its assignee, assigns it to herself,
answers with a file through the reply box, and the real outbox worker hands the client a
mail with the file intact.  Once at a laptop's width, once at a phone's (390 px), each
step screenshotted and checked for sideways scrolling and by axe-core.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import re
from email.message import EmailMessage

import pytest
from sqlalchemy import text

from bench import scale_data
from qmail import roles
from qmail.context import Context
from tests.conftest import wait_until
from tests.integration.browser import LAPTOP, PHONE, launched, look_at, shots_dir, signed_in_page
from tests.integration.conftest import ScriptedRelay, SmtpServer, WebServer
from tests.integration.test_auth import magic_link
from tests.integration.test_ingest import INTAKE
from tests.integration.test_threads import person_id

MESSAGES = 100_000
ALICE = f"alice@{scale_data.TEAM_DOMAIN}"
SCAN = b"%PDF-1.4\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"


@pytest.fixture
def busy_store(store: Context) -> Context:
    """The test's database, holding a busy tracker's 100,000 messages; its team by role."""
    scale_data.build(store.engine, MESSAGES)
    scale_data.mark_built(store.engine)
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE person SET role = 'team' WHERE email LIKE :team"),
            {"team": f"%@{scale_data.TEAM_DOMAIN}"},
        )
    return store


def client_mail(sender: str, subject: str, text: str) -> bytes:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, INTAKE, subject
    mail["Message-ID"] = f"<{sender.split('@')[0]}-1@client.test>"
    mail.set_content(text)
    return bytes(mail)


def shown(page) -> list[int]:
    """The task numbers of the inbox rows, in order."""
    return [
        int(text.split()[0].lstrip("#")) for text in page.locator("a[data-open]").all_inner_texts()
    ]


def files_of(raw: bytes) -> dict[str, bytes]:
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    return {part.get_filename(): part.get_content() for part in mail.iter_attachments()}


def work_the_task(page, base_url: str, word: str, number: int, folder, name: str, scan) -> None:
    """Alice's round: search, filter by tag, assign, filter by assignee, answer with a file."""
    page.goto(base_url + "/")
    search = page.get_by_role("searchbox", name="Search the inbox")
    search.fill(word)
    search.press("Enter")
    page.wait_for_url(re.compile(rf"/\?q={word}$"))
    assert shown(page) == [number]
    look_at(page, folder, f"{name}-found")
    page.locator("a[data-open]").first.click()
    page.wait_for_url(re.compile(rf"/tasks/{number}$"))
    page.select_option("#assignee", label="Alice")
    page.get_by_role("button", name="Assign").click()
    page.wait_for_selector("#assignee option[selected]:has-text('Alice')", state="attached")
    page.goto(base_url + "/")
    row = page.locator("tr", has=page.locator(f'a[href="/tasks/{number}"]'))
    row.get_by_role("link", name="renewals", exact=True).click()
    page.wait_for_url(re.compile(r"/\?tag=renewals$"))
    assert number in shown(page)
    page.locator("tr", has=page.locator(f'a[href="/tasks/{number}"]')).get_by_role(
        "link", name="Alice", exact=True
    ).click()
    page.wait_for_url(re.compile(r"/\?tag=renewals&assignee=alice%40team\.test$"))
    assert number in shown(page)
    look_at(page, folder, f"{name}-filtered")
    page.goto(f"{base_url}/tasks/{number}")
    page.fill("#reply-text", f"The signed renewal for {word} is attached.")
    page.set_input_files("#reply-files", str(scan))
    page.locator("form.reply button[type=submit]").click()
    page.wait_for_url(re.compile(rf"/tasks/{number}#message-\d+$"))
    look_at(page, folder, f"{name}-answered")


def test_a_day_of_work_in_a_store_of_100k_messages_on_a_laptop_and_a_phone(
    busy_store: Context,
    smtp_server: SmtpServer,
    web_server: WebServer,
    relay,
    loop_thread,
    request,
    tmp_path,
):
    folder = shots_dir(request)
    scan = tmp_path / "renewal.pdf"
    scan.write_bytes(SCAN)
    handler = ScriptedRelay()
    delivering = dataclasses.replace(
        busy_store,
        settings=busy_store.settings.replace(outbound=dataclasses.asdict(relay(handler))),
    )
    rounds = [("laptop", LAPTOP, "quetzalcoatl", "dana"), ("phone", PHONE, "xylophonist", "emil")]
    with launched() as browser:
        for name, viewport, word, client in rounds:
            sender = f"{client}@client.test"
            smtp_server.send(
                client_mail(sender, "[renewals] Licence renewal", f"Please renew {word}."),
                INTAKE,
                sender,
            )
            with busy_store.engine.connect() as connection:
                number = connection.execute(text("SELECT max(number) FROM task")).scalar_one()
            link = magic_link(busy_store, web_server, person_id(busy_store, ALICE))
            page = signed_in_page(browser, link, viewport)
            work_the_task(page, web_server.base_url, word, number, folder, name, scan)
            page.context.close()

    async def start() -> asyncio.Task[None]:
        return asyncio.create_task(roles.deliverer(delivering, interval=0.05))

    worker = loop_thread.run(start())
    clients = {"dana@client.test", "emil@client.test"}

    def answered() -> dict[str, bytes]:
        return {
            rcpts[0]: raw
            for _, rcpts, raw in handler.received
            if rcpts[0] in clients and b"renewal.pdf" in raw
        }

    try:
        wait_until(lambda: set(answered()) == clients, 60)
    finally:
        loop_thread.loop.call_soon_threadsafe(worker.cancel)
    for client, raw in answered().items():
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        word = "quetzalcoatl" if client.startswith("dana") else "xylophonist"
        assert (
            f"The signed renewal for {word} is attached." in mail.get_body(("plain",)).get_content()
        )  # type: ignore[union-attr]
        assert files_of(raw) == {"renewal.pdf": SCAN}
