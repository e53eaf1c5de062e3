"""The activity stream as a tape of events: filters that combine and page, and its Atom feed.

The world is written straight into the database (as ``test_inbox.py`` does), each event
as the code that makes it records it:

- #1 "Invoice missing a line", Carol's (acme.test): Alice tags it, Bob assigns it to
  Alice, Alice answers, Alice opens a hidden branch with Erin where Erin writes
  ``SECRET``, Alice closes it.
- #2 "Shipping delay", Dave's (mail.globex.test: the company is globex.test): Dave
  writes, Alice removes a tag, reopens it and unassigns it.
- #3 "From home", Lin's (gmail.com: no company): Lin writes.

Alice, Bob and Erin are the team (example.com); Bob is in every main branch and not in
the hidden one.  Pages and feeds are read in-process (``web_app``): pages with a bearer
token, feeds with the person's feed link only.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
from sqlmodel import Session, col, select

from qmail import models
from qmail.auth.api_tokens import create_api_token
from qmail.auth.feeds import feed_token, new_feed_link, stop_feed_link
from qmail.context import Context
from qmail.db import session_scope
from qmail.web.activity_feed import HideFeedTokens
from tests.integration.conftest import InProcessWeb
from tests.integration.test_api import _branch, _message, _person, _task

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
SECRET = "Between us: the discount stays internal"
HOSTILE = "<script>alert(1)</script> & <b>bold</b>"
ATOM = "{http://www.w3.org/2005/Atom}"
EVENT_LINE = re.compile(r"<li>(.*?)</li>", re.S)


def _event(
    session: Session,
    task: models.Task,
    kind: str,
    who: models.Person,
    minutes: int,
    branch: models.Branch | None = None,
    detail: str = "",
) -> None:
    session.add(
        models.Event(
            task_id=task.id,
            branch_id=branch.id if branch else None,
            person_id=who.id,
            kind=kind,
            detail=detail,
            created_at=T0 + timedelta(minutes=minutes),
        )
    )


@pytest.fixture
def tape(store: Context) -> dict[str, str]:
    """The world above; returns each person's API token (for the pages)."""
    with session_scope(store.engine) as session:
        alice = _person(session, "alice@example.com", "Alice Team")
        bob = _person(session, "bob@example.com", "Bob Team")
        erin = _person(session, "erin@example.com", "Erin Team")
        carol = _person(session, "carol@acme.test", "Carol Client")
        dave = _person(session, "dave@mail.globex.test", "Dave Client")
        lin = _person(session, "lin@gmail.com", "Lin Home")
        invoice = _task(session, 1, "Invoice missing a line", "closed", ["billing"], 1)
        main = _branch(session, invoice, [carol, alice, bob])
        hidden = _branch(session, invoice, [alice, erin], parent=main)
        shipping = _task(session, 2, "Shipping delay", "open", [], 2)
        shipping_main = _branch(session, shipping, [dave, alice, bob])
        home = _task(session, 3, "From home", "open", [], 3)
        home_main = _branch(session, home, [lin, alice])
        first = _message(session, main, carol, "The invoice lacks the licences", 1)
        answer = _message(session, main, alice, HOSTILE, 4)
        secret = _message(session, hidden, erin, SECRET, 6)
        parcel = _message(session, shipping_main, dave, "Where is my parcel?", 11)
        question = _message(session, home_main, lin, "A question from home", 20)
        _event(session, invoice, "task_created", carol, 1, main, invoice.title)
        _event(session, invoice, "message", carol, 1, main, str(first.id))
        _event(session, invoice, "tag", alice, 2, detail="billing")
        _event(session, invoice, "assign", bob, 3, detail="alice@example.com")
        _event(session, invoice, "message", alice, 4, main, str(answer.id))
        _event(session, invoice, "branch_opened", alice, 5, hidden)
        _event(session, invoice, "message", erin, 6, hidden, str(secret.id))
        _event(session, invoice, "close", alice, 7)
        _event(session, shipping, "task_created", dave, 10, shipping_main, shipping.title)
        _event(session, shipping, "message", dave, 11, shipping_main, str(parcel.id))
        _event(session, shipping, "untag", alice, 12, detail="waiting")
        _event(session, shipping, "reopen", alice, 13)
        _event(session, shipping, "unassign", alice, 14)
        _event(session, home, "task_created", lin, 20, home_main, home.title)
        _event(session, home, "message", lin, 20, home_main, str(question.id))
        people = {"alice": alice, "bob": bob, "erin": erin, "carol": carol, "dave": dave}
        return {name: create_api_token(session, person) for name, person in people.items()}


