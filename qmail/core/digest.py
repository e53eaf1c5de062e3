"""Compose the daily digest: one mail listing what happened in a person's tasks.

For people who chose the digest over a mail per message (``qmail.outbound.digest`` picks
what they may read, as a notification would; this module only renders it from
``templates/mail/digest.txt`` and ``digest.html``).  It lists each task's number, title
and link, and the new messages' authors and first lines, never their whole text, nor
tags: the digest goes to clients too.  It answers no particular message, so it has no
reply address and no thread; it comes from ``noreply@<domain>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from jinja2 import Environment

from qmail.core.compose import plain_text
from qmail.core.headers import mailbox, msg_id, new_message, one_line
from qmail.core.mail import Address

FIRST_LINE = 120  # characters of a message shown in the digest


@dataclass(frozen=True)
class DigestLine:
    """One new message: who wrote it, and the first line of what they wrote."""

    author: str
    first_line: str


@dataclass(frozen=True)
class DigestTask:
    """A task with news; ``more`` counts the messages left out after ``lines``."""

    number: int
    title: str
    link: str
    lines: tuple[DigestLine, ...]
    more: int = 0


@dataclass(frozen=True)
class Digest:
    """One person's digest: their tasks with news, oldest number first."""

    recipient: Address
    tasks: tuple[DigestTask, ...]
    settings_url: str
    message_id: str
    domain: str
    team_name: str
    loop_marker: str
    date: datetime | None = None


def compose_digest(digest: Digest, env: Environment) -> EmailMessage:
    """The digest mail: a text part and its HTML alternative."""
    count = len(digest.tasks)
    message = new_message(
        sender=mailbox(digest.team_name, f"noreply@{digest.domain}"),
        recipient=mailbox(digest.recipient.name, digest.recipient.email),
        reply_to=None,
        subject=f"Daily digest: news in {count} task{'s' if count != 1 else ''}",
        message_id=msg_id(digest.message_id, digest.domain, strict=True),
        auto_submitted="auto-generated",
        loop_marker=digest.loop_marker,
        date=digest.date,
    )
    context = {
        "tasks": [
            {
                "number": task.number,
                "title": one_line(task.title),
                "link": task.link,
                "lines": [(one_line(x.author), one_line(x.first_line)) for x in task.lines],
                "more": task.more,
            }
            for task in digest.tasks
        ],
        "settings_url": digest.settings_url,
        "team_name": one_line(digest.team_name),
    }
    message.set_content(env.get_template("digest.txt").render(**context))
    message.add_alternative(env.get_template("digest.html").render(**context), subtype="html")
    return message


def first_line(text: str) -> str:
    r"""The first line with words in it, cut to ``FIRST_LINE`` characters.

    >>> first_line("\n\n  Hello,  \nthe rest")
    'Hello,'
    >>> first_line("x" * 130) == "x" * 119 + "…"
    True
    >>> first_line("")
    ''
    """
    for line in plain_text(text).splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= FIRST_LINE else line[: FIRST_LINE - 1] + "…"
    return ""
