"""The team writes first: a task opened from the web page or the API, to a client, who
gets the first message by mail and answers into the thread; the API changes a task's
status, tags and assignee; the API's documentation.

The world (``test_pages.world``): Carol, a client, opened task 1 by mail through the real
SMTP server; Alice and Bob are the team.
"""

from __future__ import annotations

import email
import re
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from sqlmodel import Session, col, select

from qmail import models
from qmail.auth.api_tokens import create_api_token
from qmail.context import Context
from qmail.db import session_scope
from qmail.outbound.outbox import mail_bytes
from tests.integration.browser import LAPTOP, PHONE, launched, look_at, shots_dir
from tests.integration.browser import signed_in_page as browser_signed_in
from tests.integration.test_auth import magic_link
from tests.integration.test_ingest import INTAKE
from tests.integration.test_pages import (
    ALICE,
    BOB,
    CAROL,
    post_form,
    signed_in,
)
from tests.integration.test_pages import world as world
from tests.integration.test_threads import person_id

DANA = "dana@client.test"


def token_for(store: Context, address: str) -> str:
    with session_scope(store.engine) as session:
        person = session.exec(select(models.Person).where(models.Person.email == address)).one()
        return create_api_token(session, person)


def mail_to(store: Context, recipient: str, task_number: int) -> EmailMessage:
    """The one notification ``recipient`` has been sent about task ``task_number``."""
    with Session(store.engine) as session:
        task = session.exec(select(models.Task).where(models.Task.number == task_number)).one()
        rows = session.exec(
            select(models.Outbox).where(
                models.Outbox.recipient == recipient, models.Outbox.task_id == task.id
            )
        ).all()
        assert len(rows) == 1, [row.kind for row in rows]
        raw = mail_bytes(session, rows[0])
    return email.message_from_bytes(raw, policy=default_policy)  # type: ignore[return-value]


def thread(store: Context, number: int) -> list[tuple[str, str, bool]]:
    """(author, text, hidden) of each message of task ``number``, oldest first."""
    with Session(store.engine) as session:
        rows = session.exec(
            select(models.Person.email, models.Message.text, models.Branch.hidden)
            .join(models.Message, col(models.Message.author_id) == models.Person.id)
            .join(models.Branch, col(models.Branch.id) == models.Message.branch_id)
            .join(models.Task, col(models.Task.id) == models.Message.task_id)
            .where(models.Task.number == number)
            .order_by(col(models.Message.id))
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def answer(to: str, subject: str, in_reply_to: str, text: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Dana <{DANA}>"
    mail["To"] = to
    mail["Subject"] = f"Re: {subject}"
    mail["Message-ID"] = "<dana-answer-1@client.test>"
    mail["In-Reply-To"] = in_reply_to
    mail.set_content(text)
    return bytes(mail)


def test_a_team_member_opens_a_task_from_the_web_and_the_client_answers_by_mail(
    world, web_server, smtp_server
):
    fields = {
        "to": DANA,
        "title": "Your renewal quote",
        "text": "Hello Dana,\r\nthe quote for next year is attached below.",
        "tags": "renewals, Q4 sales",
    }
    with signed_in(world, web_server, ALICE) as alice:
        opened = post_form(alice, "/tasks/new", fields, page="/tasks/new")
        assert (opened.status_code, opened.headers["location"]) == (303, "/tasks/2")
        page = alice.get("/tasks/2").text
    assert "Your renewal quote" in page and "renewals" in page and "q4-sales" in page
    assert thread(world, 2) == [
        (ALICE, "Hello Dana,\nthe quote for next year is attached below.", False)
    ]
    first = mail_to(world, DANA, 2)
    assert first["Subject"] == "[#2] Your renewal quote"
    assert "the quote for next year" in first.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    reply_to = first["Reply-To"].addresses[0].addr_spec
    assert re.fullmatch(rf"reply\+[\w.-]+@{world.settings.mail.domain}", reply_to), reply_to

    smtp_server.send(
        answer(reply_to, first["Subject"], first["Message-ID"], "Thanks, we accept."),
        reply_to,
        DANA,
    )
    assert thread(world, 2)[-1] == (DANA, "Thanks, we accept.", False)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"to": "", "title": "T", "text": "x"}, "write to at least one address"),
        ({"to": "dana@", "title": "T", "text": "x"}, "not an email address: &#39;dana@&#39;"),
        ({"to": INTAKE, "title": "T", "text": "x"}, "one of qmail&#39;s own addresses"),
        ({"to": DANA, "title": " ", "text": "x"}, "the task needs a title"),
        ({"to": DANA, "title": "T", "text": " "}, "text must not be empty"),
    ],
)
def test_a_new_task_form_that_cannot_be_taken_is_shown_again_with_why(
    world, web_server, fields, error
):
    with signed_in(world, web_server, ALICE) as alice:
        shown = post_form(alice, "/tasks/new", {**fields, "tags": ""}, page="/tasks/new")
    assert shown.status_code == 400
    assert error in shown.text
    assert f'value="{fields["to"]}"' in shown.text  # what was typed is kept
    with Session(world.engine) as session:
        assert len(session.exec(select(models.Task)).all()) == 1