def page(web_app: InProcessWeb, token: str, url: str, status: int = 200) -> str:
    """The page at ``url``, after the redirect to the view's own link if there is one."""
    with web_app.client(token) as client:
        answer = client.get(url)
    assert answer.status_code == status, answer.text
    return answer.text


@pytest.mark.parametrize(
    ("query", "link"),
    [
        ("?task=%232", "?task=2"),
        (
            "?kind=Messages&task=&person=&company=Mail.Globex.test",
            "?company=globex.test&kind=messages",
        ),
        ("?person=Erin%40Example.com", "?person=erin%40example.com"),
        ("?task=&person=&company=&kind=", ""),
    ],
)
def test_a_filter_form_lands_on_the_views_own_link(web_app, tape, query, link):
    with web_app.client(tape["alice"]) as client:
        answer = client.get(f"/activity{query}", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/activity{link}"


def lines(html: str) -> list[str]:
    """The stream's lines as ``#task who what``, newest first."""
    events = (
        html.split('<ol class="events">', 1)[1].split("</ol>", 1)[0] if "events" in html else ""
    )
    found = []
    for item in EVENT_LINE.findall(events):
        number = re.search(r'href="/tasks/(\d+)"', item)
        assert number
        who_and_what = re.sub(r"<[^>]+>", " ", item.split("</a>", 1)[1])
        found.append(f"#{number.group(1)} {' '.join(unescape(who_and_what).split())}")
    return found


def next_link(html: str) -> str | None:
    found = re.search(r'<a rel="next" href="([^"]+)">', html)
    return unescape(found.group(1)) if found else None


MESSAGES_OF_1 = [
    "#1 Erin Team wrote a message team only",
    "#1 Alice Team wrote a message",
    "#1 Carol Client wrote a message",
]
TAGS = ["#2 Alice Team removed the tag waiting", "#1 Alice Team tagged it billing"]
EVERYTHING_ALICE_SEES = [
    "#3 Lin Home wrote a message",
    "#3 Lin Home opened the task",
    "#2 Alice Team unassigned it",
    "#2 Alice Team reopened it",
    "#2 Alice Team removed the tag waiting",
    "#2 Dave Client wrote a message",
    "#2 Dave Client opened the task",
    "#1 Alice Team closed it",
    "#1 Erin Team wrote a message team only",
    "#1 Alice Team opened a hidden branch team only",
    "#1 Alice Team wrote a message",
    "#1 Bob Team assigned it to alice@example.com",
    "#1 Alice Team tagged it billing",
    "#1 Carol Client wrote a message",
    "#1 Carol Client opened the task",
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", EVERYTHING_ALICE_SEES),
        ("?task=1", EVERYTHING_ALICE_SEES[7:]),
        ("?task=%232", EVERYTHING_ALICE_SEES[2:7]),
        ("?kind=messages", [line for line in EVERYTHING_ALICE_SEES if "wrote" in line]),
        (
            "?kind=status",
            [
                "#3 Lin Home opened the task",
                "#2 Alice Team reopened it",
                "#2 Dave Client opened the task",
                "#1 Alice Team closed it",
                "#1 Carol Client opened the task",
            ],
        ),
        (
            "?kind=tags",
            TAGS,
        ),
        (
            "?kind=assignments",
            ["#2 Alice Team unassigned it", "#1 Bob Team assigned it to alice@example.com"],
        ),
        ("?kind=hidden", EVERYTHING_ALICE_SEES[8:10]),
        ("?company=globex.test", EVERYTHING_ALICE_SEES[2:7]),
        ("?company=mail.GLOBEX.test", EVERYTHING_ALICE_SEES[2:7]),
        (
            "?company=acme.test&kind=messages",
            MESSAGES_OF_1,
        ),
        ("?person=lin%40gmail.com", EVERYTHING_ALICE_SEES[:2]),
        (
            "?person=Erin%40example.com&kind=messages",
            MESSAGES_OF_1,
        ),
        ("?person=carol%40acme.test&task=2", []),
        ("?company=acme.test&kind=assignments&task=1", EVERYTHING_ALICE_SEES[11:12]),
    ],
)
def test_each_filter_and_their_combinations_keep_the_right_events(web_app, tape, query, expected):
    html = page(web_app, tape["alice"], f"/activity{query}")
    assert lines(html) == expected
    if not expected:
        assert "No change matches these filters" in html


