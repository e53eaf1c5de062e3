"""The inbox as a team would use it: filters that combine and page, rows that say who wrote
and what, unread marks, saved views; and what a client must never see there.

The world is written straight into the database (as ``test_api.py`` does):

- #1 "Invoice missing a line" [billing], Carol's (acme.test), assigned to Alice; Alice
  answered; a hidden branch of Alice and Erin holds the newest message (``SECRET``).
- #2 "Shipping delay" [shipping], Dave's (globex.test), assigned to Bob.
- #3 "Old question" [billing], Carol's, closed, nobody assigned.
- #4 "Second globex thing", Dave's, nobody assigned.

Alice, Bob and Erin are the team (example.com); Bob is on every main branch, Erin only in
the hidden one.  Newest activity first: #4, #3, #2, #1.  Pages are read in-process
(``web_app``) with a bearer token; saved views are forms, so a signed-in browser client
(``web_server``, cookie and CSRF token) posts them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import Reader
from qmail.auth.api_tokens import create_api_token
from qmail.context import Context
from qmail.db import session_scope
from qmail.queries import views
from qmail.queries.inbox import mark_read
from qmail.web import inbox
from tests.integration.conftest import InProcessWeb
from tests.integration.test_api import _branch, _message, _person, _task
from tests.integration.test_pages import post_form, signed_in

SECRET = "Between us: the discount stays internal"
ROW = re.compile(r'<tr class="row( unread)?" data-row>.*?data-open href="/tasks/(\d+)"', re.S)


@pytest.fixture
def tokens(store: Context) -> dict[str, str]:
    with session_scope(store.engine) as session:
        alice = _person(session, "alice@example.com", "Alice Team")
        bob = _person(session, "bob@example.com", "Bob Team")
        erin = _person(session, "erin@example.com", "Erin Team")
        carol = _person(session, "carol@acme.test", "Carol Client")
        dave = _person(session, "dave@globex.test", "Dave Client")
        invoice = _task(session, 1, "Invoice missing a line", "open", ["billing"], 1)
        main = _branch(session, invoice, [carol, alice, bob])
        _message(session, main, carol, "The invoice 2024-17 lacks the licences", 1)
        _message(session, main, alice, "We will fix the walrus invoice today", 2)
        hidden = _branch(session, invoice, [alice, erin], parent=main)
        _message(session, hidden, erin, SECRET, 3)
        shipping = _task(session, 2, "Shipping delay", "open", ["shipping"], 2)
        _message(session, _branch(session, shipping, [dave, alice, bob]), dave, "Parcel?", 4)
        old = _task(session, 3, "Old question", "closed", ["billing"], 3)
        _message(session, _branch(session, old, [carol, alice, bob]), carol, "Solved", 5)
        second = _task(session, 4, "Second globex thing", "open", [], 4)
        _message(session, _branch(session, second, [dave, alice, bob]), dave, "Also this", 6)
        for task, opener, assignee in (
            (invoice, carol, alice),
            (shipping, dave, bob),
            (old, carol, None),
            (second, dave, None),
        ):
            task.created_by_id, task.assignee_id = opener.id, assignee and assignee.id
        people = {"alice": alice, "bob": bob, "erin": erin, "carol": carol, "dave": dave}
        return {name: create_api_token(session, person) for name, person in people.items()}


def page(web_app: InProcessWeb, token: str, url: str, status: int = 200) -> str:
    with web_app.client(token) as client:
        answer = client.get(url, follow_redirects=False)
    assert answer.status_code == status, answer.text
    return answer.text


def rows(html: str) -> list[int]:
    """The task numbers of an inbox page, in the order shown."""
    return [int(number) for _, number in ROW.findall(html)]


def unread(html: str) -> list[int]:
    return [int(number) for mark, number in ROW.findall(html) if mark]


def row_of(html: str, number: int) -> str:
    """The HTML of task ``number``'s row."""
    found = re.search(
        rf'<tr class="row[^"]*" data-row>((?:(?!</tr>).)*?/tasks/{number}".*?)</tr>', html, re.S
    )
    assert found, f"no row for #{number}"
    return found.group(1)


def next_link(html: str) -> str | None:
    found = re.search(r'<a rel="next" href="([^"]+)">Older tasks', html)
    return found.group(1).replace("&amp;", "&") if found else None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/", [4, 3, 2, 1]),
        ("/?tag=billing", [3, 1]),
        ("/?tag=%23Billing", [3, 1]),
        ("/?status=open", [4, 2, 1]),
        ("/?status=closed", [3]),
        ("/?assignee=mine", [1]),
        ("/?assignee=unassigned", [4, 3]),
        ("/?assignee=bob%40example.com", [2]),
        ("/?participant=carol%40acme.test", [3, 1]),
        ("/?participant=erin%40example.com", [1]),
        ("/?company=globex.test", [4, 2]),
        ("/?q=walrus", [1]),
        ("/?q=parcel", [2]),
        ("/?tag=billing&status=open", [1]),
        ("/?company=acme.test&status=closed", [3]),
        ("/?company=globex.test&assignee=unassigned", [4]),
        ("/?q=invoice&assignee=mine&tag=billing", [1]),
        ("/?q=invoice&status=closed", []),
        ("/?tag=nothing-has-it", []),
    ],
)
def test_each_filter_and_their_combinations_keep_the_right_tasks(web_app, tokens, url, expected):
    html = page(web_app, tokens["alice"], url)
    assert rows(html) == expected
    if not expected:
        assert "No task matches these filters" in html


