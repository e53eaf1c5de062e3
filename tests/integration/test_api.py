"""The JSON API over a real uvicorn server, driven with httpx.

The world: alice and bob are the team (example.com); carol (acme.test) and dave
(globex.test) are clients with a task each; task 1 has a hidden branch with alice only;
task 3 is internal to the team; stranger@nowhere.test takes part in nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from qmail import models
from qmail.auth.api_tokens import create_api_token, hash_token, person_for_api_token
from qmail.context import Context
from qmail.db import session_scope
from tests.integration.conftest import InProcessWeb

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
INVOICE_NAME = "Счёт №5.pdf"
INVOICE_BYTES = b"%PDF-1.4\n% fake invoice\n"
HOSTILE_HTML = b"<script>alert(document.cookie)</script>"


@dataclasses.dataclass
class World:
    tokens: dict[str, str]
    invoice_id: int
    html_id: int
    notes_id: int
    hidden_branch_id: int


def _person(session: Session, email: str, name: str) -> models.Person:
    """A person; those at example.com are the team (the test settings' team domain)."""
    person = models.Person(email=email, name=name, created_at=T0)
    session.add(person)
    session.flush()
    return person


def _task(
    session: Session, number: int, title: str, status: str, tags: list[str], days: int
) -> models.Task:
    task = models.Task(
        number=number,
        title=title,
        status=status,
        created_at=T0,
        updated_at=T0 + timedelta(days=days),
    )
    session.add(task)
    session.flush()
    for name in tags:
        tag = session.exec(select(models.Tag).where(models.Tag.name == name)).first()
        if tag is None:
            tag = models.Tag(name=name)
            session.add(tag)
            session.flush()
        session.add(models.TaskTag(task_id=task.id, tag_id=tag.id))
    return task


def _branch(
    session: Session,
    task: models.Task,
    members: list[models.Person],
    parent: models.Branch | None = None,
) -> models.Branch:
    branch = models.Branch(
        task_id=task.id, hidden=parent is not None, parent_id=parent and parent.id, created_at=T0
    )
    session.add(branch)
    session.flush()
    for person in members:
        session.add(models.BranchMember(branch_id=branch.id, person_id=person.id, added_at=T0))
    return branch


def _message(
    session: Session, branch: models.Branch, author: models.Person, text: str, minutes: int
) -> models.Message:
    message = models.Message(
        task_id=branch.task_id,
        branch_id=branch.id,
        author_id=author.id,
        text=text,
        quoted="> earlier words",
        full_text=text,
        message_id=f"<m{minutes}@test>",
        source="email",
        sent_at=T0 + timedelta(minutes=minutes),
    )
    session.add(message)
    session.flush()
    return message


def _attachment(
    session: Session, message: models.Message, filename: str, content_type: str, content: bytes
) -> int:
    attachment = models.Attachment(
        message_id=message.id,
        filename=filename,
        content_type=content_type,
        size=len(content),
        content=content,
    )
    session.add(attachment)
    session.flush()
    assert attachment.id is not None
    return attachment.id


@pytest.fixture
def world(store: Context) -> World:
    with session_scope(store.engine) as session:
        alice = _person(session, "alice@example.com", "Alice Team")
        bob = _person(session, "bob@example.com", "Bob Team")
        carol = _person(session, "carol@acme.test", "Carol Client")
        dave = _person(session, "dave@globex.test", "Dave Client")
        stranger = _person(session, "stranger@nowhere.test", "Nobody")

        invoice = _task(session, 1, "Invoice for March", "open", ["billing", "urgent"], 1)
        main = _branch(session, invoice, [carol, alice])
        _message(session, main, carol, "Please send the invoice, we are 100%_done", 0)
        reply = _message(session, main, alice, "Here it is.", 10)
        invoice_id = _attachment(session, reply, INVOICE_NAME, "application/pdf", INVOICE_BYTES)
        html_id = _attachment(session, reply, "page.html", "text/html", HOSTILE_HTML)
        hidden = _branch(session, invoice, [alice], parent=main)
        note = _message(session, hidden, alice, "Internal: offer them the secret discount", 5)
        notes_id = _attachment(session, note, "notes.txt", "text/plain", b"discount 10")

        outage = _task(session, 2, "Website down", "closed", ["outage"], 4)
        _message(session, _branch(session, outage, [dave, alice]), dave, "Site returns 500", 0)

        planning = _task(session, 3, "Quarterly planning", "open", ["internal"], 2)
        _message(session, _branch(session, planning, [alice]), alice, "Agenda draft", 0)

        people = {"alice": alice, "bob": bob, "carol": carol, "dave": dave, "stranger": stranger}
        tokens = {name: create_api_token(session, person) for name, person in people.items()}
        assert hidden.id is not None
        return World(tokens, invoice_id, html_id, notes_id, hidden.id)


def get_json(web_app: InProcessWeb, token: str | None, url: str, status: int = 200) -> dict:
    with web_app.client(token) as http:
        response = http.get(url)
    assert response.status_code == status, response.text
    return response.json()


def numbers(web_app: InProcessWeb, token: str, url: str = "/api/tasks") -> list[int]:
    return [item["number"] for item in get_json(web_app, token, url)["items"]]


# --- health, schema, authentication ----------------------------------------------------


def test_health_answers_without_authentication(web_app: InProcessWeb) -> None:
    assert get_json(web_app, None, "/api/health") == {"status": "ok"}


def test_openapi_schema_lists_the_api_routes(web_app: InProcessWeb) -> None:
    schema = get_json(web_app, None, "/schema/openapi.json")
    assert schema["info"]["title"] == "qmail API"
    assert {
        "/api/health",
        "/api/tasks",
        "/api/tasks/{number}",
        "/api/attachments/{attachment_id}",
    } <= set(schema["paths"])


def test_request_without_token_is_unauthorized(web_app: InProcessWeb, world: World) -> None:
    with web_app.client() as http:
        response = http.get("/api/tasks")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"error": "authentication required"}


