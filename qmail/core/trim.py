"""Trim a reply down to what its author wrote: the *trim* stage of the mail flow.

``trim_reply(text)`` takes the decoded plain text body of an inbound reply and splits it
into the new text and what was removed (quoted history, attribution lines, signatures,
phone footers), so the removed part can still be shown on demand.

It reads the lines in three passes; the words of every language live in
``trim_patterns`` and the tests of a single line in ``trim_lines``:

1. *Cut*: the first line where the rest of the mail is history, quoted or not: a
   separator ("-----Original Message-----", "*---- Forwarded message ----*"), an Outlook
   header block (From/Sent/To/Subject in any language of the tables), an attribution
   with a date or an address that unquoted history follows ("Op 12 december 2016 19:05
   schreef Jan <jan@x.nl>:" over the old mail pasted as is), or a phone footer standing
   alone above more text.
2. *Classify* each line above the cut: ``quote`` (``>``, and the unquoted tail of a long
   quoted line that a client wrapped after quoting), ``attr`` (an attribution, wrapped
   over up to three lines, that quoted lines follow), ``blank`` or ``text``; then
   ``trim_signatures`` marks signatures and footers ``sig``.
3. *Decide*: top-posting (no quote above the last text line) keeps the text only.
   Inline answers (a quote above the last text line) keep the answers *and* the quotes
   they answer, so they still make sense; attributions, signatures and the trailing
   quote go.

This stage must never lose text: whatever it takes out is returned in ``quoted``, and a
mail that is nothing but history (a bare forward) comes back whole as ``text``.  It must
never cut on a line that merely mentions "wrote:" or starts with "From:": an attribution
counts only when quoted lines follow it or, with a date or an address, at the start of a
paragraph; a header line only inside a header block; nothing inside a code block
counts.  Pure: stdlib only, no I/O.
"""

from __future__ import annotations

import re

from qmail.core.mail import Trimmed
from qmail.core.trim_lines import (
    attribution_strength,
    ends_attribution,
    header_role,
    is_delimiter,
    is_quote,
    is_separator,
    may_start_attribution,
    starts_with_lead,
)
from qmail.core.trim_signatures import Kind, is_footer, mark_signatures

_HEADER_SPAN = 8  # lines a header block may take
_MAX_WRAP = 3  # lines an attribution may be wrapped over
_FOOTER_WORDS = 8  # a footer that the history follows is short: "Sent from my Wiko RIDGE 4G"
_LONG_QUOTE = 60  # a quoted line this long may have been wrapped after quoting
_ADDRESS_END = re.compile(r"^\s*>+\s*:\s*$")  # Gmail wraps "<a@b.com\n>:"
_NEW_ATTRIBUTION = re.compile(r"^(?:[A-Z]|\d)")
_ALONE, _CERTAIN = 2, 3  # attribution strengths: date or address; date and address
Found = tuple[int, int]  # an attribution's length in lines and its strength; (0, 0): none


