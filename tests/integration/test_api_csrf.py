"""Writes to the JSON API: JSON bodies only, and the CSRF token when the session cookie signs in.

Issue 7: another site on 127.0.0.1 (another port is the *same site*, so the ``SameSite=Lax``
session cookie rides along) posted a message as the signed-in team member with a
``<form enctype="text/plain">``.  Bearer-token clients are untouched: a browser never adds
an ``Authorization`` header on its own.

The world: alice (example.com, the team) is in task 1's branch; she has an API token.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlmodel import Session, func, select

from qmail import models
from qmail.auth.api_tokens import create_api_token
from qmail.context import Context
from qmail.db import session_scope
from tests.integration.conftest import WebServer
from tests.integration.test_auth import magic_link, sign_in
from tests.integration.test_browser import CHROMIUM, CHROMIUM_ARGS, require_browser

CSRF_HEADER = "X-CSRFToken"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@dataclasses.dataclass
class World:
    alice_id: int
    token: str
    branch_id: int


@pytest.fixture
def world(store: Context, team: dict[str, int]) -> World:
    with session_scope(store.engine) as session:
        task = models.Task(number=1, title="Invoice for March")
        session.add(task)
        session.flush()
        branch = models.Branch(task_id=task.id)
        session.add(branch)
        session.flush()
        session.add(models.BranchMember(branch_id=branch.id, person_id=team["alice@example.com"]))
        alice = session.get(models.Person, team["alice@example.com"])
        assert alice is not None and branch.id is not None
        return World(team["alice@example.com"], create_api_token(session, alice), branch.id)


@contextmanager
def signed_in(store: Context, web_server: WebServer, person_id: int) -> Iterator[httpx.Client]:
    """A client holding the session cookie: signed in by magic link, as a person does."""
    with web_server.client() as client:
        assert sign_in(client, magic_link(store, web_server, person_id)).status_code == 303
        yield client


def page_csrf_token(client: httpx.Client) -> str:
    """The token a page hands its scripts in ``<meta name="csrf-token">``."""
    match = CSRF_META.search(client.get("/").text)
    assert match, "no csrf-token meta tag"
    return match.group(1)


def message_count(store: Context) -> int:
    with Session(store.engine) as session:
        return session.exec(select(func.count()).select_from(models.Message)).one()


def post(client: httpx.Client, **kwargs: object) -> httpx.Response:
    return client.post("/api/tasks/1/messages", **kwargs)  # type: ignore[arg-type]


def body(world: World, text: str = "Sent.") -> dict[str, object]:
    return {"branch_id": world.branch_id, "text": text}


# --- bearer tokens: JSON only, no CSRF token needed -------------------------------------


def test_bearer_post_with_json_is_created(store, web_server, world):
    with web_server.client(world.token) as client:
        answer = post(client, json=body(world))
    assert answer.status_code == 201, answer.text
    assert answer.json()["text"] == "Sent."
    assert message_count(store) == 1


def test_json_with_a_charset_parameter_is_json(store, web_server, world):
    with web_server.client(world.token) as client:
        answer = post(
            client,
            content=json.dumps(body(world)).encode(),
            headers={"Content-Type": "Application/JSON; charset=utf-8"},
        )
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "multipart/form-data", "application/jsonx", None],
)
def test_bearer_post_of_anything_but_json_is_refused(store, web_server, world, content_type):
    json_text = json.dumps(body(world)).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    with web_server.client(world.token) as client:
        answer = post(client, content=json_text, headers=headers)
    assert answer.status_code == 415, answer.text
    assert answer.json() == {"error": "the API takes only Content-Type: application/json"}
    assert message_count(store) == 0


def test_form_encoded_post_is_refused(store, web_server, world):
    with web_server.client(world.token) as client:
        answer = post(client, data={"branch_id": str(world.branch_id), "text": "form"})
    assert answer.status_code == 415
    assert message_count(store) == 0


# --- the session cookie: the CSRF token is required -----------------------------------


def test_cookie_post_without_the_csrf_header_is_forbidden(store, web_server, world):
    with signed_in(store, web_server, world.alice_id) as client:
        assert client.get("/api/tasks/1").status_code == 200  # signed in: reading is fine
        answer = post(client, json=body(world))
    assert answer.status_code == 403
    assert answer.json() == {"error": "CSRF token verification failed"}
    assert message_count(store) == 0


def test_cookie_post_with_a_wrong_csrf_header_is_forbidden(store, web_server, world):
    with signed_in(store, web_server, world.alice_id) as client:
        forged = page_csrf_token(client)[:-4] + "0000"
        answer = post(client, json=body(world), headers={CSRF_HEADER: forged})
    assert answer.status_code == 403
    assert message_count(store) == 0


def test_cookie_post_with_the_pages_csrf_token_is_created(store, web_server, world):
    with signed_in(store, web_server, world.alice_id) as client:
        token = page_csrf_token(client)
        assert token == client.cookies["qmail_csrf"]
        answer = post(client, json=body(world), headers={CSRF_HEADER: token})
    assert answer.status_code == 201, answer.text
    assert answer.json()["author"]["email"] == "alice@example.com"
    assert message_count(store) == 1


def test_cookie_post_of_plain_text_is_refused_even_with_the_csrf_header(store, web_server, world):
    with signed_in(store, web_server, world.alice_id) as client:
        headers = {CSRF_HEADER: page_csrf_token(client), "Content-Type": "text/plain"}
        json_text = json.dumps(body(world)).encode()
        answer = post(client, content=json_text, headers=headers)
    assert answer.status_code == 415
    assert message_count(store) == 0


def test_a_bad_bearer_token_does_not_fall_back_to_the_cookie(store, web_server, world):
    with signed_in(store, web_server, world.alice_id) as client:
        headers = {"Authorization": "Bearer qm_not-a-real-token"}
        answer = post(client, json=body(world), headers=headers)
    assert answer.status_code == 401
    assert message_count(store) == 0


def test_api_answers_set_no_csrf_cookie(web_server, world):
    with web_server.client() as anonymous, web_server.client(world.token) as client:
        answers = [anonymous.get("/api/health"), client.get("/api/tasks")]
    assert [answer.status_code for answer in answers] == [200, 200]
    assert not any("set-cookie" in answer.headers for answer in answers)


# --- a real browser, attacked from another port on 127.0.0.1 ---------------------------

# text/plain sends ``name=value``: this one is {"branch_id": 1, "text": "…", "x": "="}
FORM_PAGE = """<!doctype html>
<form id="attack" method="post" enctype="text/plain" action="{url}">
  <input type="hidden" name='{{"branch_id": {branch_id}, "text": "forged by a form", "x": "'
         value='"}}'>
