r"""Find the signatures and footers under the new text: the signature half of the *trim* stage.

``trim`` has already told quotes and attributions from the rest; here each *section*
(the lines between two quoted blocks, or after the last one) is read from its end, and
what closes it is marked ``sig``, block by block, until a block is the person's text:

- ``-- `` and everything under it; ``--`` when at most six lines follow;
- a phone or mail app footer ("Sent from my iPhone", "Get Outlook for iOS<https://...>");
- a name signed with a dash ("-Abhishek Kona");
- a line of delimiters (``___``, ``~~~``, ``===``, ``—————``) alone, or over a few short
  lines with contact details: a mailing-list footer, a company signature;
- a sign-off ("Best regards,", "С уважением,") over a name and contact lines (an address,
  a phone number, a web site): the whole block; a sign-off over a name alone is the
  person's own closing and stays, as do "regards" in a sentence and a name without
  contact lines;
- a paragraph of a name and two contact lines or more, at the end.

It must never take the first text line of the reply, nor anything inside a code block.
Pure: stdlib only, no I/O.
"""

# Cyrillic letters, dashes and full-width punctuation below are meant as they are.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import re
from typing import Literal

from qmail.core.trim_closings import FOOTERS, SIGN_OFFS
from qmail.core.trim_lines import alternatives, clean, is_delimiter

Kind = Literal["text", "blank", "quote", "attr", "sig"]

MAX_SHORT_SIGNATURE = 6  # lines under a "--" without its space
MAX_BLOCK = 8  # lines of a delimiter or sign-off block
MAX_NAME_WORDS = 5
MAX_LINE_WORDS = 8  # words of a signature line ("Example Inc. | 1 Main Street, Springfield")
_NAME_WORD = re.compile(r"^[^\W\d_][^\W\d_.'’-]*(?:[.'’-][^\W\d_]*)*\.?,?$")  # Jean-Luc, O'Neil, J.
_NAME_PARTICLES = frozenset(("van", "von", "de", "der", "den", "da", "di", "du", "la", "le"))
_POSTSCRIPT = re.compile(r"^P\.?\s?S\b", re.IGNORECASE)  # "PS: call me at ..." is text

# Footers: whole lines, as apps write them ("Get Outlook for iOS<https://...>").
_FOOTER = re.compile(
    alternatives([f for footers in FOOTERS.values() for f in footers], escape=False) + r"\s*$"
)
# Links are taken off first, glued on or inside: "Sent from Mail (https://...) for Windows".
_LINK = re.compile(r"\s*(?:<https?://[^>]*>|\[https?://[^\]]*\]|\(https?://[^)]*\))")
MAX_FOOTER = 100

_SIGN_OFF = re.compile(
    alternatives([sign_off for words in SIGN_OFFS.values() for sign_off in words])
    + r"[\s,.!:;，。！、~-]*$",
    re.IGNORECASE,
)
# "-Abhishek Kona", "— Bob", "- John": a name signed with a dash.
_DASH_NAME = re.compile(r"^[-—–~]\s?[A-Z][\w.'’-]*(?:\s[A-Z][\w.'’-]*){0,2}\s*$")
_PHONE = re.compile(r"(?:\+|\b)\d[\d ()./-]{6,}\d\b")
_URL = re.compile(r"https?://|\bwww\.|\b[\w-]+\.(?:com|org|net|io|de|fr|ru|co|uk)\b", re.I)
_CONTACT_LABEL = re.compile(
    r"^(?:tel|phone|mobile|mob|cell|fax|t|m|p|e|w|тел|моб|tél|telefon|puh)\.?\s*[:.]",
    re.IGNORECASE,
)


def is_footer(line: str) -> bool:
    """Tell whether a line is a footer that a phone or mail app appends.

    >>> is_footer("Get Outlook for iOS<https://aka.ms/o0ukef>"), is_footer("Sent from my iPhone")
    (True, True)
    >>> is_footer("Sent from my desk, it is easier."), is_footer("Sent from a magnificent torch")
    (False, False)
    """
    text = _LINK.sub("", clean(line))
    return len(text) <= MAX_FOOTER and bool(_FOOTER.match(text))