def test_a_teammate_outside_a_hidden_branch_cannot_find_its_members(web_app, tokens):
    assert rows(page(web_app, tokens["bob"], "/?participant=erin%40example.com")) == []
    assert rows(page(web_app, tokens["erin"], "/?participant=erin%40example.com")) == [1]


def test_rows_link_to_the_inbox_filtered_by_what_they_show(web_app, tokens):
    row = row_of(page(web_app, tokens["alice"], "/?status=open"), 1)
    assert '<a class="tag" href="/?tag=billing&amp;status=open">billing</a>' in row
    assert 'href="/?status=open&amp;assignee=alice%40example.com"' in row and "Alice Team" in row
    assert 'href="/?status=open&amp;participant=carol%40acme.test"' in row and "Carol Client" in row
    assert 'href="/?status=open&amp;company=acme.test"' in row
    followed = page(web_app, tokens["alice"], "/?status=open&tag=billing")
    assert rows(followed) == [1]


def test_active_filters_each_have_a_link_that_clears_it(web_app, tokens):
    html = page(web_app, tokens["alice"], "/?tag=billing&status=open&q=invoice")
    clears = re.findall(
        r'<a href="([^"]+)" class="clear"[^>]*aria-label="Clear the filter (\w+)', html
    )
    assert [(name, link.replace("&amp;", "&")) for link, name in clears] == [
        ("q", "/?tag=billing&status=open"),
        ("tag", "/?q=invoice&status=open"),
        ("status", "/?q=invoice&tag=billing"),
    ]
    assert '<li><a href="/">Clear all</a></li>' in html
    # the search box keeps the other filters
    assert '<input type="hidden" name="tag" value="billing">' in html


def test_each_row_shows_sender_last_author_snippet_assignee_and_time(web_app, tokens, store):
    with session_scope(store.engine) as session:
        task = session.exec(select(models.Task).where(models.Task.number == 2)).one()
        task.updated_at = datetime.now(UTC) - timedelta(hours=3, minutes=5)
        moment = task.updated_at
    row = row_of(page(web_app, tokens["bob"], "/"), 2)
    assert "Dave Client" in row and "@globex.test" in row
    assert '<p class="excerpt">Parcel?</p>' in row
    assert "Bob Team" in row and "status-open" in row
    assert f'<time datetime="{moment.isoformat()}"' in row
    assert f'title="{moment.strftime("%Y-%m-%d %H:%M")} UTC">3 h ago</time>' in row


def test_snippet_and_last_author_never_come_from_a_hidden_branch_they_cannot_read(web_app, tokens):
    for outsider in ("carol", "bob"):
        html = page(web_app, tokens[outsider], "/")
        row = row_of(html, 1)
        assert '<p class="excerpt">We will fix the walrus invoice today</p>' in row
        assert "last: " in row and "Alice Team" in row
        assert SECRET not in html and "Erin Team" not in row
    for member in ("alice", "erin"):
        row = row_of(page(web_app, tokens[member], "/"), 1)
        assert f'<p class="excerpt">{SECRET}</p>' in row and "Erin Team" in row


def test_clients_see_their_own_tasks_and_never_the_teams_tags(web_app, tokens):
    html = page(web_app, tokens["carol"], "/")
    assert rows(html) == [3, 1]
    assert 'class="tag"' not in html and "billing" not in html
    assert 'id="assignee"' not in html  # the team's assignee filter
    page(web_app, tokens["carol"], "/?tag=shipping", status=400)  # as the API answers
    assert rows(page(web_app, tokens["carol"], "/?company=globex.test")) == []
    assert rows(page(web_app, tokens["carol"], "/?participant=dave%40globex.test")) == []
    assert rows(page(web_app, tokens["dave"], "/?q=walrus")) == []


def test_a_status_that_is_not_one_is_a_bad_request(web_app, tokens):
    page(web_app, tokens["alice"], "/?status=everything", status=400)


def test_paging_keeps_the_filters(web_app, tokens, monkeypatch):
    monkeypatch.setattr(inbox, "INBOX_SIZE", 1)
    for url, expected in (
        ("/?status=open", [4, 2, 1]),
        ("/?tag=billing", [3, 1]),
        ("/?status=open&company=globex.test", [4, 2]),
        ("/?q=invoice", [1]),
    ):
        shown, link = [], url
        while link is not None:
            html = page(web_app, tokens["alice"], link)
            shown += rows(html)
            link = next_link(html)
            if link:
                filters = url.removeprefix("/?")
                assert link.startswith(f"/?{filters}&cursor="), link
        assert shown == expected, url