</form>
<script>document.getElementById("attack").submit()</script>
"""

FETCH_PAGE = """<!doctype html>
<script>
const body = JSON.stringify({{branch_id: {branch_id}, text: "forged by fetch"}});
const outcome = (promise) => promise.then((r) => "answered " + r.type, (e) => "failed " + e);
window.attempts = Promise.all([
  outcome(fetch("{url}", {{method: "POST", credentials: "include",
                           headers: {{"Content-Type": "application/json"}}, body}})),
  outcome(fetch("{url}", {{method: "POST", credentials: "include", mode: "no-cors",
                           headers: {{"Content-Type": "text/plain"}}, body}})),
]);
</script>
"""


@pytest.fixture
def other_site(web_server: WebServer, world: World) -> Iterator[str]:
    """Another site on 127.0.0.1 (its own port) serving the two attack pages."""
    url = f"{web_server.base_url}/api/tasks/1/messages"
    pages = {
        "/form": FORM_PAGE.format(url=url, branch_id=world.branch_id),
        "/fetch": FETCH_PAGE.format(url=url, branch_id=world.branch_id),
    }

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in pages:
                self.send_error(404)
                return
            content = pages[self.path].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_browser_signed_in_as_team_member_cannot_be_made_to_post(
    store, web_server, world, other_site
):
    require_browser()
    from playwright.sync_api import sync_playwright

    api_url = f"{web_server.base_url}/api/tasks/1/messages"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(magic_link(store, web_server, world.alice_id))
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{web_server.base_url}/")

            with page.expect_response(api_url) as form_answer:
                page.goto(f"{other_site}/form")
            with page.expect_response(
                lambda r: r.url == api_url and r.request.method == "POST"
            ) as fetch_answer:
                page.goto(f"{other_site}/fetch")
            attempts = page.evaluate("() => window.attempts")
            form_cookie = form_answer.value.request.all_headers().get("cookie", "")
            statuses = [form_answer.value.status, fetch_answer.value.status]
        finally:
            browser.close()
    assert message_count(store) == 0
    assert "qmail_session=" in form_cookie  # another port is the same site: it rode along
    assert statuses == [403, 403]  # but the CSRF token cannot
    cors, no_cors = attempts
    assert cors.startswith("failed")  # the preflight finds no CORS permission: never sent
    assert no_cors == "answered opaque"  # sent, but refused (the status is hidden from it)
