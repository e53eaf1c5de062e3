"""What a list shows of a task at a glance: how long ago, and the start of a message.

Pure: the moment of "now" is an argument, so a page and its test agree on what "3 h ago"
means.  The exact time stays available to the page (``<time datetime>``); this is only
the short, human reading of it.
"""

from __future__ import annotations

from datetime import datetime

SNIPPET_CHARS = 140


def time_ago(when: datetime, now: datetime) -> str:
    """``when`` as a short distance from ``now``: minutes, hours, days, then the date.

    >>> from datetime import UTC, timedelta
    >>> now = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    >>> [time_ago(now - timedelta(**ago), now) for ago in (
    ...     {"seconds": 20}, {"minutes": 5}, {"hours": 3}, {"days": 2}, {"days": 40})]
    ['just now', '5 min ago', '3 h ago', '2 d ago', '2024-01-30']
    >>> time_ago(now + timedelta(hours=2), now)  # a sender's clock ahead of ours
    'just now'
    """
    seconds = (now - when).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 30 * 86400:
        return f"{int(seconds // 86400)} d ago"
    return when.strftime("%Y-%m-%d")


def excerpt(text: str, limit: int = SNIPPET_CHARS) -> str:
    r"""The start of ``text`` on one line, at most ``limit`` characters, cut at a word.

    >>> excerpt("Hello,\n\n  the invoice   is late.")
    'Hello, the invoice is late.'
    >>> excerpt("one two three four", 12)
    'one two…'
    >>> excerpt("abcdefghijklmnop", 6)
    'abcde…'
    """
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"
