"""Find the links in a message's text, so a page can make them clickable, safely.

Mail text is untrusted.  ``html.html_to_text`` writes an HTML mail's links as
``[words](url)``, and people paste bare addresses (``https://…``); ``linkify`` splits a
text into segments, plain text and links, for a template to render with autoescaping:
this module never produces markup.  Only ``http``, ``https`` and ``mailto`` targets
become links; any other scheme (``javascript:``, ``data:``, ``file:``…) stays the text
it was, exactly as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCHEMES = ("http://", "https://", "mailto:")
# ``[words](target)`` or ``[words](target "title")``, as html2text writes a link, or a
# bare http(s) or mailto address.  Lengths are bounded: a hostile mail cannot make the
# pattern work for long.
_LINK = re.compile(
    r"\[(?P<words>[^\[\]\n]{1,1000})\]\((?P<target>[^\s()<>\"'`]{1,4000})(?:\s+\"[^\"\n]{0,500}\")?\)"
    r"|(?P<bare>(?:https?://|mailto:)[^\s<>\"'`\[\]{}|\\^]{1,4000})",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?'\""  # punctuation that ends a sentence, not an address


@dataclass(frozen=True)
class Segment:
    """A piece of a text: plain words (``href`` is ``None``) or a link's words and target."""

    text: str
    href: str | None = None


def safe_target(url: str) -> bool:
    r"""Whether ``url`` may be a link's target: http, https or mailto, and nothing hidden.

    >>> safe_target("https://example.com/a"), safe_target("MAILTO:a@b.test")
    (True, True)
    >>> safe_target("javascript:alert(1)"), safe_target("data:text/html,x")
    (False, False)
    >>> safe_target("https://"), safe_target("https://a.test/\x00")
    (False, False)
    """
    lowered = url.lower()
    scheme = next((s for s in _SCHEMES if lowered.startswith(s)), None)
    if scheme is None or len(url) == len(scheme):
        return False
    return url.isprintable() and not any(c.isspace() for c in url)


def linkify(text: str) -> list[Segment]:
    """``text`` as plain and link segments, in order.

    Joined, their words give the text back, but for a Markdown link (its words only).

    >>> [s.href for s in linkify("See https://example.com/a.")]
    [None, 'https://example.com/a', None]
    >>> linkify("[click](javascript:alert(1))")
    [Segment(text='[click](javascript:alert(1))', href=None)]
    """
    segments: list[Segment] = []
    plain_from = 0
    for found in _LINK.finditer(text):
        link = _link(found)
        if link is None:
            continue
        start, end, segment = link
        if start > plain_from:
            segments.append(Segment(text[plain_from:start]))
        segments.append(segment)
        plain_from = end
    if plain_from < len(text):
        segments.append(Segment(text[plain_from:]))
    return _merged(segments)


def _link(found: re.Match[str]) -> tuple[int, int, Segment] | None:
    """Where a match's link lies and the link itself; ``None`` for an unsafe target."""
    if found.group("bare") is None:
        target = found.group("target")
        if not safe_target(target):
            return None
        return found.start(), found.end(), Segment(found.group("words"), target)
    url = _trimmed(found.group("bare"))
    if not safe_target(url):
        return None
    return found.start(), found.start() + len(url), Segment(url, url)


def _trimmed(url: str) -> str:
    """A bare address without the punctuation after it, or an unmatched closing bracket.

    >>> _trimmed("https://a.test/x)."), _trimmed("https://en.wikipedia.org/wiki/A_(b)")
    ('https://a.test/x', 'https://en.wikipedia.org/wiki/A_(b)')
    """
    while url:
        unmatched = url[-1] == ")" and url.count(")") > url.count("(")
        if url[-1] in _TRAILING or unmatched:
            url = url[:-1]
        else:
            break
    return url


def _merged(segments: list[Segment]) -> list[Segment]:
    """Adjacent plain segments as one."""
    merged: list[Segment] = []
    for segment in segments:
        if merged and segment.href is None and merged[-1].href is None:
            merged[-1] = Segment(merged[-1].text + segment.text)
        else:
            merged.append(segment)
    return merged