def is_sign_off(line: str) -> bool:
    """Tell whether a line is only a closing such as "Best regards," or "С уважением,".

    >>> is_sign_off("Best regards,"), is_sign_off("Med venlig hilsen"), is_sign_off("Regards all")
    (True, True, False)
    """
    return bool(_SIGN_OFF.match(clean(line)))


def is_dash_name(line: str) -> bool:
    """Tell whether a line is a name signed with a dash: "-Abhishek Kona", "— Bob".

    >>> is_dash_name("-Abhishek Kona"), is_dash_name("- John"), is_dash_name("-rw------- 1")
    (True, True, False)
    """
    return bool(_DASH_NAME.match(line.strip()))


def is_contact(line: str) -> bool:
    """Tell whether a line carries contact details: an address, a phone number, a web site.

    >>> is_contact("📱 +1 555-0123"), is_contact("CEO @ Acme"), is_contact("Operations | ACME")
    (True, True, False)
    """
    text = clean(line)
    return bool(
        "@" in text or _PHONE.search(text) or _URL.search(text) or _CONTACT_LABEL.match(text)
    )


def is_sentence(line: str) -> bool:
    """Tell whether a line reads as prose: six words or more, ending as a sentence ends.

    >>> is_sentence("Also these signs are just separators in my text."), is_sentence("ACME Inc.")
    (True, False)
    """
    text = clean(line)
    return len(text.split()) >= 6 and text.endswith((".", "!", "?", ":", "。", "！", "？"))


def mark_signatures(lines: list[str], kinds: list[Kind], fenced: list[bool]) -> None:
    """Mark the signature blocks that end each section ``sig``, in place."""
    first = next((i for i, kind in enumerate(kinds) if kind == "text"), len(kinds))
    for start, end in sections(kinds):
        end = _mark_dash_dash(lines, kinds, fenced, start, end)
        while (last := _last_text(kinds, start, end)) is not None:
            begin = _block_start(lines, kinds, fenced, max(start, first + 1), last)
            if begin is None:
                break
            kinds[begin : last + 1] = ["sig"] * (last + 1 - begin)
            end = begin


def sections(kinds: list[Kind]) -> list[tuple[int, int]]:
    """The runs of lines between quotes and attributions, as ``(start, end)`` ranges.

    >>> sections(["text", "blank", "quote", "text", "attr", "quote"])
    [(0, 2), (3, 4)]
    """
    found: list[tuple[int, int]] = []
    start = 0
    for i, kind in enumerate([*kinds, "quote"]):
        if kind in ("quote", "attr"):
            if i > start:
                found.append((start, i))
            start = i + 1
    return found


def _last_text(kinds: list[Kind], start: int, end: int) -> int | None:
    return next((i for i in range(end - 1, start - 1, -1) if kinds[i] == "text"), None)


def _mark_dash_dash(
    lines: list[str], kinds: list[Kind], fenced: list[bool], start: int, end: int
) -> int:
    """Mark from a ``-- `` line (or a ``--`` over a short block) to the end of the section."""
    for i in range(start, end):
        if fenced[i] or kinds[i] != "text" or lines[i].rstrip() != "--":
            continue
        after = sum(kind == "text" for kind in kinds[i + 1 : end])
        if lines[i] == "-- " or after <= MAX_SHORT_SIGNATURE:
            kinds[i:end] = ["sig"] * (end - i)
            return i
    return end


def _block_start(
    lines: list[str], kinds: list[Kind], fenced: list[bool], start: int, last: int
) -> int | None:
    """Where a signature block ending at line ``last`` begins; None if it is text."""
    if last < start or fenced[last]:
        return None
    line = lines[last]
    if is_footer(line) or (is_dash_name(line) and not _in_list(lines, last)):
        return last

    for rule in (_delimiter_block, _sign_off_block, _contact_block):
        begin = rule(lines, kinds, start, last)
        if begin is not None and not any(fenced[begin : last + 1]):
            return begin
    return None


