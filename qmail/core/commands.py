"""Commands: lines at the top of a team member's reply that act on the task.

``#tag NAME``, ``#untag NAME``, ``#close``, ``#reopen``, ``#assign EMAIL``, one per line,
before any other text.  ``parse_commands`` only recognises them; whether they apply (the
author must be a team member) is decided where the author is known.  From anyone else the
lines stay ordinary text.
"""

from __future__ import annotations

import re

from qmail.core.mail import Command
from qmail.core.route import normalize_tag

_LINE = re.compile(r"^#(tag|untag|close|reopen|assign)\b[ \t]*(.*?)\s*$", re.IGNORECASE)
_EMAIL = re.compile(r"^<?([^\s<>@]+@[^\s<>@]+\.[^\s<>@]+)>?$")
_NEEDS_ARGUMENT = {"tag", "untag", "assign"}


def parse_commands(text: str) -> tuple[str, tuple[Command, ...]]:
    r"""Split command lines off the top of ``text``: (the rest, the commands).

    >>> text, commands = parse_commands("#tag Billing\n#close\n\nDone, invoice sent.")
    >>> text, [(command.name, command.argument) for command in commands]
    ('Done, invoice sent.', [('tag', 'billing'), ('close', '')])
    >>> parse_commands("We #close tomorrow.")
    ('We #close tomorrow.', ())
    >>> parse_commands("#tag\nno name given")
    ('#tag\nno name given', ())
    """
    lines = text.split("\n")
    commands: list[Command] = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        if not line:
            index += 1
            continue
        found = _parse_line(line)
        if not found:
            break
        commands.extend(found)
        index += 1
    if not commands:
        return text, ()
    return "\n".join(lines[index:]).strip("\n"), tuple(commands)


def _parse_line(line: str) -> list[Command]:
    """The commands on one line, or ``[]`` when the line is not a valid command."""
    match = _LINE.match(line)
    if match is None:
        return []
    name, argument = match.group(1).lower(), match.group(2)
    if name not in _NEEDS_ARGUMENT:
        return [Command(name)] if not argument else []
    if name == "assign":
        email = _EMAIL.match(argument)
        return [Command("assign", email.group(1).lower())] if email else []
    tags = [normalize_tag(word) for word in re.split(r"[,\s]+", argument) if word]
    return [Command(name, tag.lstrip("#")) for tag in tags if tag.lstrip("#")]