def test_a_client_sees_neither_tags_nor_the_hidden_branch_whatever_the_filter(web_app, tape):
    carol = lines(page(web_app, tape["carol"], "/activity"))
    assert carol == [
        "#1 Alice Team closed it",
        "#1 Alice Team wrote a message",
        "#1 Bob Team assigned it to alice@example.com",
        "#1 Carol Client wrote a message",
        "#1 Carol Client opened the task",
    ]
    for query in ("?person=erin%40example.com", "?company=example.com&kind=messages"):
        html = page(web_app, tape["carol"], f"/activity{query}")
        assert "Erin" not in html and "hidden branch" not in html
    assert lines(page(web_app, tape["carol"], "/activity?person=erin%40example.com")) == []
    assert lines(page(web_app, tape["carol"], "/activity?task=2")) == []
    for kind in ("tags", "hidden"):
        refused = page(web_app, tape["carol"], f"/activity?kind={kind}", status=400)
        assert f"{kind} events are the team&#39;s own" in refused
    options = page(web_app, tape["carol"], "/activity")
    assert 'value="messages"' in options and 'value="tags"' not in options


def test_a_teammate_outside_the_hidden_branch_does_not_see_it(web_app, tape):
    bob = lines(page(web_app, tape["bob"], "/activity?task=1"))
    assert bob == [line for line in EVERYTHING_ALICE_SEES[7:] if "team only" not in line]
    assert lines(page(web_app, tape["bob"], "/activity?kind=hidden")) == []
    assert lines(page(web_app, tape["bob"], "/activity?person=erin%40example.com")) == []
    erin = lines(page(web_app, tape["erin"], "/activity?kind=hidden"))
    assert erin == EVERYTHING_ALICE_SEES[8:10]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?kind=gossip", "kind must be one of messages, status, tags, assignments, hidden"),
        ("?task=twelve", "task must be a task number"),
        ("?company=gmail.com", "gmail.com names no company"),
        ("?company=co.uk", "co.uk names no company"),
        ("?cursor=nonsense", "invalid cursor"),
    ],
)
def test_bad_filters_are_a_bad_request(web_app, tape, query, message):
    assert message in unescape(page(web_app, tape["alice"], f"/activity{query}", status=400))


def test_lines_link_to_the_stream_filtered_by_their_person_and_filters_stay_when_paging(
    web_app, tape
):
    html = page(web_app, tape["alice"], "/activity?kind=messages")
    assert 'href="/activity?person=lin%40gmail.com&amp;kind=messages"' in html
    assert "kind: <strong>Messages</strong>" in html
    assert 'href="/activity" class="clear"' in html  # the kind's ×: no filter left


def _many_messages(store: Context, count: int) -> None:
    """``count`` more messages of Dave's on #2, a minute apart, each with its event."""
    with session_scope(store.engine) as session:
        dave = session.exec(
            select(models.Person).where(models.Person.email == "dave@mail.globex.test")
        ).one()
        shipping = session.exec(select(models.Task).where(models.Task.number == 2)).one()
        branch = session.exec(
            select(models.Branch).where(models.Branch.task_id == shipping.id)
        ).one()
        for minute in range(count):
            message = _message(session, branch, dave, f"Update {minute}", 100 + minute)
            _event(session, shipping, "message", dave, 100 + minute, branch, str(message.id))


