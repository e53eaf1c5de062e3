"""The server-rendered pages: the task page and its forms, contacts, activity, the outbox.

The world comes in through the real SMTP server: Carol (acme.test, a client) opens task 1
and the team, Alice and Bob, take part in it (``team`` fixture).  Pages are read over real
uvicorn + httpx, signed in the way a person is: a magic link, then "Sign in".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage

import httpx
import pytest
from sqlmodel import Session, col, select

from qmail import models
from qmail.context import Context
from qmail.core.mail import Address
from qmail.db import session_scope
from qmail.outbound.outbox import mail_text
from qmail.people import get_person
from tests.conftest import eml_bytes, expected
from tests.integration.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.integration.conftest import SmtpServer, WebServer
from tests.integration.test_auth import csrf_token, magic_link, sign_in
from tests.integration.test_ingest import FIRST, INTAKE, messages
from tests.integration.test_threads import address, api_task, branches, person_id, tags

ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@acme.test"
HOSTILE = "<script>alert(1)</script>"
SECRET = "Between us: the discount stays internal"


@pytest.fixture
def world(smtp_server: SmtpServer, web_server: WebServer, team: dict[str, int]) -> Context:
    """Task 1, opened by Carol's mail; Alice and Bob take part in it."""
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender=CAROL)
    return smtp_server.store


@contextmanager
def signed_in(store: Context, web_server: WebServer, email: str) -> Iterator[httpx.Client]:
    """A browser-like client with ``email``'s session cookie."""
    with web_server.client() as client:
        answer = sign_in(client, magic_link(store, web_server, person_id(store, email)))
        assert answer.status_code == 303, answer.text
        yield client


def post_form(
    client: httpx.Client, url: str, fields: dict, page: str = "/tasks/1"
) -> httpx.Response:
    """Submit a form the way the page does: with the CSRF token the page carries."""
    token = csrf_token(client.get(page))
    return client.post(url, data={**fields, "_csrf_token": token})


def open_hidden_branch(client: httpx.Client, store: Context, **extra: object) -> httpx.Response:
    """Alice's form: a hidden branch with Bob, from Carol's first message."""
    first = messages(store)[0]
    fields = {"message_id": str(first.id), "member": [str(person_id(store, BOB))], "text": SECRET}
    return post_form(client, "/tasks/1/branches", {**fields, **extra})


def outbox_rows(store: Context) -> list[models.Outbox]:
    with Session(store.engine) as session:
        statement = select(models.Outbox).order_by(col(models.Outbox.id))
        return list(session.exec(statement).all())


def event_kinds(store: Context) -> list[tuple[str, str]]:
    with Session(store.engine) as session:
        statement = select(models.Event.kind, models.Event.detail).where(
            col(models.Event.task_id).is_not(None)
        )
        return list(session.exec(statement.order_by(col(models.Event.id))).all())


def add_person(store: Context, email: str, name: str = "") -> int:
    with session_scope(store.engine) as session:
        person = models.Person(email=email, name=name)
        session.add(person)
        session.flush()
        assert person.id is not None
        return person.id


def test_task_page_shows_the_thread_with_mail_text_escaped(world, web_server):
    with signed_in(world, web_server, CAROL) as carol:
        answer = post_form(carol, "/tasks/1/messages", {"branch_id": "1", "text": HOSTILE})
        assert answer.status_code == 303
        (_, posted) = messages(world)
        assert answer.headers["location"] == f"/tasks/1#message-{posted.id}"
        page = carol.get("/tasks/1")
    assert page.status_code == 200
    html = page.text
    assert "Invoice 2024-17 is missing a line" in html and "Task #1" in html
    for fact in ("status-open", "Carol Client", "via web"):
        assert fact in html
    assert "billing" not in html and "urgent" not in html  # the team's tags, not hers
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert HOSTILE not in html
    assert '<details class="quoted">' in html and "Head of Purchasing, ACME Ltd." in html
    assert "our invoice 2024-17 lists the licences" in html
    # A client is offered a reply, never the team's forms.
    for team_only in ("/tasks/1/tags", "/tasks/1/status", "/tasks/1/branches", "Outbox"):
        assert team_only not in html


