"""Atom feeds from ``core.atom``: parsed back as XML whatever the mail put in their text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

from hypothesis import given
from hypothesis import strategies as st

from qmail.core.atom import ATOM, AtomEntry, AtomFeed, render_feed, tag_uri

NS = f"{{{ATOM}}}"
MOMENT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def feed_of(*texts: str, next_link: str | None = None) -> AtomFeed:
    entries = tuple(
        AtomEntry(
            id=tag_uri("support.example.com", 2026, f"event/{number}"),
            title=text,
            updated=MOMENT - timedelta(minutes=number),
            link=f"https://support.example.com/tasks/{number}",
            author=text,
            content=text,
        )
        for number, text in enumerate(texts, start=1)
    )
    return AtomFeed(
        id=tag_uri("support.example.com", 2026, "activity/7?kind=messages"),
        title="Activity · kind messages",
        updated=MOMENT,
        self_link="https://support.example.com/activity.atom?kind=messages&token=fd_x",
        alternate_link="https://support.example.com/activity?kind=messages",
        next_link=next_link,
        entries=entries,
    )


def test_feed_parses_back_with_its_links_ids_and_times():
    following = "https://support.example.com/activity.atom?kind=messages&token=fd_x&cursor=abc"
    root = ElementTree.fromstring(render_feed(feed_of("first", "second", next_link=following)))
    assert root.tag == f"{NS}feed"
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{NS}link")}
    assert links == {
        "self": "https://support.example.com/activity.atom?kind=messages&token=fd_x",
        "alternate": "https://support.example.com/activity?kind=messages",
        "next": following,
    }
    assert root.findtext(f"{NS}updated") == "2026-03-01T09:30:00Z"
    entries = root.findall(f"{NS}entry")
    assert [entry.findtext(f"{NS}id") for entry in entries] == [
        "tag:support.example.com,2026:event/1",
        "tag:support.example.com,2026:event/2",
    ]
    assert [entry.findtext(f"{NS}updated") for entry in entries] == [
        "2026-03-01T09:29:00Z",
        "2026-03-01T09:28:00Z",
    ]
    assert entries[0].findtext(f"{NS}author/{NS}name") == "first"


def test_markup_in_mail_text_stays_text_and_control_characters_go():
    text = 'Hi <img src=x onerror="alert(1)"> & ]]> \x00\x08\x0b\x1b\ufffe done'
    document = render_feed(feed_of(text))
    entry = ElementTree.fromstring(document).find(f"{NS}entry")
    assert entry is not None
    assert entry.findtext(f"{NS}content") == 'Hi <img src=x onerror="alert(1)"> & ]]>  done'
    assert entry.find(f"{NS}content").get("type") == "text"  # type: ignore[union-attr]
    assert b"<img" not in document


@given(st.text())
def test_any_text_makes_a_well_formed_feed(text):
    root = ElementTree.fromstring(render_feed(feed_of(text)))
    assert root.find(f"{NS}entry") is not None
