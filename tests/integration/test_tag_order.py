"""A tag's tasks come newest activity first, read from ``tasktag(tag_id, updated_at,
task_id)``: the copy of each task's ``updated_at`` that the database keeps in ``tasktag``
(migration 0011's triggers) must follow every change of the task, or the list would come
in the wrong order.  Driven through the real web server's API as a team member; runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlmodel import Session, col, select

from qmail import models
from qmail.auth.api_tokens import create_api_token
from qmail.context import Context
from qmail.db import alembic_config, migrate, session_scope
from tests.integration.conftest import WebServer

ALICE = "alice@example.com"


def numbers(web_server: WebServer, token: str, query: str) -> list[int]:
    """The task numbers of every page of ``GET /api/tasks?query``, one task a page."""
    found, url = [], f"/api/tasks?limit=1&{query}"
    with web_server.client(token) as http:
        while url:
            answer = http.get(url)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            found += [item["number"] for item in body["items"]]
            cursor = body["next_cursor"]
            url = f"/api/tasks?limit=1&{query}&cursor={cursor}" if cursor else ""
    return found


def copies_follow_tasks(store: Context) -> None:
    """Every ``tasktag`` row carries its task's ``updated_at``."""
    with Session(store.engine) as session:
        rows = session.exec(
            select(models.TaskTag.updated_at, models.Task.updated_at).join(
                models.Task, col(models.Task.id) == models.TaskTag.task_id
            )
        ).all()
    assert rows and all(copy == updated for copy, updated in rows), rows


def test_a_tags_tasks_follow_their_activity(
    store: Context, web_server: WebServer, team: dict[str, int]
) -> None:
    with session_scope(store.engine) as session:
        alice = session.exec(select(models.Person).where(models.Person.email == ALICE)).one()
        token = create_api_token(session, alice)
    with web_server.client(token) as http:
        for n in (1, 2, 3, 4):
            tags = ["billing"] if n != 3 else ["other"]
            new = {"to": [f"client{n}@acme.test"], "title": f"T{n}", "text": "Hi", "tags": tags}
            assert http.post("/api/tasks", json=new).status_code == 201
    assert numbers(web_server, token, "tag=billing") == [4, 2, 1]
    copies_follow_tasks(store)

    with web_server.client(token) as http:
        detail = http.get("/api/tasks/1").json()
        reply = {"branch_id": detail["branches"][0]["id"], "text": "News"}
        assert http.post("/api/tasks/1/messages", json=reply).status_code == 201
        assert numbers(web_server, token, "tag=billing") == [1, 4, 2], "task 1 moved up"
        # tagged later: the row takes the task's time, then follows it
        assert http.patch("/api/tasks/3", json={"add_tags": ["billing"]}).status_code == 200
        assert http.post("/api/tasks/2/messages", json={
            "branch_id": http.get("/api/tasks/2").json()["branches"][0]["id"], "text": "Up",
        }).status_code == 201  # fmt: skip
        assert http.patch("/api/tasks/4", json={"status": "closed"}).status_code == 200
    with Session(store.engine) as session:
        order = session.exec(
            select(models.Task.number)
            .where(col(models.Task.number).in_([1, 2, 3, 4]))
            .order_by(col(models.Task.updated_at).desc(), col(models.Task.id).desc())
        ).all()
    assert numbers(web_server, token, "tag=billing") == list(order)
    assert numbers(web_server, token, "tag=billing&status=open") == [n for n in order if n != 4]
    copies_follow_tasks(store)
    with web_server.client(token) as http:
        page = http.get("/api/tasks?tag=billing&limit=2").json()
    assert (page["total"], page["total_exact"]) == (4, True)
    assert [item["number"] for item in page["items"]] == list(order)[:2]


def test_migration_0011_copies_each_tagged_tasks_activity(
    store: Context, web_server: WebServer, team: dict[str, int]
) -> None:
    with session_scope(store.engine) as session:
        alice = session.exec(select(models.Person).where(models.Person.email == ALICE)).one()
        token = create_api_token(session, alice)
    with web_server.client(token) as http:
        for n in (1, 2, 3):
            new = {"to": [f"c{n}@acme.test"], "title": f"T{n}", "text": "Hi", "tags": ["billing"]}
            assert http.post("/api/tasks", json=new).status_code == 201
    command.downgrade(alembic_config(store.engine), "0010")
    with session_scope(store.engine) as session:  # older activity for task 3, untracked
        task = session.exec(select(models.Task).where(models.Task.number == 3)).one()
        task.updated_at = task.updated_at - timedelta(days=1)
    migrate(store.engine)
    copies_follow_tasks(store)
    assert numbers(web_server, token, "tag=billing") == [2, 1, 3]