def test_reply_form_posts_and_notifies_the_other_members(world, web_server):
    before = len(outbox_rows(world))
    with signed_in(world, web_server, CAROL) as carol:
        fields = {"branch_id": "1", "text": "Any news?\r\nThanks"}
        assert post_form(carol, "/tasks/1/messages", fields).status_code == 303
    posted = messages(world)[-1]
    assert (posted.text, posted.source) == ("Any news?\nThanks", "web")
    new = outbox_rows(world)[before:]
    assert {(row.recipient, row.kind, row.about_message_id) for row in new} == {
        (ALICE, "notification", posted.id),
        (BOB, "notification", posted.id),
    }


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"branch_id": "1", "text": "  \r\n "}, 400),
        ({"text": "no branch"}, 400),
        ({"branch_id": "x1", "text": "bad id"}, 400),
        ({"branch_id": "999", "text": "no such branch"}, 404),
    ],
)
def test_reply_form_is_validated(world, web_server, fields, status):
    with signed_in(world, web_server, CAROL) as carol:
        assert post_form(carol, "/tasks/1/messages", fields).status_code == status
    assert len(messages(world)) == 1


def test_form_without_csrf_token_is_refused(world, web_server):
    with signed_in(world, web_server, CAROL) as carol:
        carol.get("/tasks/1")
        answer = carol.post("/tasks/1/messages", data={"branch_id": "1", "text": "hi"})
    assert answer.status_code == 403
    assert len(messages(world)) == 1


def test_team_member_opens_a_hidden_branch_from_a_message(world, web_server):
    first = messages(world)[0]
    with signed_in(world, web_server, ALICE) as alice:
        page = alice.get("/tasks/1").text
        assert f'name="member" value="{person_id(world, BOB)}"' in page
        assert f'name="member" value="{person_id(world, CAROL)}"' not in page
        answer = open_hidden_branch(alice, world)
    main, hidden = branches(world)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/tasks/1#branch-{hidden.id}"
    assert (hidden.hidden, hidden.parent_id, hidden.forked_from_id) == (True, main.id, first.id)
    assert ("branch_opened", "") in event_kinds(world)
    with signed_in(world, web_server, BOB) as bob:
        page = bob.get("/tasks/1").text
    assert "Hidden from the client" in page and SECRET in page
    assert f'href="#message-{first.id}">this message' in page
    secret_mail = [row for row in outbox_rows(world) if row.branch_id == hidden.id]
    assert [row.recipient for row in secret_mail] == [BOB]
    with signed_in(world, web_server, CAROL) as carol:
        page = carol.get("/tasks/1").text
    assert SECRET not in page and "Hidden from the client" not in page
    seen_by_carol = api_task(web_server, world, CAROL).json()
    assert [branch["id"] for branch in seen_by_carol["branches"]] == [main.id]


def test_hidden_branch_refuses_a_client_even_when_their_id_is_posted(world, web_server):
    carol_id = person_id(world, CAROL)
    with signed_in(world, web_server, ALICE) as alice:
        answer = open_hidden_branch(alice, world, member=[str(carol_id)])
        assert answer.status_code == 400
        both = [str(person_id(world, BOB)), str(carol_id)]
        assert open_hidden_branch(alice, world, member=both).status_code == 400
    assert len(branches(world)) == 1
    with signed_in(world, web_server, CAROL) as carol:
        assert open_hidden_branch(carol, world, member=[]).status_code == 403
    assert len(branches(world)) == 1
    with Session(world.engine) as session:
        texts = [mail_text(session, row) for row in session.exec(select(models.Outbox))]
    assert texts and SECRET not in str(texts)


def test_hidden_branch_cannot_fork_from_a_message_of_another_task(world, web_server, smtp_server):
    smtp_server.send(client_mail("dave@globex.test", "Globex question"), INTAKE, "dave@globex.test")
    other = messages(world, 2)[0]
    with signed_in(world, web_server, ALICE) as alice:
        answer = open_hidden_branch(alice, world, message_id=str(other.id), member=[])
    assert answer.status_code == 404
    assert len(branches(world)) == 1


