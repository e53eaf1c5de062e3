"""Magic-link sign-in, ``/login``, sessions and the inbox, over real uvicorn + httpx.

The world: carol (acme.test, a client) takes part in task 1; task 2 is internal to the
team, so carol must never see it.  Links are made with the store's ``LinkTokens``, the same
secret the app signs with.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from itsdangerous.timed import TimestampSigner
from sqlmodel import Session, col, select

from qmail import cli, models
from qmail.auth.links import LOGIN_MAILS_PER_HOUR
from qmail.context import Context
from qmail.db import session_scope
from qmail.web.auth import session_cookie
from tests.integration.conftest import WebServer
from tests.integration.test_cli import write_config

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
INVALID = "This sign-in link has expired or was already used"
SENT = "If we know this address, a sign-in link is on its way"
CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')
LINK_IN_TEXT = re.compile(r"https?://\S+/auth/magic/\S+")


@pytest.fixture
def carol_id(store: Context) -> int:
    return add_carol_and_alice(store)


def add_carol_and_alice(store: Context) -> int:
    """Carol in task 1 with Alice; task 2 for Alice only.  Carol's id."""
    with session_scope(store.engine) as session:
        carol = models.Person(email="carol@acme.test", name="Carol Client", created_at=T0)
        alice = models.Person(email="alice@example.com", name="Alice", role="team", created_at=T0)
        session.add_all([carol, alice])
        session.flush()
        for number, title, members in (
            (1, "Invoice for <March>", [carol, alice]),
            (2, "Internal budget", [alice]),
        ):
            task = models.Task(number=number, title=title, created_at=T0, updated_at=T0)
            session.add(task)
            session.flush()
            branch = models.Branch(task_id=task.id, created_at=T0)
            session.add(branch)
            session.flush()
            for person in members:
                session.add(models.BranchMember(branch_id=branch.id, person_id=person.id))
        assert carol.id is not None
        return carol.id


def magic_link(store: Context, web_server: WebServer, person_id: int, next_path: str = "/") -> str:
    return f"{web_server.base_url}/auth/magic/{store.links.make_login(person_id, next_path)}"


def csrf_token(page: httpx.Response) -> str:
    match = CSRF_FIELD.search(page.text)
    assert match, page.text
    return match.group(1)


def sign_in(client: httpx.Client, link: str) -> httpx.Response:
    """What a person does: open the link, press "Sign in"."""
    page = client.get(link)
    assert page.status_code == 200, page.text
    return client.post(link, data={"_csrf_token": csrf_token(page)})


def login_rows(store: Context) -> list[models.Outbox]:
    with Session(store.engine) as session:
        statement = select(models.Outbox).where(models.Outbox.kind == "login")
        return list(session.exec(statement.order_by(col(models.Outbox.id))).all())


def events(store: Context, person_id: int) -> list[str]:
    with Session(store.engine) as session:
        statement = select(models.Event.kind).where(models.Event.person_id == person_id)
        return list(session.exec(statement.order_by(col(models.Event.id))).all())


def test_get_consumes_nothing_and_post_signs_in(store, web_server, carol_id):
    link = magic_link(store, web_server, carol_id)
    with web_server.client() as client:
        first, second = client.get(link), client.get(link)
        assert first.status_code == second.status_code == 200
        assert "Sign in as carol@acme.test?" in second.text
        assert second.headers["referrer-policy"] == "no-referrer"
        answer = client.post(link, data={"_csrf_token": csrf_token(second)})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/"
        cookie = next(
            value
            for value in answer.headers.get_list("set-cookie")
            if value.startswith("qmail_session=")
        )
        assert "httponly" in cookie.lower()
        assert "samesite=lax" in cookie.lower()
        assert "secure" not in cookie.lower()  # base_url is http:// in the tests
        inbox = client.get("/")
        assert inbox.status_code == 200
        assert "Invoice for &lt;March&gt;" in inbox.text  # autoescaped
        assert "Internal budget" not in inbox.text
        assert "carol@acme.test" in inbox.text
        api = client.get("/api/tasks")
        assert api.status_code == 200
        assert [item["number"] for item in api.json()["items"]] == [1]
    assert events(store, carol_id) == ["signed_up"]