def _in_list(lines: list[str], last: int) -> bool:
    """Tell whether a dash line may be an item of a list: "- Bob" right under "Who:".

    It is when the line above is a dash line too, or when it has a space after its dash
    ("- Bob", a bullet's shape) and no blank line above it.
    """
    above = next((j for j in range(last - 1, -1, -1) if lines[j].strip()), None)
    if above is None:
        return False
    bullet = lines[last].lstrip()[1:2].isspace() and above == last - 1
    return bullet or lines[above].lstrip().startswith(("-", "—", "–", "~"))


def _short_lines(lines: list[str], first: int, last: int) -> bool:
    """Tell whether lines ``first..last`` are few and none of them reads as prose.

    >>> _short_lines(["Jane Roe", "+1 555 0100"], 0, 1), _short_lines(["PS: call me"], 0, 0)
    (True, False)
    """
    block = [clean(line) for line in lines[first : last + 1] if line.strip()]
    return len(block) <= MAX_BLOCK and not any(
        is_sentence(line) or len(line.split()) > MAX_LINE_WORDS or _POSTSCRIPT.match(line)
        for line in block
    )


def _delimiter_block(lines: list[str], kinds: list[Kind], start: int, last: int) -> int | None:
    """A delimiter line alone, or over a few short lines: a name first, or contact details.

    A rule over a few short lines of the person's own ("---", "Q1: 100") is text, and so
    is the underline of a heading over some lines (it has no blank line above it).
    """
    for i in range(last, max(start, last - MAX_BLOCK) - 1, -1):
        if kinds[i] == "text" and is_delimiter(lines[i]):
            below = [j for j in range(i + 1, last + 1) if kinds[j] == "text"]
            if below and i > 0 and lines[i - 1].strip():
                return None
            signed = not below or _is_full_name(lines[below[0]])
            contact = signed or any(is_contact(lines[j]) for j in below)
            return i if contact and _short_lines(lines, i + 1, last) else None
    return None


def _is_name(line: str) -> bool:
    """Tell whether a line may be a person's name: a few words, no digits, no sentence.

    >>> _is_name("John Doe"), _is_name("Call me at 5."), _is_name("Алексей Смирнов")
    (True, False, True)
    >>> _is_name("佐藤 健"), _is_name("thanks again"), _is_name("Delivery Channels: [")
    (True, False, False)
    """
    text = line.strip()
    words = text.split()
    return (
        0 < len(words) <= MAX_NAME_WORDS
        and all(_NAME_WORD.match(word) for word in words)
        and not text.endswith(".")
        and not text[0].islower()  # capitalised, or a script without case (王伟)
    )


def _is_full_name(line: str) -> bool:
    """Tell whether a line is a name with every word capitalised: "Jane Roe", not "See you".

    >>> _is_full_name("Jane van Roe"), _is_full_name("See you tomorrow"), _is_full_name("王伟")
    (True, False, True)
    """
    words = [word for word in line.split() if word not in _NAME_PARTICLES]
    return _is_name(line) and all(not word[0].islower() for word in words)


def _sign_off_block(lines: list[str], kinds: list[Kind], start: int, last: int) -> int | None:
    """A sign-off, maybe a blank line, a name, then contact lines without a gap, to ``last``."""
    for i in range(last - 1, max(start, last - MAX_BLOCK) - 1, -1):
        if kinds[i] == "text" and is_sign_off(lines[i]):
            below = [j for j in range(i + 1, last + 1) if kinds[j] == "text"]
            name, rest = below[0], below[1:]
            contiguous = rest == list(range(name + 1, last + 1))
            if rest and contiguous and _is_name(lines[name]) and _short_lines(lines, i, last):
                return i if any(is_contact(lines[j]) for j in rest) else None
            return None
    return None


def _contact_block(lines: list[str], kinds: list[Kind], start: int, last: int) -> int | None:
    """The last paragraph, when it is a name over two contact lines or more."""
    first = last
    while first > start and kinds[first - 1] == "text":
        first -= 1
    if first == start or not _is_name(lines[first]) or not _short_lines(lines, first, last):
        return None
    contacts = sum(is_contact(lines[j]) for j in range(first + 1, last + 1))
    return first if contacts >= 2 else None
