r"""What one line of a reply is, seen alone: the history tests of the *trim* stage.

``trim_patterns`` holds the words of every language; this module compiles them once and
answers questions about a single line or a few wrapped lines joined: is it quoted, an
Outlook header, a separator, a line of delimiters, an attribution (and how sure are we)?
``trim`` decides what to cut from these answers and the lines around them;
``trim_signatures`` has the tests of closings.  Pure: stdlib only, no I/O.
"""

# Full-width colons (CJK mail programs) and Cyrillic day names below are meant as they are.
# ruff: noqa: RUF001, RUF002, RUF003

from __future__ import annotations

import re

from qmail.core.trim_patterns import HISTORY, ROLES


def alternatives(items: list[str], escape: bool = True) -> str:
    """One regex group matching any of ``items``, longest first.

    >>> alternatives(["on", "one"])
    '(?:one|on)'
    """
    ordered = sorted(set(items), key=len, reverse=True)
    return "(?:" + "|".join(re.escape(item) if escape else item for item in ordered) + ")"


# Attribution: a verb of some language before the final colon ("wrote:", "a écrit :"),
# or one that name and address follow ("schreef Naam <a@b>:"), or, in any language, a
# date first and an address last ("2021-03-04 09:12 GMT+01:00 Jan <jan@x.nl>:").
_LAST_VERBS = tuple(
    sorted({verb.casefold() for lang in HISTORY.values() for verb in lang.wrote}, key=len)[::-1]
)
_VERB_BEFORE_NAME = re.compile(
    r"\b"
    + alternatives([verb for lang in HISTORY.values() for verb in lang.wrote_before_name])
    + r"\b",
    re.IGNORECASE,
)
# A date first: digits, or a short day name and digits ("Mon, 3", "tir. 18.", "ср, 30",
# "pe 20."), or a long one with its comma ("Wednesday, 17"); "Tomorrow 10:00" is not.
_DAY = r"(?:\d|(?:[^\W\d]{1,4}[.,]{0,2}|[^\W\d]{5,12}[.,]{1,2})\s+\d)"
_DATE_START = re.compile(rf"^{_DAY}")
_ADDRESS_END = re.compile(r"@[\w-]+(?:\.[\w-]+)+(?:\]\(mailto:[^)\s]*\))?[>)\]]+\s*[:：]$")
_TAIL = 80  # an attribution's address is within its last characters
_UNSPACED = 0x2E80  # from here on (CJK), words are not separated by spaces
# Zoho and some webmails: "---- On Wed, 24 Feb 2021 14:02:50 +0530 a@b.com wrote ----".
_WROTE_NO_COLON = re.compile(r"^On\b.*\bwrote$", re.IGNORECASE)
_LEADS = [lead for language in HISTORY.values() for lead in language.leads]
# A line that may begin an attribution wrapped over several lines: a lead word, a date,
# or a short word and a number ("tir. 18. apr. 2017 ...", "pe 20. lokakuuta ...").
_LEAD = re.compile(rf"^(?:{alternatives(_LEADS)}\b|{_DAY})", re.IGNORECASE)
_DECORATION = re.compile(r"^[-=*_\s]*(?=\S)|(?<=\S)[-=*_\s]*$")
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_DATE = re.compile(
    r"\b(?:19|20)\d\d\b|\b\d{1,2}[:.h]\d{2}\b|\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b|\d{1,2}月",
    re.IGNORECASE,
)
MAX_ATTRIBUTION = 300
_ENDINGS = (":", "：", "-", "=", "*", "_")  # how an attribution ends, decorated or not

# Outlook header blocks: a label (maybe bold, maybe with a no-break space before the
# colon, maybe no space after it) of one of the roles.
_ROLES = {
    label.casefold(): role
    for history in HISTORY.values()
    for role, labels in zip(ROLES, history.headers, strict=False)
    for label in labels
}
_LABEL = re.compile(r"^[*_]*([^\W\d_][^:：*]{0,20}?)[*_]*\s*[:：][*_]*")

_SEPARATOR_PHRASES = alternatives(
    [phrase for language in HISTORY.values() for phrase in language.separators]
)
_FORWARDS = alternatives([phrase for lang in HISTORY.values() for phrase in lang.forwards])
_SEPARATOR = re.compile(
    rf"^[*\s]*[-=_~]{{2,}}\s*{_SEPARATOR_PHRASES}\s*[-=_~]{{2,}}[*\s]*$"
    rf"|^[-=_~]{{3,}}\s*{_SEPARATOR_PHRASES}\s*:?$|^{_FORWARDS}\s*:$",
    re.IGNORECASE,
)
_REPLY_ABOVE = tuple(phrase.casefold() for lang in HISTORY.values() for phrase in lang.reply_above)
_MAX_SEPARATOR = 100

_SEPARATOR_HINT = re.compile(r"[-=_~]{2}|[:：]\s*$")
_LETTER = re.compile(r"[^\W\d_]")

# A line made only of delimiter characters, maybe spaced ("* * *", html2text's <hr>).
_DELIMITER = re.compile(r"^\s*(?:[-_=~*+#•·—–─━═](?: ?[-_=~*+#•·—–─━═]){2,}|__)\s*$")


def clean(line: str) -> str:
    r"""A line with its white space (no-break spaces too) made single spaces, ends stripped.

    >>> clean("  Objet\u00a0: Re:  x ")
    'Objet : Re: x'
    """
    return " ".join(line.split())


def is_quote(line: str) -> bool:
    """Tell whether a line is quoted with ``>`` (also as html2text writes it).

    >>> is_quote("> Can you fix it?"), is_quote(">>nested"), is_quote("a > b")
    (True, True, False)
    """
    return line.lstrip(" ").startswith(">")