def test_a_client_cannot_open_a_task_from_the_web(world, web_server):
    with signed_in(world, web_server, CAROL) as carol:
        assert carol.get("/tasks/new").status_code == 403
        assert 'href="/tasks/new"' not in carol.get("/").text
        refused = post_form(carol, "/tasks/new", {"to": DANA, "title": "T", "text": "x"}, "/")
    assert refused.status_code == 403
    with signed_in(world, web_server, ALICE) as alice:
        assert 'href="/tasks/new"' in alice.get("/").text


# --- the API ----------------------------------------------------------------------------


def test_the_api_opens_a_task_for_the_team_only(world, web_server):
    body = {"to": [DANA], "title": "Contract", "text": "Draft attached.", "tags": ["Legal"]}
    with web_server.client(token_for(world, ALICE)) as http:
        created = http.post("/api/tasks", json=body)
    assert created.status_code == 201, created.text
    task = created.json()
    assert (task["number"], task["title"], task["tags"]) == (2, "Contract", ["legal"])
    (public,) = task["branches"]
    assert set(public["members"]) == {ALICE, BOB, DANA}
    assert [message["text"] for message in public["messages"]] == ["Draft attached."]
    assert mail_to(world, DANA, 2)["Subject"] == "[#2] Contract"
    with web_server.client(token_for(world, CAROL)) as http:
        refused = http.post("/api/tasks", json=body)
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "only team members open tasks from the web; clients write by mail"
    }


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"to": ["not-an-address"], "title": "T", "text": "x"}, "not an email address"),
        ({"to": [INTAKE], "title": "T", "text": "x"}, "qmail's own addresses"),
        ({"to": [], "title": "T", "text": "x"}, "Expected `array` of length >= 1 (to)"),
        ({"to": [DANA], "title": "", "text": "x"}, "Expected `str` of length >= 1 (title)"),
    ],
)
def test_the_api_refuses_a_task_it_cannot_open_with_one_error(world, web_server, body, error):
    with web_server.client(token_for(world, ALICE)) as http:
        refused = http.post("/api/tasks", json=body)
    assert refused.status_code == 400
    assert list(refused.json()) == ["error"] and error in refused.json()["error"]


