"""Trim a reply down to what its author wrote: the *trim* stage of the mail flow.

``trim_reply(text)`` takes the decoded plain text body of an inbound reply and splits it
into the new text and what was removed (quoted history, attribution lines, signatures,
mobile footers), so the removed part can still be shown on demand.

Rules, in the order they apply:

1. A *hard cut* ends the new part for good: a header block as Outlook writes it
   (``From:/Sent:/To:/Subject:`` in any of the languages of ``_HEADER_LABELS``, maybe
   after a ``____`` or ``-----Original Message-----`` line), or a forward marker.
2. Above the cut, every line is ``quote`` (starts with ``>``), ``attr`` (an attribution
   such as "On ..., Name wrote:" that is followed by quoted lines), ``sig`` (from ``-- ``
   to the next quote; a mobile footer line), ``blank`` or ``text``.
3. Top-posting (no quote above the last text line) keeps the text only.  Inline answers
   (a quote above the last text line) keep the answers *and* the quotes they answer, so
   they still make sense; attributions, signatures and the trailing quote are removed.

This stage must never lose text: whatever it takes out is returned in ``quoted``, and a
mail that is nothing but quote (a bare forward) comes back whole as ``text``.  It must
never cut on a line that merely mentions "wrote:" or starts with "From:": an attribution
counts only when quoted lines follow, a header line only inside a header block.  Pure:
stdlib only, no I/O.
"""

# The Russian patterns below are Cyrillic on purpose, not look-alike Latin letters.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import re
from typing import Literal

from qmail.core.mail import Trimmed

Kind = Literal["text", "blank", "quote", "attr", "sig"]

# Attribution lines, one pattern per language and client.  Each is matched against a
# stripped line (or two lines joined, as Gmail wraps long ones) and must end with ":".
_ATTRIBUTIONS: dict[str, tuple[str, ...]] = {
    # Gmail, Apple Mail, Thunderbird, K-9, mutt: "On ..., Name <a@b> wrote:"
    "en": (r"^On\b.*\bwrote\s*:$", r"@[\w.-]+[>)\]]*\s+wrote\s*:$"),
    # Gmail "пн, 3 июн. 2024 г. в 10:12, Иван <a@b>:"; Apple "... Иван написал(а):"
    "ru": (r"\bнаписала?(?:\(а\))?\s*:$",),
    "de": (r"^Am\b.*\bschrieb\b.*:$",),
    "fr": (r"^Le\b.*\ba écrit\s*:$",),
    "it": (r"^Il\b.*\bha scritto\s*:$",),
    "es": (r"^El\b.*\bescribió\s*:$",),
    "pt": (r"^Em\b.*\bescreveu\s*:$",),
    # Gmail "Op ... schreef Naam <a@b>:"; Apple "Op ... heeft Naam het volgende geschreven:"
    "nl": (r"^Op\b.*\bschreef\b.*:$", r"^Op\b.*\bhet volgende geschreven\s*:$"),
    # Gmail ru, Yandex "03.06.2024, 10:12, Иван <a@b>:", Mail.ru "... +03:00 от Иван <a@b>:"
    "any": (r"\b\d{1,2}:\d{2}\b.*[\w.+-]+@[\w-]+(?:\.[\w-]+)+[>)\]]*\s*:$",),
}
_ATTRIBUTION = re.compile(
    "|".join(f"(?:{p})" for ps in _ATTRIBUTIONS.values() for p in ps), re.IGNORECASE
)
_MAX_ATTRIBUTION = 250
_ADDRESS_TAIL = re.compile(r"^<?[\w.+-]+@")  # the second half of an address Gmail wrapped