def header_role(line: str) -> str | None:
    """Name the Outlook header a line starts with: from, date, to, cc, subject or None.

    >>> header_role("Von: Max <max@example.de>"), header_role("**Sent:** Monday")
    ('from', 'date')
    >>> header_role("Objet\u00a0: Re: [#12]"), header_role("Envoyé le :jeudi")
    ('subject', 'date')
    >>> header_role("Hello: world"), header_role("发件人: Company <q@x.com>")
    (None, 'from')
    """
    if ":" not in line and "：" not in line:
        return None  # most lines: one look
    match = _LABEL.match(clean(line))
    return None if match is None else _ROLES.get(match.group(1).strip().casefold())


def is_separator(line: str) -> bool:
    """Tell whether a line announces quoted or forwarded history on its own.

    >>> is_separator("*-------- Original Message --------*")
    True
    >>> is_separator("-------- Oprindelig besked --------"), is_separator("Original Message")
    (True, False)
    >>> is_separator("##- Please type your reply above this line -##")
    True
    >>> is_separator("-- Reply above this line --")
    True
    """
    if len(line) > _MAX_SEPARATOR:
        return False
    if _SEPARATOR_HINT.search(line) and _LETTER.search(line) and _SEPARATOR.match(clean(line)):
        return True
    folded = line.casefold()
    return any(phrase in folded for phrase in _REPLY_ABOVE)


def is_delimiter(line: str) -> bool:
    """Tell whether a line is made only of delimiters: ``___``, ``~~~``, ``===``, ``—————``.

    >>> is_delimiter("___"), is_delimiter(" ------------------------------"), is_delimiter("—")
    (True, True, False)
    >>> is_delimiter("* * *"), is_delimiter("-=-=-=-"), is_delimiter("- a -")
    (True, True, False)
    """
    return bool(_DELIMITER.match(line))


def attribution_strength(candidate: str) -> int:
    """How sure an attribution is: 0 none, 1 by its words, 2 with an address or a date, 3 both.

    ``candidate`` is one line or a few wrapped lines joined with spaces.

    >>> attribution_strength("On Mon, 3 Jun 2024 at 10:12, Anna <anna@example.com> wrote:")
    3
    >>> attribution_strength("On Nov 26, 2013 you wrote:"), attribution_strength("Bob wrote:")
    (2, 1)
    >>> attribution_strength("On Monday we wrote"), attribution_strength("Notes: see below")
    (0, 0)
    >>> attribution_strength("On 3 Jun 2024 " + "and so on " * 40 + "wrote:")  # a paragraph
    0
    """
    text = _DECORATION.sub("", clean(candidate))
    if len(text) > MAX_ATTRIBUTION:
        return 0
    address, date = bool(_ADDRESS.search(text)), bool(_DATE.search(text))
    if not _is_attribution(text) and not (_WROTE_NO_COLON.match(text) and address and date):
        return 0
    return 1 + address + date


def _is_attribution(text: str) -> bool:
    """Tell whether a cleaned line ends as an attribution does, in some language.

    >>> _is_attribution("Le 3 juin, Luc a écrit :"), _is_attribution("Bob rewrote:")
    (True, False)
    >>> _is_attribution("在 2016年11月8日，Test 写道："), _is_attribution("Agenda for 10:30:")
    (True, False)
    """
    if not text.endswith((":", "：")):
        return False
    body = text[:-1].rstrip().casefold()
    for verb in _LAST_VERBS:
        if body.endswith(verb):
            before = body[: -len(verb)][-1:]
            # A verb is a word of its own ("rewrote:", ".../admin-wrote:" are not), except
            # in scripts written without spaces.
            return not before or before.isspace() or ord(verb[0]) >= _UNSPACED
    tail = text[-_TAIL:]
    return bool(
        _VERB_BEFORE_NAME.search(text) or (_DATE_START.match(text) and _ADDRESS_END.search(tail))
    )


def may_start_attribution(line: str) -> bool:
    """Tell whether a line may be the first of an attribution wrapped over several lines.

    It starts with a lead word or a date, or names an address ("Max <m@x.de> schrieb am
    Di., 4. Juni 2024,"), and does not end a sentence.

    >>> may_start_attribution("On Nov 21, 2014,"), may_start_attribution("wt., 4 cze 2024 o")
    (True, True)
    >>> may_start_attribution("Thanks"), may_start_attribution("Mail bob@x.com today.")
    (False, False)
    """
    text = _DECORATION.sub("", clean(line))
    start = starts_with_lead(text) or bool(_ADDRESS.search(text))
    return start and not text.endswith((".", "!", "?"))


def starts_with_lead(line: str) -> bool:
    """Tell whether a line starts as attributions do: a lead word ("On", "Am") or a date.

    >>> starts_with_lead("On Mon, 3 Jun"), starts_with_lead("09:12:"), starts_with_lead("Max <m@x>")
    (True, True, False)
    """
    return bool(_LEAD.match(line.lstrip(" -=*_")))


def ends_attribution(line: str) -> bool:
    """Tell whether a line may be the last of an attribution: it ends as one ends.

    >>> ends_attribution("<b@x.com> wrote:"), ends_attribution("wrote ----"), ends_attribution("x")
    (True, True, False)
    """
    tail = line.rstrip()
    if not tail.endswith(_ENDINGS) and tail[-5:].casefold() != "wrote":
        return False  # most lines: one look at their end
    text = _DECORATION.sub("", clean(line))
    return text.endswith((":", "：")) or text.casefold().endswith("wrote")