def trim_reply(text: str) -> Trimmed:
    """Split a reply body into the new text and the removed history and signature."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    fenced = _fenced(lines)
    found = _attributions(lines)
    cut = _find_cut(lines, fenced, found)
    head = lines[:cut]
    kinds = _classify(head, fenced, found)
    mark_signatures(head, kinds, fenced)
    last = max((i for i, kind in enumerate(kinds) if kind == "text"), default=None)
    if last is None:
        return Trimmed(_strip_ends("\n".join(lines)))
    inline = "quote" in kinds[:last]
    keep = ("text", "blank", "quote") if inline else ("text", "blank")
    kept = {i for i in range(last + 1) if kinds[i] in keep}
    removed = [line for i, line in enumerate(head) if i not in kept] + lines[cut:]
    return Trimmed(
        _strip_ends("\n".join(head[i] for i in sorted(kept))), _strip_ends("\n".join(removed))
    )


def _strip_ends(text: str) -> str:
    r"""Drop blank lines at both ends and trailing white space; keep inner lines.

    >>> _strip_ends("\n  \nHi,\n\n  there  \n\n")
    'Hi,\n\n  there'
    """
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines).rstrip()


def _fenced(lines: list[str]) -> list[bool]:
    """Mark the lines of Markdown code blocks (```), fences included.

    >>> _fenced(["a", "```", "-- ", "```", "b"])
    [False, True, True, True, False]
    """
    marks, inside = [], False
    for line in lines:
        fence = line.lstrip().startswith("```")
        marks.append(inside or fence)
        inside = inside != fence
    return marks


def _find_cut(lines: list[str], fenced: list[bool], found: list[Found]) -> int:
    """Find where history begins that nothing new follows; ``len(lines)`` if nowhere."""
    for i, line in enumerate(lines):
        if fenced[i] or is_quote(line) or not line.strip():
            continue
        if is_separator(line):
            return i
        if _is_header_block(lines, i):
            return _with_delimiter_above(lines, i)
        if _is_unquoted_attribution(lines, i, found[i]) or _is_lone_footer(lines, i):
            return i
    return len(lines)


def _is_unquoted_attribution(lines: list[str], i: int, found: Found) -> bool:
    """Tell whether an attribution at ``i`` with a date or an address has no quote after it."""
    length, strength = found
    if not length or _quote_follows(lines, i + length):
        return False
    return strength == _CERTAIN or (strength == _ALONE and _paragraph_start(lines, i))


def _is_header_block(lines: list[str], start: int) -> bool:
    """Tell whether a header line starts a block: three roles or more, one of them From."""
    first = header_role(lines[start])
    if first is None:
        return False
    roles = {first}
    for line in lines[start + 1 : start + _HEADER_SPAN]:
        if not line.strip():
            break
        role = header_role(line)
        if role is not None:
            roles.add(role)
    return "from" in roles and len(roles) >= 3


def _with_delimiter_above(lines: list[str], start: int) -> int:
    """Move a cut up to the delimiter line Outlook puts above its headers, over blanks."""
    above = start
    while above > 0 and not lines[above - 1].strip():
        above -= 1
    return above - 1 if above > 0 and is_delimiter(lines[above - 1]) else start


def _is_lone_footer(lines: list[str], i: int) -> bool:
    """Tell whether a short phone footer stands alone above more unquoted text (history).

    Phones paste the history under their footer ("Sent from my Wiko", then the old mail).
    """
    above = i == 0 or not lines[i - 1].strip()
    alone = above and i + 1 < len(lines) and not lines[i + 1].strip()
    short = len(lines[i].split()) <= _FOOTER_WORDS and "," not in lines[i]
    if not (alone and short) or not is_footer(lines[i]):
        return False
    rest = next((line for line in lines[i + 1 :] if line.strip()), None)
    return rest is not None and not is_quote(rest)


def _paragraph_start(lines: list[str], i: int) -> bool:
    """Tell whether line ``i`` starts a paragraph (a phone footer above it counts as a break)."""
    return i == 0 or not lines[i - 1].strip() or is_quote(lines[i - 1]) or is_footer(lines[i - 1])


def _attributions(lines: list[str]) -> list[Found]:
    """The attribution at each line (see ``_attribution_at``), computed once.

    Only lines near one that ends as an attribution ends are looked at.
    """
    ends = [ends_attribution(line) for line in lines]
    return [
        _attribution_at(lines, i, ends) if any(ends[i : i + _MAX_WRAP]) else (0, 0)
        for i in range(len(lines))
    ]


def _attribution_at(lines: list[str], start: int, ends: list[bool]) -> Found:
    """The length (1-3 lines) and strength of an attribution at ``start``; ``(0, 0)`` if none.

    ``ends`` tells which lines end as an attribution ends (``ends_attribution``).

    >>> lines = ["On Mon, 3 Jun 2024, Bob <", "b@x.com> wrote:", "", "> hi"]
    >>> _attribution_at(lines, 0, [False, True, False, False])
    (2, 3)
    >>> _attribution_at(["As Bob wrote: the plan is fine.", "> hi"], 0, [False, False])
    (0, 0)
    """
    for end in range(start, min(start + _MAX_WRAP, len(lines))):
        line = lines[end]
        if not line.strip() or (is_quote(line) and not _ADDRESS_END.match(line)):
            break
        if not ends[end]:
            continue
        if end > start and (
            not may_start_attribution(lines[start])
            or any(_starts_anew(lines, k, end) for k in range(start + 1, end + 1))
        ):
            break
        strength = attribution_strength(" ".join(part.strip() for part in lines[start : end + 1]))
        if strength:
            return end + 1 - start, strength
    return 0, 0


def _starts_anew(lines: list[str], first: int, last: int) -> bool:
    """Tell whether lines ``first..last`` are an attribution of their own ("On Mon, ...").

    >>> _starts_anew(["On Mon, 3 Jun 2024, Anna <a@b.com> wrote:"], 0, 0)
    True
    >>> _starts_anew(["at 10:18,", "Bob <b@x.com> wrote:"], 0, 1), _starts_anew(["09:12:"], 0, 0)
    (False, False)
    """
    line = lines[first].strip()
    if not _NEW_ATTRIBUTION.match(line) or not starts_with_lead(line):
        return False
    return attribution_strength(" ".join(part.strip() for part in lines[first : last + 1])) > 0


def _quote_follows(lines: list[str], start: int) -> bool:
    """Tell whether the first non-blank line from ``start`` on is quoted."""
    rest = (lines[i] for i in range(start, len(lines)) if lines[i].strip())
    return is_quote(next(rest, ""))


def _is_wrapped_tail(lines: list[str], i: int) -> bool:
    """Tell whether an unquoted line is the rest of a long quoted line a client wrapped.

    >>> quote = "> " + "word " * 14
    >>> _is_wrapped_tail([quote, "odio?", "> next"], 1), _is_wrapped_tail([quote, "Yes.", ">"], 1)
    (True, False)
    """
    line = lines[i].strip()
    return (
        0 < i < len(lines) - 1
        and bool(line)
        and line[0].islower()
        and is_quote(lines[i - 1])
        and len(lines[i - 1].rstrip()) >= _LONG_QUOTE
        and is_quote(lines[i + 1])
    )


def _classify(lines: list[str], fenced: list[bool], found: list[Found]) -> list[Kind]:
    """Give each line its kind: quote, attribution, blank or text."""
    kinds: list[Kind] = []
    pending = 0
    for i, line in enumerate(lines):
        if pending:
            pending -= 1
            kinds.append("attr")
        elif not line.strip():
            kinds.append("blank")
        elif fenced[i]:
            kinds.append("text")
        elif is_quote(line) or _is_wrapped_tail(lines, i):
            kinds.append("quote")
        elif (length := _attribution_before_quote(lines, i, found[i])) is not None:
            pending = length - 1
            kinds.append("attr")
        else:
            kinds.append("text")
    return kinds


def _attribution_before_quote(lines: list[str], i: int, found: Found) -> int | None:
    """The length of an attribution at ``i`` that quoted lines follow, or None.

    Inside a paragraph it needs a date or an address: "On Monday we wrote:" is text.
    """
    length, strength = found
    if not length or not _quote_follows(lines, i + length):
        return None
    return length if strength >= _ALONE or _paragraph_start(lines, i) else None