def test_a_task_is_unread_until_opened_and_hidden_activity_marks_it_for_its_members_only(
    web_app, tokens, store
):
    # Nobody has opened anything: each task with a message by someone else is unread.
    assert unread(page(web_app, tokens["carol"], "/")) == [1]  # #3 holds her own message only
    assert unread(page(web_app, tokens["bob"], "/")) == [4, 3, 2, 1]
    for name in ("carol", "bob", "erin"):
        page(web_app, tokens[name], "/tasks/1")
        assert 1 not in unread(page(web_app, tokens[name], "/")), name
    with session_scope(store.engine) as session:  # Alice writes in the hidden branch
        alice = session.exec(select(models.Person).where(models.Person.id == 1)).one()
        hidden = session.exec(
            select(models.Branch).where(col(models.Branch.hidden).is_(True))
        ).one()
        _message(session, hidden, alice, "Erin, a word about the discount", 20)
    assert 1 in unread(page(web_app, tokens["erin"], "/"))
    assert 1 not in unread(page(web_app, tokens["carol"], "/"))
    assert 1 not in unread(page(web_app, tokens["bob"], "/"))
    with session_scope(store.engine) as session:  # then in the main discussion
        alice = session.exec(select(models.Person).where(models.Person.id == 1)).one()
        main = session.exec(select(models.Branch).where(models.Branch.id == 1)).one()
        _message(session, main, alice, "Fixed, see the new invoice", 21)
    assert 1 in unread(page(web_app, tokens["carol"], "/"))
    assert unread(page(web_app, tokens["carol"], "/")) == [1]


def test_reading_never_moves_back(store, tokens):
    now = datetime.now(UTC)
    with Session(store.engine) as session:
        carol = session.get(models.Person, 4)
        assert carol is not None
        reader = Reader(carol, False)
        assert mark_read(session, reader, 1, 2, now) is True
        session.commit()
        later = now + timedelta(hours=1)
        assert mark_read(session, reader, 1, 1, later) is False  # an older page
        assert mark_read(session, reader, 1, 2, later) is False  # the same again: no write
        session.commit()
        read = session.exec(select(models.TaskRead)).one()
        assert (read.person_id, read.task_id, read.message_id, read.read_at) == (4, 1, 2, now)


def test_views_show_capped_counts_of_open_tasks(web_app, tokens, monkeypatch):
    views_nav = re.compile(
        r'<a href="([^"]*)"(?: aria-current="page")?>(\w+) <span class="count">([^<]+)</span>'
    )
    html = page(web_app, tokens["alice"], "/")
    found = [(name, count) for _, name, count in views_nav.findall(html)]
    assert found == [("Mine", "1"), ("Unassigned", "1"), ("Open", "3"), ("All", "3")]
    assert '<span class="count">3 open</span>' in html
    monkeypatch.setattr(views, "COUNT_CAP", 2)
    html = page(web_app, tokens["alice"], "/?status=open")
    assert ("Open", "2+") in [(name, count) for _, name, count in views_nav.findall(html)]
    assert 'aria-current="page">Open' in html
    client = page(web_app, tokens["carol"], "/")
    assert [name for _, name, _ in views_nav.findall(client)] == ["Open", "All"]


def test_a_person_saves_a_view_and_deletes_it(store, tokens, web_server):
    with signed_in(store, web_server, "alice@example.com") as alice:
        fields = {"name": "Billing to do", "tag": "billing", "status": "open"}
        answer = post_form(alice, "/views", fields, page="/?tag=billing&status=open")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/?tag=billing&status=open"
        html = alice.get("/").text
        assert (
            '<a href="/?tag=billing&amp;status=open">Billing to do <span class="count">1</span>'
            in html
        )
        with Session(store.engine) as session:
            view = session.exec(select(models.SavedView)).one()
            assert (view.name, view.query) == ("Billing to do", "tag=billing&status=open")
        with signed_in(store, web_server, "bob@example.com") as bob:
            assert "Billing to do" not in bob.get("/").text
            assert post_form(bob, f"/views/{view.id}/delete", {}, page="/").status_code == 404
        assert post_form(alice, f"/views/{view.id}/delete", {}, page="/").status_code == 303
        assert "Billing to do" not in alice.get("/").text


def test_saving_a_view_without_the_csrf_token_is_refused(store, tokens, web_server):
    with signed_in(store, web_server, "alice@example.com") as alice:
        answer = alice.post("/views", data={"name": "Sneaky", "status": "open"})
        assert answer.status_code == 403
        alice.get("/")
        assert alice.post("/views", data={"name": "Sneaky", "status": "open"}).status_code == 403
    with Session(store.engine) as session:
        assert session.exec(select(models.SavedView)).all() == []


def test_a_clients_saved_view_cannot_hold_a_tag(store, tokens, web_server):
    with signed_in(store, web_server, "carol@acme.test") as carol:
        fields = {"name": "Mine", "tag": "billing", "status": "closed"}
        assert post_form(carol, "/views", fields, page="/").status_code == 400
        del fields["tag"]
        assert post_form(carol, "/views", fields, page="/").status_code == 303
    with Session(store.engine) as session:
        assert session.exec(select(models.SavedView.query)).one() == "status=closed"
