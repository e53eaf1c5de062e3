"""Atom (RFC 4287) documents: a feed of entries written as well-formed XML.

Everything in a feed is text: titles and contents are ``type="text"``, written by
ElementTree, which escapes ``<``, ``&`` and quotes, so no mail can put markup into a feed
reader.  Characters XML 1.0 cannot carry at all (most control characters, which mail does
contain) are dropped, since escaping cannot save them.  Ids are ``tag:`` URIs (RFC 4151)
made from something that never changes, and links are absolute: a feed reader has no page
to resolve a relative one against.  Pure: the feed's moments and addresses come in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree import ElementTree

ATOM = "http://www.w3.org/2005/Atom"

# XML 1.0 section 2.2: Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD]
#   | [#x10000-#x10FFFF]
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class AtomEntry:
    """One entry: its permanent id, what it says, who did it, and where to read more."""

    id: str
    title: str
    updated: datetime
    link: str
    author: str
    content: str


@dataclass(frozen=True)
class AtomFeed:
    """A feed: its id, title and links (``next`` for the older entries, RFC 5005)."""

    id: str
    title: str
    updated: datetime
    self_link: str
    alternate_link: str
    next_link: str | None
    entries: tuple[AtomEntry, ...]


def tag_uri(authority: str, year: int, specific: str) -> str:
    """A ``tag:`` URI (RFC 4151): an id that stays the same wherever the feed is read.

    >>> tag_uri("Support.Example.com", 2026, "event/42")
    'tag:support.example.com,2026:event/42'
    """
    return f"tag:{authority.lower()},{year}:{specific}"


def xml_text(text: str) -> str:
    r"""``text`` without the characters XML cannot hold (escaping is ElementTree's job).

    >>> xml_text("form\x0cfeed, bell\x07 & <b>tags</b>")
    'formfeed, bell & <b>tags</b>'
    """
    return _NOT_XML.sub("", text)


def render_feed(feed: AtomFeed) -> bytes:
    r"""The feed as an Atom document, UTF-8, with its XML declaration.

    >>> moment = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    >>> entry = AtomEntry("tag:x.test,2026:event/1", "<b>hi</b>", moment,
    ...                   "https://x.test/tasks/1", "Ann", "a & b")
    >>> feed = AtomFeed("tag:x.test,2026:activity", "Activity", moment,
    ...                 "https://x.test/activity.atom", "https://x.test/activity", None,
    ...                 (entry,))
    >>> document = render_feed(feed).decode()
    >>> '<title type="text">&lt;b&gt;hi&lt;/b&gt;</title>' in document
    True
    >>> '<content type="text">a &amp; b</content>' in document
    True
    """
    root = ElementTree.Element("feed", xmlns=ATOM)
    _text(root, "id", feed.id)
    _text(root, "title", feed.title, type="text")
    _text(root, "updated", _moment(feed.updated))
    _link(root, feed.self_link, "self", "application/atom+xml")
    _link(root, feed.alternate_link, "alternate", "text/html")
    if feed.next_link:
        _link(root, feed.next_link, "next", "application/atom+xml")
    for entry in feed.entries:
        element = ElementTree.SubElement(root, "entry")
        _text(element, "id", entry.id)
        _text(element, "title", entry.title, type="text")
        _text(element, "updated", _moment(entry.updated))
        _link(element, entry.link, "alternate", "text/html")
        _text(ElementTree.SubElement(element, "author"), "name", entry.author)
        _text(element, "content", entry.content, type="text")
    body: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


def _text(parent: ElementTree.Element, name: str, text: str, **attributes: str) -> None:
    ElementTree.SubElement(parent, name, attributes).text = xml_text(text)


def _link(parent: ElementTree.Element, href: str, rel: str, media_type: str) -> None:
    ElementTree.SubElement(parent, "link", {"rel": rel, "type": media_type, "href": href})


def _moment(when: datetime) -> str:
    """An RFC 3339 date-time in UTC, as Atom wants it.

    >>> _moment(datetime(2026, 3, 1, 9, 30, 5, 123, tzinfo=UTC))
    '2026-03-01T09:30:05Z'
    """
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