def message_ids(store: Context, number: int) -> list[int]:
    with Session(store.engine) as session:
        statement = (
            select(models.Message.id)
            .join(models.Task, col(models.Task.id) == models.Message.task_id)
            .where(models.Task.number == number)
        )
        return sorted(row for row in session.exec(statement) if row is not None)


def test_filtered_stream_pages_on_without_repeating_or_losing_an_event(web_app, store, tape):
    _many_messages(store, 130)
    url: str | None = "/activity?company=globex.test&kind=messages"
    shown: list[str] = []
    anchors: list[int] = []
    sizes = []
    while url is not None:
        html = page(web_app, tape["alice"], url)
        shown.extend(lines(html))
        anchors.extend(int(found) for found in re.findall(r'#message-(\d+)">', html))
        sizes.append(len(lines(html)))
        url = next_link(html)
        if url is not None:
            assert parse_qs(urlsplit(url).query).keys() == {"company", "kind", "cursor"}
    assert sizes == [100, 31]
    assert set(shown) == {"#2 Dave Client wrote a message"}
    assert anchors == sorted(message_ids(store, 2), reverse=True)  # each once, newest first
    assert 'href="/activity?company=globex.test&amp;kind=messages">Newest' in html


# --- the Atom feed ----------------------------------------------------------------------


def give_feed_link(store: Context, email: str) -> str:
    """Make ``email``'s feed link as the settings page does; its token."""
    with session_scope(store.engine) as session:
        person = session.exec(select(models.Person).where(models.Person.email == email)).one()
        new_feed_link(session, person)
        session.flush()
        token = feed_token(store.links, person)
    assert token is not None
    return token


def feed(web_app: InProcessWeb, query: str, status: int = 200) -> bytes:
    with web_app.client() as client:
        answer = client.get(f"/activity.atom{query}")
    assert answer.status_code == status, answer.text
    if status == 200:
        assert answer.headers["content-type"] == "application/atom+xml; charset=utf-8"
    return answer.content


def entries(document: bytes) -> list[dict[str, str]]:
    """The feed's entries, parsed back as XML (a feed that is not well-formed fails here)."""
    root = ElementTree.fromstring(document)
    assert root.tag == f"{ATOM}feed"
    return [
        {
            "id": entry.findtext(f"{ATOM}id", ""),
            "title": entry.findtext(f"{ATOM}title", ""),
            "link": entry.find(f"{ATOM}link").get("href", ""),  # type: ignore[union-attr]
            "author": entry.findtext(f"{ATOM}author/{ATOM}name", ""),
            "content": entry.findtext(f"{ATOM}content", ""),
        }
        for entry in root.findall(f"{ATOM}entry")
    ]


def event_ids(store: Context, kind: str) -> list[int]:
    with Session(store.engine) as session:
        statement = select(models.Event.id).where(models.Event.kind == kind)
        return [row for row in session.exec(statement.order_by(col(models.Event.id)))]


def test_feed_holds_what_the_page_shows_as_escaped_text_with_stable_ids_and_absolute_links(
    web_app, store, tape
):
    token = give_feed_link(store, "alice@example.com")
    document = feed(web_app, f"?token={token}&task=1&kind=messages")
    found = entries(document)
    base = store.settings.web.base_url
    assert [entry["title"] for entry in found] == [
        "Erin Team wrote a message · #1 Invoice missing a line (team only)",
        "Alice Team wrote a message · #1 Invoice missing a line",
        "Carol Client wrote a message · #1 Invoice missing a line",
    ]
    assert [entry["content"] for entry in found] == [
        SECRET,
        HOSTILE,
        "The invoice lacks the licences",
    ]
    assert (
        b"<script>" not in document
        and b"&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in document
    )
    message_events = event_ids(store, "message")
    assert [entry["id"] for entry in found] == [
        f"tag:example.com,2026:event/{event_id}" for event_id in message_events[2::-1]
    ]
    assert all(entry["link"].startswith(f"{base}/tasks/1#message-") for entry in found)
    assert feed(web_app, f"?token={token}&task=1&kind=messages") == document  # stable
    root = ElementTree.fromstring(document)
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert links["alternate"] == f"{base}/activity?task=1&kind=messages"
    assert links["self"] == f"{base}/activity.atom?task=1&kind=messages&token={token}"
    assert root.findtext(f"{ATOM}id") == "tag:example.com,2026:activity/1?task=1&kind=messages"


