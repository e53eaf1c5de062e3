"""linkify: links in mail text become segments a page renders with autoescaping; hostile
targets stay plain text, exactly as written."""

from __future__ import annotations

import pytest

from qmail.core.html import html_to_text
from qmail.core.linkify import Segment, linkify


def links(text: str) -> list[tuple[str, str]]:
    return [(s.text, s.href) for s in linkify(text) if s.href is not None]


def test_markdown_link_from_html_mail_shows_its_words_and_points_to_its_target():
    assert linkify("Read [the invoice](https://acme.test/inv?id=17&x=1) please") == [
        Segment("Read "),
        Segment("the invoice", "https://acme.test/inv?id=17&x=1"),
        Segment(" please"),
    ]


def test_link_written_by_html_to_text_is_found_again():
    text = html_to_text('<p>See <a href="https://acme.test/a">our page</a>.</p>')
    assert links(text) == [("our page", "https://acme.test/a")]


def test_bare_addresses_lose_the_punctuation_after_them():
    text = "Go to https://acme.test/x, then http://b.test/y. (or https://c.test/z)"
    assert links(text) == [
        ("https://acme.test/x", "https://acme.test/x"),
        ("http://b.test/y", "http://b.test/y"),
        ("https://c.test/z", "https://c.test/z"),
    ]


def test_mailto_is_a_link_and_the_text_is_kept_whole():
    text = "Write to mailto:billing@acme.test or call."
    assert links(text) == [("mailto:billing@acme.test", "mailto:billing@acme.test")]
    assert "".join(segment.text for segment in linkify(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "[click](javascript:alert(1))",
        "[click](javascript:alert%281%29)",
        "[click](JavaScript:alert%281%29)",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](vbscript:msgbox)",
        "[x](file:///etc/passwd)",
        "[x](//evil.test/a)",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "[x](https://)",
        "<script>alert(1)</script>",
    ],
)
def test_hostile_targets_stay_plain_text(text):
    assert linkify(text) == [Segment(text)]


def test_markup_in_a_link_stays_text_for_the_template_to_escape():
    text = '[<b onmouseover="x">hi</b>](https://acme.test/"><script>)'
    assert links(text) == [("https://acme.test/", "https://acme.test/")]
    assert "".join(segment.text for segment in linkify(text)) == text


def test_a_quote_ends_a_bare_address():
    assert links('https://acme.test/a" onclick="alert(1)') == [
        ("https://acme.test/a", "https://acme.test/a")
    ]


def test_no_links_gives_the_text_as_one_segment_and_empty_gives_none():
    assert linkify("just words") == [Segment("just words")]
    assert linkify("") == []


def test_a_long_hostile_text_is_split_quickly():
    text = "[" * 50_000 + "](" * 50_000 + "http://" * 20_000
    assert "".join(segment.text for segment in linkify(text)) == text