# Outlook header block labels (desktop and web), by role and language.
_HEADER_LABELS: dict[str, tuple[str, ...]] = {
    "from": ("From", "От", "Von", "De", "Da", "Van"),
    "date": ("Sent", "Date", "Отправлено", "Дата", "Gesendet", "Datum", "Envoyé", "Inviato",
             "Data", "Enviado", "Enviada", "Fecha", "Verzonden"),
    "to": ("To", "Кому", "An", "À", "A", "Para", "Aan"),
    "cc": ("Cc", "Копия", "Kopie", "Cco"),
    "subject": ("Subject", "Тема", "Betreff", "Objet", "Oggetto", "Asunto", "Assunto",
                "Onderwerp"),
}  # fmt: skip
_LABEL = re.compile(r"^[*_]*([^\W\d_]+)[*_]*\s?:[*_]*(?:\s|$)")
_HEADER_SPAN = 8

# Lines that end the new part on their own (Outlook, Gmail, Apple, Yandex forwards).
_SEPARATORS = re.compile(
    r"^-{3,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine"
    r"|Исходное сообщение|Messaggio originale|Mensaje original|Mensagem original"
    r"|Oorspronkelijk bericht|Forwarded message|Пересылаемое сообщение"
    r"|Weitergeleitete Nachricht|Message transféré|Messaggio inoltrato|Mensaje reenviado"
    r"|Mensagem encaminhada|Doorgestuurd bericht)\s*-{3,}$"
    r"|^(?:Begin forwarded message|Anfang der weitergeleiteten Nachricht"
    r"|Début du message réexpédié|Inizio messaggio inoltrato|Comienzo del mensaje reenviado"
    r"|Início da mensagem reencaminhada|Begin doorgestuurd bericht"
    r"|Начало переадресованного сообщения)\s*:$",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^_{10,}$")

# Footers that phone apps add under the new text, by language.
_FOOTERS = re.compile(
    r"^(?:Sent from my \S.*|Sent from \S+ for \S.*|Get Outlook for \S.*"
    r"|Отправлено (?:с|из) \S.*|Von meinem \S.* gesendet|Envoyé (?:de|depuis) mon \S.*"
    r"|Inviato da \S.*|Enviado desde mi \S.*|Enviado (?:do|de) meu \S.*"
    r"|Verzonden (?:vanaf|met) \S.*)$",
    re.IGNORECASE,
)
_MAX_FOOTER = 100
_MAX_SHORT_SIGNATURE = 6


def trim_reply(text: str) -> Trimmed:
    """Split a reply body into the new text and the removed history and signature."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = _find_hard_cut(lines)
    head = lines[:cut]
    kinds = _classify(head)
    _mark_signatures(head, kinds)
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


def _is_quote(line: str) -> bool:
    """Tell whether a line is quoted with ``>`` (also as html2text writes it).

    >>> _is_quote("> Can you fix it?"), _is_quote(">>nested"), _is_quote("a > b")
    (True, True, False)
    """
    return line.lstrip(" ").startswith(">")


def _header_role(line: str) -> str | None:
    """Name the Outlook header a line starts with: from, date, to, cc, subject or None.

    >>> _header_role("Von: Max <max@example.de>"), _header_role("**Sent:** Monday")
    ('from', 'date')
    >>> _header_role("Objet\u00a0: Re: [#12]"), _header_role("Hello: world")
    ('subject', None)
    """
    match = _LABEL.match(line.strip())
    if match is None:
        return None
    label = match.group(1).casefold()
    for role, labels in _HEADER_LABELS.items():
        if label in (candidate.casefold() for candidate in labels):
            return role
    return None


def _is_header_block(lines: list[str], start: int) -> bool:
    """Tell whether a From line starts a header block: two more header roles follow."""
    if _header_role(lines[start]) != "from":
        return False
    roles: set[str] = set()
    for line in lines[start + 1 : start + _HEADER_SPAN]:
        if not line.strip():
            break
        role = _header_role(line)
        if role is not None and role != "from":
            roles.add(role)
    return len(roles) >= 2


def _find_hard_cut(lines: list[str]) -> int:
    """Find where forwarded or Outlook-quoted history begins; ``len(lines)`` if nowhere."""
    for i, line in enumerate(lines):
        if _is_quote(line):
            continue
        if _SEPARATORS.match(line.strip()):
            return i
        if _is_header_block(lines, i):
            # Outlook web puts a line of underscores (and maybe blank lines) above it.
            start = i
            while start > 0 and not lines[start - 1].strip():
                start -= 1
            if start > 0 and _UNDERSCORES.match(lines[start - 1].strip()):
                return start - 1
            return i
    return len(lines)


def _attribution_length(lines: list[str], start: int) -> int:
    """Count the lines (0, 1 or 2) of an attribution at ``start`` that quoted lines follow.

    Gmail wraps a long attribution over two lines; a blank line always comes before it.

    >>> _attribution_length(["On Mon, 3 Jun 2024, Bob <", "b@x.com> wrote:", "", "> hi"], 0)
    2
    >>> _attribution_length(["As Bob wrote: the plan is fine.", "> hi"], 0)
    0
    """
    first = lines[start].strip()
    if len(first) <= _MAX_ATTRIBUTION and _ATTRIBUTION.search(first):
        return 1 if _quote_follows(lines, start + 1) else 0
    paragraph_start = start == 0 or not lines[start - 1].strip() or _is_quote(lines[start - 1])
    if not paragraph_start or start + 1 >= len(lines) or first.endswith((".", "!", "?", ":")):
        return 0
    second = lines[start + 1].strip()
    joined = f"{first} {second}"
    if len(joined) > _MAX_ATTRIBUTION or not _ATTRIBUTION.search(joined):
        return 0
    # "Thanks\nOn ... wrote:" is text and an attribution, not one wrapped attribution.
    if _ATTRIBUTION.search(second) and not _ADDRESS_TAIL.match(second):
        return 0
    return 2 if _quote_follows(lines, start + 2) else 0


def _quote_follows(lines: list[str], start: int) -> bool:
    """Tell whether the first non-blank line from ``start`` on is quoted."""
    rest = (lines[i] for i in range(start, len(lines)) if lines[i].strip())
    return _is_quote(next(rest, ""))


def _classify(lines: list[str]) -> list[Kind]:
    """Give each line its kind: quote, attribution, blank or text."""
    kinds: list[Kind] = []
    pending = 0
    for i, line in enumerate(lines):
        if pending:
            pending -= 1
            kinds.append("attr")
        elif _is_quote(line):
            kinds.append("quote")
        elif not line.strip():
            kinds.append("blank")
        elif n := _attribution_length(lines, i):
            pending = n - 1
            kinds.append("attr")
        else:
            kinds.append("text")
    return kinds


def _mark_signatures(lines: list[str], kinds: list[Kind]) -> None:
    """Mark signatures and phone footers as ``sig``, each up to the next quote or the end."""
    ends, texts_after = _sections(kinds)
    for i, line in enumerate(lines):
        if kinds[i] != "text":
            continue
        end, body = ends[i], texts_after[i]
        if line == "-- " or (line.rstrip() == "--" and body <= _MAX_SHORT_SIGNATURE):
            kinds[i:end] = ["sig"] * (end - i)
        elif not body and len(line) <= _MAX_FOOTER and _FOOTERS.match(line.strip()):
            kinds[i] = "sig"


def _sections(kinds: list[Kind]) -> tuple[list[int], list[int]]:
    """For each line: where its section ends (next quote or attribution) and text lines after.

    >>> _sections(["text", "blank", "text", "quote", "text"])
    ([3, 3, 3, 5, 5], [1, 1, 0, 1, 0])
    """
    ends, texts_after = [0] * len(kinds), [0] * len(kinds)
    end, count = len(kinds), 0
    for i in range(len(kinds) - 1, -1, -1):
        ends[i], texts_after[i] = end, count
        if kinds[i] in ("quote", "attr"):
            end, count = i, 0
        elif kinds[i] == "text":
            count += 1
    return ends, texts_after