def test_team_adds_and_removes_tags(world, web_server):
    with signed_in(world, web_server, ALICE) as alice:
        assert post_form(alice, "/tasks/1/tags", {"add": " #Срочно "}).status_code == 303
        assert post_form(alice, "/tasks/1/tags", {"remove": "URGENT"}).status_code == 303
        assert post_form(alice, "/tasks/1/tags", {"add": "срочно"}).status_code == 303
        assert post_form(alice, "/tasks/1/tags", {"add": "#"}).status_code == 400
        page = alice.get("/tasks/1").text
    assert tags(world) == ["billing", "срочно"]
    assert [kind for kind in event_kinds(world) if kind[0] in ("tag", "untag")] == [
        ("tag", "срочно"),
        ("untag", "urgent"),
    ]
    assert "tagged it срочно" in page and "removed the tag urgent" in page
    with signed_in(world, web_server, CAROL) as carol:
        assert post_form(carol, "/tasks/1/tags", {"remove": "billing"}).status_code == 403
    assert tags(world) == ["billing", "срочно"]


def test_team_closes_and_reopens_the_task(world, web_server):
    with signed_in(world, web_server, ALICE) as alice:
        assert post_form(alice, "/tasks/1/status", {"status": "closed"}).status_code == 303
        page = alice.get("/tasks/1").text
        assert "status-closed" in page and "Reopen task" in page and "closed it" in page
        assert post_form(alice, "/tasks/1/status", {"status": "open"}).status_code == 303
        assert post_form(alice, "/tasks/1/status", {"status": "gone"}).status_code == 400
    with signed_in(world, web_server, CAROL) as carol:
        assert post_form(carol, "/tasks/1/status", {"status": "closed"}).status_code == 403
    assert [kind for kind, _ in event_kinds(world) if kind in ("close", "reopen")] == [
        "close",
        "reopen",
    ]
    with Session(world.engine) as session:
        task = session.exec(select(models.Task)).one()
    assert task.status == "open"


def test_history_shows_only_events_the_reader_may_see(world, web_server):
    with signed_in(world, web_server, ALICE) as alice:
        assert open_hidden_branch(alice, world).status_code == 303
        page = alice.get("/tasks/1").text
    assert "opened the task" in page and "opened a hidden branch" in page
    with signed_in(world, web_server, CAROL) as carol:
        page = carol.get("/tasks/1").text
    assert "opened the task" in page
    assert "opened a hidden branch" not in page and "hidden branch" not in page
    assert SECRET not in page  # Alice's message in the hidden branch
    assert "wrote a message" not in page  # the thread shows the messages: no line for each


def test_task_the_reader_may_not_see_is_not_found(world, web_server):
    add_person(world, "eve@initech.test", "Eve")
    with signed_in(world, web_server, "eve@initech.test") as eve:
        for url in ("/tasks/1", "/tasks/2"):
            page = eve.get(url)
            assert page.status_code == 404
            assert "Not found" in page.text and "Invoice" not in page.text
        fields = {"branch_id": "1", "text": "let me in"}
        assert post_form(eve, "/tasks/1/messages", fields, page="/").status_code == 404
        assert post_form(eve, "/tasks/1/tags", {"add": "x"}, page="/").status_code == 404
    assert len(messages(world)) == 1


def client_mail(sender: str, subject: str) -> bytes:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, INTAKE, subject
    mail["Message-ID"] = f"<{subject.replace(' ', '-')}@client.test>"
    mail.set_content("Hello, a question for you.\n")
    return mail.as_bytes()


