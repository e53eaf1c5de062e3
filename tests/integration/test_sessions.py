"""Listing and ending sessions: ``qmail session list|revoke`` and the ``/settings`` page.

Carol (a client) and Alice (team) sign in by magic link over real uvicorn + httpx; each
browser is an httpx client with its own cookie jar and User-Agent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlmodel import Session, select

from qmail import cli, models
from qmail.context import Context
from tests.integration.conftest import WebServer
from tests.integration.test_auth import (
    add_carol_and_alice,
    csrf_token,
    magic_link,
    replay,
    sign_in,
    web_sessions,
)
from tests.integration.test_cli import write_config

CAROL, ALICE = "carol@acme.test", "alice@example.com"
Browser = Callable[[int, str], httpx.Client]


@pytest.fixture
def carol_id(store: Context) -> int:
    return add_carol_and_alice(store)


@pytest.fixture
def alice_id(store: Context, carol_id: int) -> int:
    with Session(store.engine) as session:
        found = session.exec(select(models.Person.id).where(models.Person.email == ALICE)).one()
    assert found is not None
    return found


@pytest.fixture
def browser(store: Context, web_server: WebServer) -> Iterator[Browser]:
    """``browser(person_id, user_agent)``: a client signed in by magic link, closed at the end."""
    clients: list[httpx.Client] = []

    def open_browser(person_id: int, user_agent: str) -> httpx.Client:
        client = web_server.client()
        clients.append(client)
        client.headers["user-agent"] = user_agent
        assert sign_in(client, magic_link(store, web_server, person_id)).status_code == 303
        return client

    yield open_browser
    for client in clients:
        client.close()


@pytest.fixture
def config(store: Context, tmp_path, web_server: WebServer) -> str:
    return write_config(
        store.settings, tmp_path / "cli.toml", web={"base_url": web_server.base_url}
    )


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# --- qmail session list | revoke -------------------------------------------------------


def test_cli_lists_a_persons_sessions_with_their_state(store, browser, carol_id, config, capsys):
    laptop = browser(carol_id, "Laptop Firefox")
    phone = browser(carol_id, "Phone Safari")
    first, second = (row.id for row in web_sessions(store, carol_id))
    status, out, _ = run(capsys, "session", "list", CAROL, "--config", config)
    assert status == 0
    lines = [line.split("\t") for line in out.splitlines()]
    assert [(line[0], line[1], line[4]) for line in lines] == [
        (str(second), "active", "Phone Safari"),
        (str(first), "active", "Laptop Firefox"),
    ]
    assert all(len(line) == 5 for line in lines)
    laptop.post("/logout", data={"_csrf_token": csrf_token(laptop.get("/"))})
    status, out, _ = run(capsys, "session", "list", CAROL, "--config", config)
    assert [line.split("\t")[1] for line in out.splitlines()] == ["active", "revoked"]
    assert phone.get("/api/tasks").status_code == 200


def test_cli_revokes_one_session_then_all(store, browser, carol_id, config, capsys):
    laptop = browser(carol_id, "Laptop")
    phone = browser(carol_id, "Phone")
    tablet = browser(carol_id, "Tablet")
    laptop_id = web_sessions(store, carol_id)[0].id
    status, out, _ = run(capsys, "session", "revoke", CAROL, str(laptop_id), "--config", config)
    assert (status, out) == (0, f"revoked 1 session of {CAROL}\n")
    assert laptop.get("/api/tasks").status_code == 401
    assert phone.get("/api/tasks").status_code == 200
    status, out, _ = run(capsys, "session", "revoke", CAROL, "--config", config)
    assert (status, out) == (0, f"revoked 2 sessions of {CAROL}\n")
    assert [client.get("/api/tasks").status_code for client in (phone, tablet)] == [401, 401]
    assert all(row.revoked_at is not None for row in web_sessions(store, carol_id))


def test_cli_session_errors_are_one_line(store, browser, alice_id, config, capsys):
    alice = browser(alice_id, "Alice's browser")
    (alices,) = web_sessions(store, alice_id)
    for argv, message in (
        (["session", "list", "nobody@nowhere.test"], "no such person: nobody@nowhere.test"),
        (["session", "revoke", "nobody@nowhere.test"], "no such person: nobody@nowhere.test"),
        (["session", "revoke", CAROL, "999"], f"no session 999 for {CAROL}"),
        (["session", "revoke", CAROL, str(alices.id)], f"no session {alices.id} for {CAROL}"),
    ):
        status, out, err = run(capsys, *argv, "--config", config)
        assert (status, out) == (1, "")
        assert err.count("\n") == 1
        assert message in err
    assert alice.get("/api/tasks").status_code == 200  # Carol's attempt left it alone


def test_cli_lists_nobody_signed_in(store, carol_id, config, capsys):
    status, out, _ = run(capsys, "session", "list", CAROL, "--config", config)
    assert (status, out) == (0, f"no sessions for {CAROL}\n")


# --- /settings ---------------------------------------------------------------------------


def test_settings_page_lists_own_active_sessions_and_marks_this_one(
    store, browser, carol_id, alice_id
):
    laptop = browser(carol_id, "Laptop <Firefox>")
    phone = browser(carol_id, "Phone")
    browser(alice_id, "Alice-Browser")
    phone.post("/logout", data={"_csrf_token": csrf_token(phone.get("/"))})
    page = laptop.get("/settings")
    assert page.status_code == 200
    assert 'href="/settings"' in page.text  # linked from the header
    assert "Laptop &lt;Firefox&gt;" in page.text  # autoescaped
    assert "Phone" not in page.text  # signed out: no longer listed
    assert "Alice-Browser" not in page.text
    assert page.text.count("this browser") == 1
    (laptop_row,) = [row for row in web_sessions(store, carol_id) if row.revoked_at is None]
    assert f'action="/settings/sessions/{laptop_row.id}/revoke"' in page.text


def test_settings_page_revokes_another_of_ones_own_sessions(store, web_server, browser, carol_id):
    laptop = browser(carol_id, "Laptop")
    phone = browser(carol_id, "Phone")
    copied = phone.cookies["qmail_session"]
    phone_id = web_sessions(store, carol_id)[1].id
    page = laptop.get("/settings")
    answer = laptop.post(
        f"/settings/sessions/{phone_id}/revoke", data={"_csrf_token": csrf_token(page)}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/settings"
    assert phone.get("/api/tasks").status_code == 401
    with replay(web_server, copied) as thief:
        assert thief.get("/").headers["location"] == "/login"
    assert laptop.get("/api/tasks").status_code == 200
    assert "Phone" not in laptop.get("/settings").text


def test_settings_page_revoking_this_browser_signs_it_out(store, browser, carol_id):
    laptop = browser(carol_id, "Laptop")
    (own,) = web_sessions(store, carol_id)
    page = laptop.get("/settings")
    answer = laptop.post(
        f"/settings/sessions/{own.id}/revoke", data={"_csrf_token": csrf_token(page)}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    assert "qmail_session" not in laptop.cookies
    assert web_sessions(store, carol_id)[0].revoked_at is not None


def test_settings_page_cannot_touch_another_persons_session(store, browser, carol_id, alice_id):
    carol = browser(carol_id, "Carol's browser")
    alice = browser(alice_id, "Alice's browser")
    (alices,) = web_sessions(store, alice_id)
    token = csrf_token(carol.get("/settings"))
    for session_id in (alices.id, 999_999):
        answer = carol.post(f"/settings/sessions/{session_id}/revoke", data={"_csrf_token": token})
        assert answer.status_code == 404
        assert "Alice" not in answer.text
    assert web_sessions(store, alice_id)[0].revoked_at is None
    assert alice.get("/api/tasks").status_code == 200


def test_settings_page_needs_a_signed_in_person_and_a_csrf_token(
    store, web_server, browser, carol_id
):
    with web_server.client() as stranger:
        page = stranger.get("/settings")
        assert page.status_code == 303
        assert page.headers["location"] == "/login"
    carol = browser(carol_id, "Laptop")
    (own,) = web_sessions(store, carol_id)
    assert carol.post(f"/settings/sessions/{own.id}/revoke", data={}).status_code == 403
    assert web_sessions(store, carol_id)[0].revoked_at is None