def test_spent_link_shows_the_invalid_page(store, web_server, carol_id):
    link = magic_link(store, web_server, carol_id)
    with web_server.client() as client:
        page = client.get(link)
        token = csrf_token(page)
        assert client.post(link, data={"_csrf_token": token}).status_code == 303
        again = client.post(link, data={"_csrf_token": token})
        assert again.status_code == 400
        assert INVALID in again.text
        assert 'href="/login"' in again.text
        assert client.get(link).status_code == 400


def test_tampered_link_shows_the_invalid_page(store, web_server, carol_id):
    link = magic_link(store, web_server, carol_id)
    # Not the last character: base64's last one carries spare bits that may not count.
    spot = len(link) - 10
    tampered = link[:spot] + ("A" if link[spot] != "A" else "B") + link[spot + 1 :]
    with web_server.client() as client:
        page = client.get(tampered)
        assert page.status_code == 400
        assert INVALID in page.text
        login = client.get("/login")
        answer = client.post(tampered, data={"_csrf_token": csrf_token(login)})
        assert answer.status_code == 400
        assert "qmail_session" not in client.cookies
    assert events(store, carol_id) == []


def test_expired_link_shows_the_invalid_page(store, web_server, carol_id, monkeypatch):
    ttl = store.settings.security.magic_link_ttl
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - ttl - 5)
    link = magic_link(store, web_server, carol_id)  # signed ttl + 5 seconds ago
    monkeypatch.undo()
    with web_server.client() as client:
        page = client.get(link)
        assert page.status_code == 400
        assert INVALID in page.text


def test_link_still_works_after_another_of_the_persons_links_was_spent(store, web_server, carol_id):
    older, newer = (magic_link(store, web_server, carol_id) for _ in range(2))
    with web_server.client() as client:
        assert sign_in(client, newer).status_code == 303
    with web_server.client() as client:
        answer = sign_in(client, older)
        assert answer.status_code == 303
        assert client.get("/api/tasks").status_code == 200
    assert events(store, carol_id) == ["signed_up", "signed_in"]


def test_link_lands_on_its_task(store, web_server, carol_id):
    link = magic_link(store, web_server, carol_id, "/tasks/1")
    with web_server.client() as client:
        answer = sign_in(client, link)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/tasks/1"
        page = client.get("/tasks/1")
        assert page.status_code == 200
        assert "Invoice for &lt;March&gt;" in page.text


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.test/x",
        "/\\evil.test",
        "https://evil.test/",
        "tasks/1",
        "/tasks/1\r\nSet-Cookie: x=1",
    ],
)
def test_link_naming_another_site_lands_on_the_inbox(store, web_server, carol_id, next_path):
    with web_server.client() as client:
        answer = sign_in(client, magic_link(store, web_server, carol_id, next_path))
        assert answer.status_code == 303
        assert answer.headers["location"] == "/"


def test_spent_links_older_than_the_ttl_are_purged_at_the_next_sign_in(store, web_server, carol_id):
    ttl = timedelta(seconds=store.settings.security.magic_link_ttl)
    now = datetime.now(UTC)
    with session_scope(store.engine) as session:
        for nonce, age in (("old", ttl + timedelta(hours=2)), ("recent", timedelta(minutes=5))):
            session.add(models.SpentLink(nonce=nonce, person_id=carol_id, spent_at=now - age))
    with web_server.client() as client:
        assert sign_in(client, magic_link(store, web_server, carol_id)).status_code == 303
    with Session(store.engine) as session:
        nonces = set(session.exec(select(models.SpentLink.nonce)).all())
    assert "old" not in nonces
    assert "recent" in nonces
    assert len(nonces) == 2  # "recent" and the link just spent