def test_the_api_changes_status_tags_and_assignee_each_an_event(world, web_server):
    with web_server.client(token_for(world, ALICE)) as http:
        changed = http.patch(
            "/api/tasks/1",
            json={
                "status": "closed",
                "add_tags": ["Waiting"],
                "remove_tags": ["billing"],
                "assignee": BOB,
            },
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["status"], changed.json()["tags"]) == (
            "closed",
            ["urgent", "waiting"],
        )
        unassigned = http.patch("/api/tasks/1", json={"assignee": None, "status": "open"})
        assert unassigned.status_code == 200
        refused = http.patch("/api/tasks/1", json={"assignee": CAROL})
    assert refused.status_code == 400 and "not a team member" in refused.json()["error"]
    with Session(world.engine) as session:
        task = session.exec(select(models.Task).where(models.Task.number == 1)).one()
        kinds = session.exec(
            select(models.Event.kind, models.Event.detail)
            .where(models.Event.task_id == task.id, col(models.Event.kind) != "message")
            .order_by(col(models.Event.id))
        ).all()
    assert (task.status, task.assignee_id) == ("open", None)
    assert kinds[-6:] == [
        ("close", ""),
        ("tag", "waiting"),
        ("untag", "billing"),
        ("assign", BOB),
        ("reopen", ""),
        ("unassign", ""),
    ]


def test_only_the_team_changes_a_task_and_others_do_not_learn_it_exists(world, web_server):
    with session_scope(world.engine) as session:
        session.add(models.Person(email="eve@elsewhere.test"))
    with web_server.client(token_for(world, CAROL)) as http:
        assert http.patch("/api/tasks/1", json={"status": "closed"}).status_code == 403
    with web_server.client(token_for(world, "eve@elsewhere.test")) as http:
        assert http.patch("/api/tasks/1", json={"status": "closed"}).status_code == 404
    with web_server.client() as http:
        assert http.patch("/api/tasks/1", json={"status": "closed"}).status_code == 401
    with Session(world.engine) as session:
        assert session.exec(select(models.Task.status)).all() == ["open"]


# --- the API's documentation ------------------------------------------------------------


def test_the_schema_documents_only_the_api_with_its_bearer_scheme_and_error_shape(web_server):
    with web_server.client() as http:
        schema = http.get("/schema/openapi.json").json()
        error = http.get("/api/tasks/1")
    assert schema["paths"] and all(path.startswith("/api/") for path in schema["paths"])
    assert "patch" in schema["paths"]["/api/tasks/{number}"]
    assert "post" in schema["paths"]["/api/tasks"]
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from `qmail token create EMAIL`, acting as that person.",
    }
    assert {"bearer": []} in schema["security"]
    assert schema["paths"]["/api/health"]["get"]["security"] == [{}]
    documented = schema["paths"]["/api/tasks/{number}"]["get"]["responses"]["401"]
    shape = documented["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert schema["components"]["schemas"][shape]["properties"] == {"error": {"type": "string"}}
    assert error.status_code == 401 and list(error.json()) == ["error"]


def test_the_api_documentation_reads_in_a_browser_without_reaching_a_cdn(web_server):
    with launched() as browser:
        page = browser.new_page(viewport=LAPTOP)
        outside: list[str] = []
        page.on(
            "request",
            lambda request: (
                outside.append(request.url)
                if not request.url.startswith((web_server.base_url, "data:"))
                else None
            ),
        )
        page.goto(f"{web_server.base_url}/schema")
        page.wait_for_selector(".opblock-summary-path")
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert page.get_by_role("button", name=re.compile("Authorize")).count() == 1
    assert outside == []
    assert {path.replace("\u200b", "") for path in paths} >= {"/api/tasks", "/api/tasks/{number}"}


def test_the_new_task_page_reads_on_a_laptop_and_a_phone(world, web_server, request):
    folder = shots_dir(request)
    with launched() as browser:
        for viewport in (LAPTOP, PHONE):
            link = magic_link(world, web_server, person_id(world, ALICE))
            page = browser_signed_in(browser, link, viewport)
            page.goto(f"{web_server.base_url}/tasks/new")
            look_at(page, folder, "new-task")
            page.fill("#new-to", "dana@")
            page.fill("#new-title", "Quote")
            page.fill("#new-text", "Hello")
            page.get_by_role("button", name="Open the task and send").click()
            page.wait_for_selector(".form-error")
            look_at(page, folder, "new-task-error")
            assert "not an email address" in page.inner_text(".form-error")
    with Session(world.engine) as session:
        assert len(session.exec(select(models.Task)).all()) == 1  # the form was refused