@pytest.mark.parametrize(
    "make_token",
    [lambda good: good + "x", lambda good: "qm_not-a-real-token", lambda good: good[3:]],
    ids=["altered", "unknown", "without-prefix"],
)
def test_request_with_bad_token_is_unauthorized(
    web_app: InProcessWeb, world: World, make_token: Callable[[str], str]
) -> None:
    with web_app.client(make_token(world.tokens["alice"])) as http:
        response = http.get("/api/tasks/1")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_api_token_is_stored_only_as_its_hash(store: Context, world: World) -> None:
    token = world.tokens["carol"]
    with session_scope(store.engine) as session:
        hashes = session.exec(select(models.ApiToken.token_hash)).all()
        person = person_for_api_token(session, token)
    assert token.startswith("qm_")
    assert hash_token(token) in hashes
    assert token not in hashes
    assert person is not None and person.email == "carol@acme.test"


# --- listing and filters -----------------------------------------------------------------


def test_team_member_sees_every_task_newest_first(web_app: InProcessWeb, world: World) -> None:
    listing = get_json(web_app, world.tokens["bob"], "/api/tasks")
    assert [item["number"] for item in listing["items"]] == [2, 3, 1]
    assert listing["total"] == 3
    first = listing["items"][2]
    assert first["title"] == "Invoice for March"
    assert first["tags"] == ["billing", "urgent"]
    assert first["status"] == "open"
    assert datetime.fromisoformat(first["updated_at"]) == T0 + timedelta(days=1)
    assert datetime.fromisoformat(first["created_at"]).utcoffset() == timedelta(0)


def test_client_sees_only_their_own_tasks(web_app: InProcessWeb, world: World) -> None:
    assert numbers(web_app, world.tokens["carol"]) == [1]
    assert numbers(web_app, world.tokens["dave"]) == [2]


def test_stranger_sees_no_tasks(web_app: InProcessWeb, world: World) -> None:
    assert get_json(web_app, world.tokens["stranger"], "/api/tasks") == {
        "items": [],
        "total": 0,
        "next_cursor": None,
        "total_exact": True,
    }


def test_tag_filter_is_case_insensitive(web_app: InProcessWeb, world: World) -> None:
    assert numbers(web_app, world.tokens["alice"], "/api/tasks?tag=URGENT") == [1]
    assert numbers(web_app, world.tokens["alice"], "/api/tasks?tag=nothing") == []


def test_clients_never_see_the_teams_tags(web_app: InProcessWeb, world: World) -> None:
    """Tags are the team's words ("waiting", "finance-q4"): a client's task carries none,
    in the list or alone, and filtering by one (which would tell them) is refused."""
    with web_app.client(world.tokens["carol"]) as client:
        assert [item["tags"] for item in client.get("/api/tasks").json()["items"]] == [[]]
        assert client.get("/api/tasks/1").json()["tags"] == []
        refused = client.get("/api/tasks?tag=billing")
    assert refused.status_code == 400
    assert refused.json() == {"error": "tags are the team's own: filter by status or words instead"}
    assert get_json(web_app, world.tokens["alice"], "/api/tasks/1")["tags"] == ["billing", "urgent"]