def test_second_sign_in_is_recorded_as_a_sign_in(store, web_server, carol_id):
    for _ in range(2):
        with web_server.client() as client:
            assert sign_in(client, magic_link(store, web_server, carol_id)).status_code == 303
    assert events(store, carol_id) == ["signed_up", "signed_in"]
    with Session(store.engine) as session:
        carol = session.get(models.Person, carol_id)
        assert carol is not None
        assert carol.last_login_at is not None


def test_two_concurrent_posts_sign_in_once(store, web_server, carol_id):
    link = magic_link(store, web_server, carol_id)
    clients = [web_server.client() for _ in range(2)]
    tokens = [csrf_token(client.get(link)) for client in clients]
    barrier, statuses = threading.Barrier(2), []

    def click(client: httpx.Client, token: str) -> None:
        barrier.wait()
        statuses.append(client.post(link, data={"_csrf_token": token}).status_code)

    pairs = zip(clients, tokens, strict=True)
    threads = [threading.Thread(target=click, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    for client in clients:
        client.close()
    assert sorted(statuses) == [303, 400]
    assert events(store, carol_id) == ["signed_up"]
    assert len(web_sessions(store, carol_id)) == 1


def test_post_without_csrf_token_is_refused(store, web_server, carol_id):
    link = magic_link(store, web_server, carol_id)
    with web_server.client() as client:
        client.get(link)  # has the CSRF cookie, but the form field is missing
        answer = client.post(link, data={})
        assert answer.status_code == 403
        assert "qmail_session" not in client.cookies
    assert events(store, carol_id) == []


def test_pages_redirect_to_login_and_api_answers_401(web_server):
    with web_server.client() as client:
        page = client.get("/")
        assert page.status_code == 303
        assert page.headers["location"] == "/login"
        api = client.get("/api/tasks")
        assert api.status_code == 401
        assert api.json() == {"error": "authentication required"}
        client.cookies.set("qmail_session", "ss_1.forged.sig")
        assert client.get("/api/tasks").status_code == 401
        assert client.get("/").headers["location"] == "/login"


def ask_for_link(client: httpx.Client, email: str) -> httpx.Response:
    page = client.get("/login")
    assert page.status_code == 200
    return client.post("/login", data={"email": email, "_csrf_token": csrf_token(page)})


def test_login_form_mails_a_working_link(store, web_server, carol_id):
    with web_server.client() as client:
        answer = ask_for_link(client, " Carol@ACME.test ")
        assert answer.status_code == 200
        assert SENT in answer.text
    rows = login_rows(store)
    assert [(row.recipient, row.state) for row in rows] == [("carol@acme.test", "pending")]
    match = LINK_IN_TEXT.search(rows[0].text)
    assert match, rows[0].text
    assert match.group(0).startswith(web_server.base_url + "/auth/magic/")
    with web_server.client() as client:
        assert sign_in(client, match.group(0)).status_code == 303
        assert "Invoice for &lt;March&gt;" in client.get("/").text


def test_unknown_address_gets_the_same_page_and_no_mail(store, web_server, carol_id):
    with web_server.client() as client:
        known = ask_for_link(client, "carol@acme.test")
        unknown = ask_for_link(client, "nobody@nowhere.test")
    assert unknown.status_code == known.status_code == 200
    assert SENT in unknown.text
    assert [row.recipient for row in login_rows(store)] == ["carol@acme.test"]


def test_login_mails_are_rate_limited_per_address(store, web_server, carol_id):
    with web_server.client() as client:
        for _ in range(LOGIN_MAILS_PER_HOUR + 2):
            answer = ask_for_link(client, "carol@acme.test")
            assert SENT in answer.text
    assert len(login_rows(store)) == LOGIN_MAILS_PER_HOUR


def test_cli_login_link_prints_a_working_link(store, web_server, carol_id, tmp_path, capsys):
    config = write_config(
        store.settings, tmp_path / "cli.toml", web={"base_url": web_server.base_url}
    )
    assert cli.main(["login-link", "carol@acme.test", "--config", config]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith(f"{web_server.base_url}/auth/magic/ml_")
    with web_server.client() as client:
        assert sign_in(client, link).status_code == 303
    assert cli.main(["login-link", "nobody@nowhere.test", "--config", config]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "no such person" in error


def web_sessions(store: Context, person_id: int) -> list[models.WebSession]:
    with Session(store.engine) as session:
        statement = select(models.WebSession).where(models.WebSession.person_id == person_id)
        return list(session.exec(statement.order_by(col(models.WebSession.id))).all())


def replay(web_server: WebServer, cookie: str) -> httpx.Client:
    """A fresh client holding a copy of someone's session cookie."""
    client = web_server.client()
    client.cookies.set("qmail_session", cookie)
    return client


def test_logout_kills_the_cookie_even_when_replayed(store, web_server, carol_id):
    with web_server.client() as client:
        assert sign_in(client, magic_link(store, web_server, carol_id)).status_code == 303
        copied = client.cookies["qmail_session"]
        inbox = client.get("/")
        assert "Sign out" in inbox.text
        answer = client.post("/logout", data={"_csrf_token": csrf_token(inbox)})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login"
        assert "qmail_session" not in client.cookies
        assert client.get("/").headers["location"] == "/login"
    with replay(web_server, copied) as thief:
        page = thief.get("/")
        assert page.status_code == 303
        assert page.headers["location"] == "/login"
        api = thief.get("/api/tasks")
        assert api.status_code == 401
        assert api.json() == {"error": "authentication required"}
    (ended,) = web_sessions(store, carol_id)
    assert ended.revoked_at is not None


def test_session_cookie_is_a_random_secret_stored_only_as_its_hash(store, web_server, carol_id):
    with web_server.client() as client:
        sign_in(client, magic_link(store, web_server, carol_id))
        cookie = client.cookies["qmail_session"]
    assert cookie.startswith("ss_")
    assert len(cookie) == 46  # ss_ + secrets.token_urlsafe(32)
    (row,) = web_sessions(store, carol_id)
    assert row.token_hash == hashlib.sha256(cookie.encode()).hexdigest()
    assert row.expires_at - row.created_at == timedelta(days=30)


def test_expired_session_is_refused(store, web_server, carol_id):
    with web_server.client() as client:
        sign_in(client, magic_link(store, web_server, carol_id))
        with session_scope(store.engine) as session:
            (row,) = session.exec(select(models.WebSession)).all()
            row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        assert client.get("/api/tasks").status_code == 401
        assert client.get("/").headers["location"] == "/login"


def test_last_seen_is_written_at_most_every_few_minutes(store, web_server, carol_id):
    long_ago = datetime(2024, 1, 1, tzinfo=UTC)
    with web_server.client() as client:
        sign_in(client, magic_link(store, web_server, carol_id))
        (signed_in,) = web_sessions(store, carol_id)
        assert client.get("/api/tasks").status_code == 200
        assert web_sessions(store, carol_id)[0].last_seen_at == signed_in.last_seen_at
        with session_scope(store.engine) as session:
            session.get(models.WebSession, signed_in.id).last_seen_at = long_ago
        assert client.get("/api/tasks").status_code == 200
        seen = web_sessions(store, carol_id)[0].last_seen_at
        assert seen > signed_in.last_seen_at
        assert client.get("/api/tasks").status_code == 200
        assert web_sessions(store, carol_id)[0].last_seen_at == seen


def test_session_cookie_is_secure_behind_https(settings):
    https = settings.replace(web={"base_url": "https://tasks.example.com"})
    cookie = session_cookie(https, "ss_secret")
    assert cookie.secure and cookie.httponly and cookie.samesite == "lax"
    assert cookie.value == "ss_secret"
    assert cookie.max_age == 30 * 24 * 3600
