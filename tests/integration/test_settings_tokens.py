"""API tokens and the activity feed link, managed on ``/settings`` in a signed-in browser.

Carol (a client) and Alice (team) sign in by magic link over real uvicorn + httpx (a
cookie and the page's CSRF token, as a browser sends them); the tokens they make are then
used as a script would, ``Authorization: Bearer``, against the same server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import pytest
from sqlmodel import Session, col, select

from qmail import cli, models
from qmail.auth.api_tokens import create_api_token, hash_token
from qmail.context import Context
from qmail.db import session_scope
from tests.integration.conftest import WebServer
from tests.integration.test_auth import add_carol_and_alice, csrf_token, magic_link, sign_in
from tests.integration.test_cli import write_config

CAROL, ALICE = "carol@acme.test", "alice@example.com"
NEW_TOKEN = re.compile(r'id="new-token-value" class="token-value" readonly value="(qm_[^"]+)"')
FEED_URL = re.compile(r'id="feed-url" class="token-value" readonly value="([^"]+)"')


@pytest.fixture
def people(store: Context) -> dict[str, int]:
    carol_id = add_carol_and_alice(store)
    with Session(store.engine) as session:
        alice_id = session.exec(select(models.Person.id).where(models.Person.email == ALICE)).one()
    assert alice_id is not None
    return {CAROL: carol_id, ALICE: alice_id}


@contextmanager
def signed_in(
    store: Context, web_server: WebServer, people: dict[str, int], email: str
) -> Iterator[httpx.Client]:
    with web_server.client() as client:
        assert sign_in(client, magic_link(store, web_server, people[email])).status_code == 303
        yield client


def submit(client: httpx.Client, action: str, **fields: str) -> httpx.Response:
    """Post a form of the settings page, with the CSRF token the page carries."""
    token = csrf_token(client.get("/settings"))
    return client.post(action, data={**fields, "_csrf_token": token})


def make_token(client: httpx.Client, name: str) -> str:
    answer = submit(client, "/settings/tokens", name=name)
    assert answer.status_code == 200, answer.text
    found = NEW_TOKEN.search(answer.text)
    assert found, answer.text
    assert f"Your new token “{name}”" in unescape(answer.text)
    return found.group(1)


def token_ids(store: Context, email: str) -> list[int]:
    with Session(store.engine) as session:
        rows = session.exec(
            select(models.ApiToken.id)
            .join(models.Person, col(models.Person.id) == models.ApiToken.person_id)
            .where(models.Person.email == email)
        ).all()
    return [row for row in rows if row is not None]


def api_status(web_server: WebServer, token: str) -> int:
    with web_server.client(token) as script:
        return script.get("/api/tasks").status_code


def test_a_token_made_on_settings_works_is_listed_by_name_and_dies_when_revoked(
    store, web_server, people
):
    with signed_in(store, web_server, people, CAROL) as carol:
        assert "You have no API token." in carol.get("/settings").text
        token = make_token(carol, "Invoice exporter")
        with web_server.client(token) as script:
            tasks = script.get("/api/tasks")
        assert tasks.status_code == 200
        assert [task["number"] for task in tasks.json()["items"]] == [1]  # Carol's only
        listing = carol.get("/settings").text
        [token_id] = token_ids(store, CAROL)
        row = re.search(rf'<tr id="api-token-{token_id}">(.*?)</tr>', listing, re.S)
        assert row and "Invoice exporter" in row.group(1) and "never" not in row.group(1)  # used
        assert token not in listing and token[3:20] not in listing  # never shown again
        answer = submit(carol, f"/settings/tokens/{token_id}/revoke")
        assert answer.status_code == 303 and answer.headers["location"] == "/settings#api-tokens"
        assert api_status(web_server, token) == 401  # at once
        assert "Invoice exporter" not in carol.get("/settings").text
        assert submit(carol, f"/settings/tokens/{token_id}/revoke").status_code == 404
    with Session(store.engine) as session:
        stored = session.get(models.ApiToken, token_id)
        assert stored is not None and stored.token_hash == hash_token(token)
        assert stored.revoked_at is not None and stored.name == "Invoice exporter"


def test_another_person_cannot_revoke_or_see_your_token(store, web_server, people):
    with signed_in(store, web_server, people, CAROL) as carol:
        token = make_token(carol, "Carol's laptop script")
    [token_id] = token_ids(store, CAROL)
    with signed_in(store, web_server, people, ALICE) as alice:
        assert "Carol&#39;s laptop script" not in alice.get("/settings").text
        refused = submit(alice, f"/settings/tokens/{token_id}/revoke")
        assert refused.status_code == 404
        assert f"no API token {token_id}" in refused.text
    assert api_status(web_server, token) == 200


def test_token_forms_need_a_name_and_the_csrf_token(store, web_server, people):
    with signed_in(store, web_server, people, CAROL) as carol:
        assert submit(carol, "/settings/tokens", name="   ").status_code == 400
        assert submit(carol, "/settings/tokens", name="x" * 101).status_code == 400
        assert carol.post("/settings/tokens", data={"name": "forged"}).status_code == 403
        with session_scope(store.engine) as session:
            cli_token = create_api_token(session, session.get(models.Person, people[CAROL]))
        [token_id] = token_ids(store, CAROL)
        assert carol.post(f"/settings/tokens/{token_id}/revoke").status_code == 403
        assert "(no name)" in carol.get("/settings").text  # made by `qmail token create`
    assert token_ids(store, CAROL) == [token_id]
    assert api_status(web_server, cli_token) == 200


def test_last_use_is_written_every_few_minutes_not_on_every_call(store, web_server, people):
    with session_scope(store.engine) as session:
        token = create_api_token(session, session.get(models.Person, people[CAROL]), "cron")
    assert api_status(web_server, token) == 200
    with Session(store.engine) as session:
        first = session.exec(select(models.ApiToken)).one().last_used_at
    assert first is not None
    assert api_status(web_server, token) == 200
    with session_scope(store.engine) as session:
        row = session.exec(select(models.ApiToken)).one()
        assert row.last_used_at == first  # the second call wrote nothing
        row.last_used_at = first - timedelta(minutes=6)
    assert api_status(web_server, token) == 200
    with Session(store.engine) as session:
        last = session.exec(select(models.ApiToken)).one().last_used_at
    assert last is not None and last > first - timedelta(minutes=1)
    assert last <= datetime.now(UTC)


def feed_link(client: httpx.Client) -> str:
    found = FEED_URL.search(client.get("/settings").text)
    assert found
    return unescape(found.group(1))


def test_feed_link_is_made_replaced_and_turned_off_on_settings(store, web_server, people):
    with signed_in(store, web_server, people, CAROL) as carol:
        assert "Make a feed link" in carol.get("/settings").text
        assert submit(carol, "/settings/feed").status_code == 303
        first = feed_link(carol)
        assert first.startswith(f"{web_server.base_url}/activity.atom?token=fd_")
        token = first.split("token=", 1)[1]
        view = carol.get("/activity?kind=messages").text  # the same link, with the filters
        assert f"{web_server.base_url}/activity.atom?kind=messages&amp;token={token}" in view
        with httpx.Client(timeout=10) as reader:  # a feed reader: no cookie, no token header
            assert reader.get(first).status_code == 200
            assert submit(carol, "/settings/feed").status_code == 303
            second = feed_link(carol)
            assert second != first
            assert reader.get(first).status_code == 404
            assert reader.get(second).status_code == 200
            assert submit(carol, "/settings/feed/off").status_code == 303
            assert reader.get(second).status_code == 404
        assert "Make a feed link" in carol.get("/settings").text
        assert carol.post("/settings/feed", data={}).status_code == 403


def test_a_token_named_by_the_cli_is_listed_and_revocable_on_settings(
    store, web_server, people, tmp_path, capsys
):
    config = write_config(store.settings, tmp_path / "cli.toml")
    assert cli.main(["token", "create", CAROL, "--name", "nightly export", "--config", config]) == 0
    token = capsys.readouterr().out.strip()
    assert api_status(web_server, token) == 200
    [token_id] = token_ids(store, CAROL)
    with signed_in(store, web_server, people, CAROL) as carol:
        row = re.search(
            rf'<tr id="api-token-{token_id}">(.*?)</tr>', carol.get("/settings").text, re.S
        )
        assert row and "nightly export" in row.group(1)
        assert submit(carol, f"/settings/tokens/{token_id}/revoke").status_code == 303
    assert api_status(web_server, token) == 401