def test_status_filter_keeps_tasks_with_that_status(web_app: InProcessWeb, world: World) -> None:
    assert numbers(web_app, world.tokens["alice"], "/api/tasks?status=closed") == [2]
    assert numbers(web_app, world.tokens["alice"], "/api/tasks?status=open") == [3, 1]


def test_search_matches_titles_and_message_text(web_app: InProcessWeb, world: World) -> None:
    assert numbers(web_app, world.tokens["alice"], "/api/tasks?q=website") == [2]
    assert numbers(web_app, world.tokens["alice"], "/api/tasks?q=AGENDA") == [3]
    assert numbers(web_app, world.tokens["carol"], "/api/tasks?q=send%20the") == [1]


def test_search_ignores_text_of_branches_the_caller_cannot_see(
    web_app: InProcessWeb, world: World
) -> None:
    assert numbers(web_app, world.tokens["alice"], "/api/tasks?q=discount") == [1]
    assert numbers(web_app, world.tokens["bob"], "/api/tasks?q=discount") == []
    assert numbers(web_app, world.tokens["carol"], "/api/tasks?q=discount") == []


def test_search_looks_for_whole_words_whatever_the_punctuation(
    web_app: InProcessWeb, world: World
) -> None:
    assert numbers(web_app, world.tokens["alice"], "/api/tasks?q=100%25_done") == [1]
    assert numbers(web_app, world.tokens["alice"], "/api/tasks?q=Site_returns") == [2]
    assert numbers(web_app, world.tokens["alice"], "/api/tasks?q=%25") == []
    assert numbers(web_app, world.tokens["alice"], "/api/tasks?q=invoi") == []


def test_limit_and_offset_page_through_with_the_full_total(
    web_app: InProcessWeb, world: World
) -> None:
    first = get_json(web_app, world.tokens["alice"], "/api/tasks?limit=2")
    rest = get_json(web_app, world.tokens["alice"], "/api/tasks?limit=2&offset=2")
    assert [item["number"] for item in first["items"]] == [2, 3]
    assert [item["number"] for item in rest["items"]] == [1]
    assert first["total"] == rest["total"] == 3


def test_cursor_pages_through_and_ends_with_none(web_app: InProcessWeb, world: World) -> None:
    first = get_json(web_app, world.tokens["alice"], "/api/tasks?limit=2")
    rest = get_json(
        web_app, world.tokens["alice"], f"/api/tasks?limit=2&cursor={first['next_cursor']}"
    )
    assert [item["number"] for item in first["items"] + rest["items"]] == [2, 3, 1]
    assert rest["next_cursor"] is None
    assert first["total"] == rest["total"] == 3 and first["total_exact"]


@pytest.mark.parametrize("cursor", ["x", "bm90LWEtY3Vyc29y", "azIwMjQtMDEtMDF8eA"])
def test_a_cursor_that_is_not_ours_is_a_bad_request(
    web_app: InProcessWeb, world: World, cursor: str
) -> None:
    answer = get_json(web_app, world.tokens["alice"], f"/api/tasks?cursor={cursor}", status=400)
    assert answer == {"error": "invalid cursor"}


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=abc", "offset=-1", "offset=x"])
def test_bad_paging_values_are_rejected(web_app: InProcessWeb, world: World, query: str) -> None:
    answer = get_json(web_app, world.tokens["alice"], f"/api/tasks?{query}", status=400)
    assert "error" in answer


# --- one task ------------------------------------------------------------------------------


def test_task_shows_branches_members_messages_and_attachments(
    web_app: InProcessWeb, world: World
) -> None:
    task = get_json(web_app, world.tokens["alice"], "/api/tasks/1")
    assert (task["number"], task["title"], task["tags"]) == (
        1,
        "Invoice for March",
        ["billing", "urgent"],
    )
    main, hidden = task["branches"]
    assert (main["hidden"], main["parent_id"]) == (False, None)
    assert main["members"] == ["alice@example.com", "carol@acme.test"]
    assert [m["text"] for m in main["messages"]] == [
        "Please send the invoice, we are 100%_done",
        "Here it is.",
    ]
    first, reply = main["messages"]
    assert first["author"] == {"email": "carol@acme.test", "name": "Carol Client"}
    assert (first["quoted"], first["source"]) == ("> earlier words", "email")
    assert datetime.fromisoformat(reply["sent_at"]) == T0 + timedelta(minutes=10)
    assert first["attachments"] == []
    assert reply["attachments"][0] == {
        "filename": INVOICE_NAME,
        "content_type": "application/pdf",
        "size": len(INVOICE_BYTES),
        "url": f"/api/attachments/{world.invoice_id}",
    }
    assert (hidden["id"], hidden["hidden"], hidden["parent_id"]) == (
        world.hidden_branch_id,
        True,
        main["id"],
    )
    assert hidden["members"] == ["alice@example.com"]


