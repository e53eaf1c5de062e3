"""Search and long lists: the search page, ranked and highlighted, and pages of pages.

The world is written straight into the database (as ``test_api.py`` does): Carol (a
client) and Alice (the team) on tasks about invoices; a hidden branch of Alice's; filler
tasks, so that a word in every task is no word worth ranking by.  Pages are read
in-process (``web_app``), signed in with a bearer token.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from qmail import models
from qmail.auth.api_tokens import create_api_token
from qmail.context import Context
from qmail.db import session_scope
from qmail.queries import search
from qmail.queries.contacts import TASKS_PAGE
from qmail.queries.events import ACTIVITY_SIZE
from qmail.queries.search import PAGE_SIZE
from qmail.threads import acquaintances
from qmail.web.inbox import INBOX_SIZE
from tests.integration.conftest import InProcessWeb
from tests.integration.test_api import T0, _branch, _message, _person, _task, numbers

HOSTILE = "Zanzibar <script>alert(1)</script> <b>bold</b> \x02 odd \x03\x03 markers"


@pytest.fixture
def tokens(store: Context) -> dict[str, str]:
    with session_scope(store.engine) as session:
        alice = _person(session, "alice@example.com", "Alice Team")
        bob = _person(session, "bob@example.com", "Bob Team")
        carol = _person(session, "carol@acme.test", "Carol Client")
        title = _task(session, 1, "Zanzibar shipment", "open", [], 1)
        _message(session, _branch(session, title, [carol, alice]), carol, "Where is it?", 1)
        once = _task(session, 2, "Freight", "open", [], 2)
        long_text = "We talked about many things. " * 20 + "Also zanzibar, once."
        _message(session, _branch(session, once, [carol, alice]), carol, long_text, 2)
        often = _task(session, 3, "Port of call", "open", [], 3)
        main = _branch(session, often, [carol, alice])
        _message(session, main, carol, "Zanzibar, zanzibar and zanzibar again", 3)
        hostile = _task(session, 4, "Invoice <img src=x onerror=alert(1)> zanzibar", "open", [], 4)
        _message(session, _branch(session, hostile, [carol, alice]), carol, HOSTILE, 4)
        hidden = _branch(session, often, [alice], parent=main)
        _message(session, hidden, alice, "Between us: the quokka discount", 5)
        for number in range(5, 11):
            filler = _task(session, number, f"Filler {number}", "open", [], number)
            _message(session, _branch(session, filler, [carol, alice]), carol, "Nothing", number)
        acquaintances.recount(session)  # (see add_tasks)
        people = {"alice": alice, "bob": bob, "carol": carol}
        return {name: create_api_token(session, person) for name, person in people.items()}


def page(web_app: InProcessWeb, token: str, url: str, status: int = 200) -> str:
    with web_app.client(token) as client:
        answer = client.get(url, follow_redirects=False)
    assert answer.status_code == status, answer.text
    return answer.text


def hits(html: str) -> list[int]:
    """The task numbers of a search page, in the order shown."""
    return [int(n) for n in re.findall(r'<li class="hit">\s*<a href="/tasks/(\d+)', html)]


PLANS = {
    "branches": {},
    "rare": {"BRANCH_TOKENS": 0},
    "scan": {"BRANCH_TOKENS": 0, "PROBE": 0},
    "lookups": {"BRANCH_TOKENS": 0, "PROBE": 0, "LOOKUP_COST": 0, "OWN_BATCH": 2},
}


@pytest.fixture(params=list(PLANS))
def plan(request, monkeypatch) -> str:
    """Every way an outsider's search may go on SQLite (``queries.search._Plan``): the
    index asked for the words in their branches; or (their tasks' titles, and the
    messages of someone in more than ``BRANCH_TOKENS`` branches) a rare word's few
    matches read whole, every match read inside SQLite and theirs kept, or their own
    looked up in the index a batch at a time."""
    for name, value in PLANS[request.param].items():
        monkeypatch.setattr(search, name, value)
    return str(request.param)


def test_search_ranks_by_how_well_each_task_matches(web_app, tokens, plan):
    found = numbers(web_app, tokens["carol"], "/api/tasks?q=zanzibar")
    assert sorted(found) == [1, 2, 3, 4]
    assert found.index(3) < found.index(2), "three times in a short message beats once"
    assert hits(page(web_app, tokens["carol"], "/search?q=ZANZIBAR")) == found


def test_snippets_are_escaped_then_highlighted(web_app, tokens, plan):
    html = page(web_app, tokens["carol"], "/search?q=zanzibar")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<mark>Zanzibar</mark>" in html and "<mark>zanzibar</mark>" in html
    assert "Invoice &lt;img src=x onerror=alert(1)&gt; <mark>zanzibar</mark>" in html
    assert "<img" not in html
    assert "\x02" not in html and "\x03" not in html
    assert html.count("<mark>") == html.count("</mark>")


def test_words_of_a_hidden_branch_are_found_by_its_members_only(web_app, tokens, plan):
    assert numbers(web_app, tokens["alice"], "/api/tasks?q=quokka") == [3]
    assert "<mark>quokka</mark>" in page(web_app, tokens["alice"], "/search?q=quokka")
    for outsider in ("bob", "carol"):
        assert numbers(web_app, tokens[outsider], "/api/tasks?q=quokka") == []
        html = page(web_app, tokens[outsider], "/search?q=quokka+discount")
        assert hits(html) == [] and "Between us" not in html and "<mark>" not in html


def test_search_follows_new_and_edited_text(web_app, tokens, store):
    assert numbers(web_app, tokens["carol"], "/api/tasks?q=walrus") == []
    with session_scope(store.engine) as session:
        task = session.exec(select(models.Task).where(models.Task.number == 2)).one()
        message = session.exec(
            select(models.Message).where(models.Message.task_id == task.id)
        ).one()
        message.text = "The walrus arrived"
        task.title = "Freight by narwhal"
    assert numbers(web_app, tokens["carol"], "/api/tasks?q=walrus") == [2]
    assert numbers(web_app, tokens["carol"], "/api/tasks?q=narwhal") == [2]
    assert numbers(web_app, tokens["carol"], "/api/tasks?q=many+things") == []
    with session_scope(store.engine) as session:
        author = session.exec(select(models.Person).where(models.Person.id == 3)).one()
        branch = session.exec(select(models.Branch).where(models.Branch.task_id == 1)).one()
        _message(session, branch, author, "A pelican, too", 9)
    assert numbers(web_app, tokens["carol"], "/api/tasks?q=pelican") == [1]


def test_a_query_without_words_finds_nothing_and_an_empty_one_is_the_inbox(web_app, tokens):
    assert "Nothing found" in page(web_app, tokens["carol"], "/search?q=%25+*")
    assert page(web_app, tokens["carol"], "/search?q=+", status=303) == ""


def more_link(html: str, rel_text: str) -> str | None:
    found = re.search(rf'<a rel="next" href="([^"]+)">{rel_text}', html)
    return found.group(1).replace("&amp;", "&") if found else None


def add_tasks(store: Context, count: int, word: str) -> None:
    """``count`` more tasks for Carol and Alice, each with ``word`` in its one message."""
    with session_scope(store.engine) as session:
        carol = session.exec(select(models.Person).where(models.Person.id == 3)).one()
        alice = session.exec(select(models.Person).where(models.Person.id == 1)).one()
        for number in range(100, 100 + count):
            task = _task(session, number, f"Batch {number}", "open", [], 30)
            task.updated_at = T0 + timedelta(days=30, minutes=number)
            _message(session, _branch(session, task, [carol, alice]), carol, word, number)
        # rows written around posting: the address book's figures are counted, as 0011 does
        acquaintances.recount(session)


def test_search_results_come_a_page_at_a_time(web_app, tokens, store):
    add_tasks(store, PAGE_SIZE + 3, "kayak")
    first = page(web_app, tokens["carol"], "/search?q=kayak")
    url = more_link(first, "More results")
    assert url is not None
    rest = page(web_app, tokens["carol"], url)
    assert more_link(rest, "More results") is None
    shown = hits(first) + hits(rest)
    assert len(hits(first)) == PAGE_SIZE and sorted(shown) == list(range(100, 123))


def test_inbox_shows_a_page_and_a_link_to_older_tasks(web_app, tokens, store):
    add_tasks(store, INBOX_SIZE, "word")
    first = page(web_app, tokens["carol"], "/")
    url = more_link(first, "Older tasks")
    assert url is not None
    rest = page(web_app, tokens["carol"], url)
    shown = re.findall(r'<a class="title" data-open href="/tasks/(\d+)">#', first + rest)
    assert len(shown) == INBOX_SIZE + 10 and len(set(shown)) == len(shown)
    assert shown[:2] == ["149", "148"] and shown[-1] == "1"
    assert more_link(rest, "Older tasks") is None


def test_activity_pages_on_to_older_changes(web_app, tokens, store):
    with session_scope(store.engine) as session:
        task = session.exec(select(models.Task).where(models.Task.number == 1)).one()
        for minute in range(ACTIVITY_SIZE + 5):
            session.add(
                models.Event(
                    task_id=task.id,
                    kind="assign",
                    detail=f"label{minute}",
                    created_at=T0 + timedelta(minutes=minute),
                )
            )
    first = page(web_app, tokens["carol"], "/activity")
    url = more_link(first, "Older changes")
    assert url is not None
    rest = page(web_app, tokens["carol"], url)
    labels = [re.findall(r"assigned it to (label\d+)", html) for html in (first, rest)]
    assert labels == [
        [f"label{n}" for n in range(104, 4, -1)],
        [f"label{n}" for n in range(4, -1, -1)],
    ]
    assert more_link(rest, "Older changes") is None


def test_a_clients_activity_and_history_leave_out_the_teams_tags(web_app, tokens, store):
    with session_scope(store.engine) as session:
        task = session.exec(select(models.Task).where(models.Task.number == 1)).one()
        session.add(models.Event(task_id=task.id, kind="tag", detail="finance-q4", created_at=T0))
    for url in ("/activity", "/tasks/1"):
        assert "finance-q4" in page(web_app, tokens["alice"], url)
        assert "finance-q4" not in page(web_app, tokens["carol"], url)


def test_every_person_knows_their_domain(store):
    with Session(store.engine) as session:
        session.add(models.Person(email="someone@Mail.Example.ORG"))
        session.add(models.Person(email='"odd@local"@x.test'))
        session.commit()
        domains = session.exec(select(models.Person.domain).order_by(col(models.Person.id)))
        assert list(domains) == ["mail.example.org", "x.test"]


def test_a_contact_page_lists_the_shared_tasks_a_page_at_a_time(web_app, tokens, store):
    add_tasks(store, TASKS_PAGE, "word")
    first = page(web_app, tokens["alice"], "/contacts/carol@acme.test")
    assert f"Tasks in common ({TASKS_PAGE + 10})" in first
    url = more_link(first, "Older tasks")
    assert url is not None
    rest = page(web_app, tokens["alice"], url)
    shown = re.findall(r'<td><a href="/tasks/(\d+)">#', first + rest)
    assert len(shown) == TASKS_PAGE + 10 and len(set(shown)) == len(shown)
    assert more_link(rest, "Older tasks") is None


def test_a_word_in_most_messages_is_looked_for_among_the_newest_only(
    web_app, tokens, monkeypatch, store
):
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's plan only: PostgreSQL's planner chooses (CI runs the SQLite pass)")
    monkeypatch.setattr(search, "BRANCH_TOKENS", 0)  # her own messages looked up...
    monkeypatch.setattr(search, "PROBE", 0)  # no word is rare...
    monkeypatch.setattr(search, "MANY", -1)  # ...and every one is in most messages
    monkeypatch.setattr(search, "OWN_BATCH", 2)
    with web_app.client(tokens["carol"]) as client:
        answer = client.get("/api/tasks?q=zanzibar").json()
    # her newest messages two at a time: fillers, fillers, fillers, then #4's and #3's
    assert sorted(item["number"] for item in answer["items"]) == [3, 4]
    assert answer["total_exact"] is False


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({}, id="branches"),
        pytest.param({"BRANCH_TOKENS": 0}, id="rare"),
        pytest.param({"BRANCH_TOKENS": 0, "PROBE": 5}, id="scan"),
        pytest.param(
            {"BRANCH_TOKENS": 0, "PROBE": 5, "LOOKUP_COST": 0, "OWN_BATCH": 2}, id="lookups"
        ),
        pytest.param({"BRANCH_TOKENS": 0, "PROBE": 5, "MANY": 10, "OWN_BATCH": 2}, id="common"),
    ],
)
def test_a_word_common_in_hidden_branches_finds_a_clients_own_message_and_nothing_else(
    web_app, tokens, store, monkeypatch, limits
):
    """40 hidden messages hold "walrus"; Carol's one message with it is her oldest, behind
    eight newer ones: each plan has to read past its first window (``PROBE`` matches, a
    batch of ``OWN_BATCH``) to reach it, and may never keep a hidden one on the way."""
    for name, value in limits.items():
        monkeypatch.setattr(search, name, value)
    with session_scope(store.engine) as session:
        alice, carol = (
            session.exec(select(models.Person).where(models.Person.email == email)).one()
            for email in ("alice@example.com", "carol@acme.test")
        )
        task = _task(session, 11, "Quarterly report", "open", [], 11)
        main = _branch(session, task, [carol, alice])
        _message(session, main, carol, "The walrus invoice is late", 20)
        for minutes in range(21, 29):
            _message(session, main, carol, f"Any news? ({minutes})", minutes)
        secret = _branch(session, task, [alice], parent=main)
        other = _task(session, 12, "Supplier audit", "open", [], 12)
        elsewhere = _branch(session, other, [alice], parent=_branch(session, other, [alice]))
        for minutes in range(30, 70):
            branch = secret if minutes % 2 else elsewhere
            _message(session, branch, alice, f"Walrus walrus: secret margin {minutes}", minutes)
    assert numbers(web_app, tokens["carol"], "/api/tasks?q=walrus") == [11]
    html = page(web_app, tokens["carol"], "/search?q=WALRUS")
    assert hits(html) == [11]
    assert "<mark>walrus</mark> invoice is late" in html
    assert "secret" not in html and "margin" not in html
    assert numbers(web_app, tokens["bob"], "/api/tasks?q=walrus") == [11]
    assert sorted(numbers(web_app, tokens["alice"], "/api/tasks?q=walrus")) == [11, 12]
    # the index also holds each message's branch id (SQLite): a number typed is a word
    assert 10 < main.id < 20 and 10 < secret.id < 20, "no text of this world holds these"
    for branch_id in (main.id, secret.id):
        assert numbers(web_app, tokens["alice"], f"/api/tasks?q={branch_id}") == []


def test_search_follows_a_message_moved_between_a_hidden_and_a_main_branch(
    web_app, tokens, store, plan
):
    """The index holds each message's branch (SQLite): a moved message is found where it
    is now, by those who may read it there, and no longer where it was."""

    def move(hidden: bool) -> None:
        with session_scope(store.engine) as session:
            message = session.exec(
                select(models.Message).where(models.Message.text.startswith("Between us"))
            ).one()
            branch = session.exec(
                select(models.Branch).where(
                    models.Branch.task_id == message.task_id, models.Branch.hidden == hidden
                )
            ).one()
            message.branch_id = branch.id

    assert numbers(web_app, tokens["carol"], "/api/tasks?q=quokka") == []
    move(hidden=False)
    assert numbers(web_app, tokens["carol"], "/api/tasks?q=quokka") == [3]
    assert numbers(web_app, tokens["bob"], "/api/tasks?q=quokka") == [3]
    move(hidden=True)
    assert numbers(web_app, tokens["carol"], "/api/tasks?q=quokka") == []
    assert numbers(web_app, tokens["bob"], "/api/tasks?q=quokka") == []
    assert numbers(web_app, tokens["alice"], "/api/tasks?q=quokka") == [3]