def test_a_clients_feed_never_holds_the_hidden_branch_nor_tags(web_app, store, tape):
    token = give_feed_link(store, "carol@acme.test")
    document = feed(web_app, f"?token={token}")
    assert [entry["title"].split(" · ")[0] for entry in entries(document)] == [
        "Alice Team closed it",
        "Alice Team wrote a message",
        "Bob Team assigned it to alice@example.com",
        "Carol Client wrote a message",
        "Carol Client opened the task",
    ]
    for secret in (SECRET.encode(), b"Erin", b"hidden", b"billing", b"tag", b"team only"):
        assert secret not in document.replace(b"tag:example.com", b"")
    assert entries(feed(web_app, f"?token={token}&person=erin%40example.com")) == []
    feed(web_app, f"?token={token}&kind=hidden", status=400)
    feed(web_app, f"?token={token}&kind=tags", status=400)


def test_a_feed_link_that_is_forged_replaced_or_turned_off_opens_nothing(web_app, store, tape):
    old = give_feed_link(store, "alice@example.com")
    assert len(entries(feed(web_app, f"?token={old}"))) == 15
    new = give_feed_link(store, "alice@example.com")
    assert new != old
    assert b"not valid" in feed(web_app, f"?token={old}", status=404)
    assert len(entries(feed(web_app, f"?token={new}"))) == 15
    forged = new[:-3] + ("AAA" if not new.endswith("AAA") else "BBB")
    feed(web_app, f"?token={forged}", status=404)
    feed(web_app, "", status=404)
    feed(web_app, f"?token={store.links.make_unsubscribe(1, 1)}", status=404)
    with web_app.client(tape["alice"]) as client:  # an API token is not a feed link
        assert client.get("/activity.atom").status_code == 404
    with session_scope(store.engine) as session:
        alice = session.exec(
            select(models.Person).where(models.Person.email == "alice@example.com")
        ).one()
        stop_feed_link(session, alice)
    feed(web_app, f"?token={new}", status=404)


def test_feed_pages_on_with_the_same_filters(web_app, store, tape):
    _many_messages(store, 130)
    token = give_feed_link(store, "alice@example.com")
    first = ElementTree.fromstring(
        feed(web_app, f"?token={token}&company=globex.test&kind=messages")
    )
    assert len(first.findall(f"{ATOM}entry")) == 100
    following = next(
        link.get("href") for link in first.findall(f"{ATOM}link") if link.get("rel") == "next"
    )
    assert following is not None
    query = parse_qs(urlsplit(following).query)
    assert query["company"] == ["globex.test"] and query["kind"] == ["messages"]
    second = entries(feed(web_app, "?" + urlsplit(following).query))
    assert len(second) == 31
    assert second[-1]["content"] == "Where is my parcel?"


def test_the_access_log_never_shows_a_feed_links_token(store, tape):
    token = give_feed_link(store, "alice@example.com")
    # as uvicorn's access logger writes a request (uvicorn/protocols/http/h11_impl.py)
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/activity.atom?kind=messages&token={token}", "1.1", 200),
        None,
    )  # fmt: skip
    assert HideFeedTokens().filter(record)
    line = record.getMessage()
    assert line == '127.0.0.1:5000 - "GET /activity.atom?kind=messages&token=… HTTP/1.1" 200'
    assert token[3:] not in line