@pytest.fixture
def statements(store: Context) -> Iterator[list[str]]:
    """The SQL statements the app runs while the test is going (same process, same engine)."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    yield seen
    event.remove(store.engine, "before_cursor_execute", record)


def test_task_is_read_in_a_fixed_number_of_queries(
    web_app: InProcessWeb, world: World, statements: list[str]
) -> None:
    get_json(web_app, world.tokens["alice"], "/api/tasks")  # the token's first use is noted
    statements.clear()
    get_json(web_app, world.tokens["alice"], "/api/tasks/1")
    # token, task, branches, members, messages, attachments, tags: not one per message
    assert len(statements) <= 7, statements
    assert not any("attachment.content " in s or "attachment.content," in s for s in statements)


def test_hidden_branch_is_absent_for_the_client(web_app: InProcessWeb, world: World) -> None:
    task = get_json(web_app, world.tokens["carol"], "/api/tasks/1")
    assert [branch["hidden"] for branch in task["branches"]] == [False]
    assert "discount" not in str(task)


def test_hidden_branch_is_absent_for_a_team_member_not_in_it(
    web_app: InProcessWeb, world: World
) -> None:
    task = get_json(web_app, world.tokens["bob"], "/api/tasks/1")
    assert [branch["hidden"] for branch in task["branches"]] == [False]


def test_other_clients_task_is_not_found(web_app: InProcessWeb, world: World) -> None:
    answer = get_json(web_app, world.tokens["dave"], "/api/tasks/1", status=404)
    missing = get_json(web_app, world.tokens["dave"], "/api/tasks/1000", status=404)
    assert answer.keys() == missing.keys() == {"error"}


def test_stranger_gets_not_found_for_any_task(web_app: InProcessWeb, world: World) -> None:
    get_json(web_app, world.tokens["stranger"], "/api/tasks/1", status=404)


def test_client_cannot_see_a_team_only_task(web_app: InProcessWeb, world: World) -> None:
    get_json(web_app, world.tokens["carol"], "/api/tasks/3", status=404)


def test_nonexistent_task_is_not_found(web_app: InProcessWeb, world: World) -> None:
    assert "error" in get_json(web_app, world.tokens["alice"], "/api/tasks/999", status=404)


# --- attachments -----------------------------------------------------------------------------


def test_attachment_downloads_with_its_bytes_type_and_name(
    web_app: InProcessWeb, world: World
) -> None:
    with web_app.client(world.tokens["carol"]) as http:
        response = http.get(f"/api/attachments/{world.invoice_id}")
    assert response.status_code == 200
    assert response.content == INVOICE_BYTES
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["x-content-type-options"] == "nosniff"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote(INVOICE_NAME, safe='')}" in disposition


def test_attachment_is_not_found_for_the_other_client(web_app: InProcessWeb, world: World) -> None:
    url = f"/api/attachments/{world.invoice_id}"
    assert "error" in get_json(web_app, world.tokens["dave"], url, status=404)
    get_json(web_app, world.tokens["stranger"], url, status=404)


def test_hidden_branch_attachment_is_only_for_its_members(
    web_app: InProcessWeb, world: World
) -> None:
    url = f"/api/attachments/{world.notes_id}"
    get_json(web_app, world.tokens["carol"], url, status=404)
    get_json(web_app, world.tokens["bob"], url, status=404)
    with web_app.client(world.tokens["alice"]) as http:
        assert http.get(url).content == b"discount 10"


def test_html_attachment_is_served_as_opaque_bytes(web_app: InProcessWeb, world: World) -> None:
    with web_app.client(world.tokens["carol"]) as http:
        response = http.get(f"/api/attachments/{world.html_id}")
    assert response.status_code == 200
    assert response.content == HOSTILE_HTML
    assert response.headers["content-type"] == "application/octet-stream"


def test_attachment_download_requires_authentication(web_app: InProcessWeb, world: World) -> None:
    get_json(web_app, None, f"/api/attachments/{world.invoice_id}", status=401)


def test_unknown_page_gets_the_escaped_error_page(web_app):
    with web_app.client() as client:
        answer = client.get("/nothing-<script>alert(1)</script>")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in answer.text
    assert "<script>" not in answer.text


def test_static_assets_are_served(web_app):
    with web_app.client() as client:
        answer = client.get("/static/qmail.css")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/css")