def test_contacts_are_grouped_by_company_with_no_company_last(world, web_server, smtp_server):
    webmail = "lin.chen@gmail.com"
    smtp_server.send(client_mail(webmail, "Question from home"), INTAKE, sender=webmail)
    with signed_in(world, web_server, ALICE) as alice:
        page = alice.get("/contacts").text
        groups = (
            '<h2><a href="/companies/acme.test">acme.test</a></h2>',
            '<h2><a href="/companies/example.com">example.com</a></h2>',
            "<h2>No company</h2>",
        )
        positions = [page.index(group) for group in groups]
        assert positions == sorted(positions)
        assert webmail in page and f'href="/contacts/{CAROL.replace("@", "%40")}"' in page
        carol_page = alice.get(f"/contacts/{CAROL}")
        assert carol_page.status_code == 200
        assert "Invoice 2024-17 is missing a line" in carol_page.text
        assert "Question from home" not in carol_page.text
    with signed_in(world, web_server, CAROL) as carol:
        page = carol.get("/contacts").text
        assert ALICE in page and webmail not in page
        assert carol.get(f"/contacts/{webmail}").status_code == 404
        assert carol.get("/contacts/nobody@nowhere.test").status_code == 404


def test_activity_leaves_out_hidden_branch_events_for_clients(world, web_server, smtp_server):
    main = branches(world)[0]
    private = address(world, main.id, ALICE, private=True)
    smtp_server.send(eml_bytes("team_private_reply"), private, sender=ALICE)
    hidden_message = messages(world)[-1]
    with signed_in(world, web_server, ALICE) as alice:
        page = alice.get("/activity").text
    assert "opened a hidden branch" in page
    assert f"#message-{hidden_message.id}" in page
    with signed_in(world, web_server, CAROL) as carol:
        page = carol.get("/activity")
    assert page.status_code == 200
    assert "opened the task" in page.text and "Invoice 2024-17" in page.text
    assert "hidden branch" not in page.text
    assert f"#message-{hidden_message.id}" not in page.text
    assert expected("team_private_reply")["text"].split("\n")[0] not in page.text


def test_outbox_page_is_for_the_team_only(world, web_server):
    with signed_in(world, web_server, CAROL) as carol:
        page = carol.get("/outbox")
        assert page.status_code == 403
        assert "Not allowed" in page.text
        assert 'href="/outbox"' not in carol.get("/").text
    with signed_in(world, web_server, ALICE) as alice:
        page = alice.get("/outbox")
        assert 'href="/outbox"' in alice.get("/").text
    assert page.status_code == 200
    assert CAROL in page.text and "pending" in page.text
    assert "Invoice 2024-17 is missing a line" in page.text


def test_task_page_in_a_real_browser(world, web_server, tmp_path):
    """Chromium submits the reply form (its CSRF field included) and renders the thread."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with signed_in(world, web_server, ALICE) as alice:
        assert open_hidden_branch(alice, world).status_code == 303
        assert post_form(alice, "/tasks/1/tags", {"add": "срочно"}).status_code == 303
    token = world.links.make_login(person_id(world, ALICE))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(f"{web_server.base_url}/auth/magic/{token}")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{web_server.base_url}/")
            page.goto(f"{web_server.base_url}/tasks/1")
            page.select_option("#reply-branch", "1")
            page.fill("#reply-text", "Sending the corrected invoice today.")
            page.locator("form.reply button").click()
            page.wait_for_url(f"{web_server.base_url}/tasks/1#message-*")
            assert "Sending the corrected invoice today." in page.inner_text("#branch-1")
            assert "Hidden from the client" in page.inner_text(".branch-hidden")
            page.screenshot(path=str(tmp_path / "task.png"), full_page=True)
        finally:
            browser.close()


def test_outbox_page_hides_mail_about_a_hidden_branch_from_team_members_outside_it(
    world, web_server
):
    with signed_in(world, web_server, ALICE) as alice:
        assert open_hidden_branch(alice, world).status_code == 303  # with Bob
    (hidden,) = [branch for branch in branches(world) if branch.hidden]
    assert [row.recipient for row in outbox_rows(world) if row.branch_id == hidden.id] == [BOB]
    with session_scope(world.engine) as session:  # Cara joins the team afterwards
        get_person(session, Address("cara@example.com", "Cara"), datetime.now(UTC))
    with signed_in(world, web_server, "cara@example.com") as cara:
        listed_for_cara = cara.get("/outbox").text.count(BOB)
    with signed_in(world, web_server, ALICE) as alice:
        listed_for_alice = alice.get("/outbox").text.count(BOB)
    assert (listed_for_cara, listed_for_alice) == (1, 2)  # Carol's first mail; + the hidden one
