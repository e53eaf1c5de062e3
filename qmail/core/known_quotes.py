r"""Remove the parts of a reply that quote what we sent: the second half of the *trim* stage.

``trim_reply`` sees quotes only by their shape (``>`` markers, attributions).  Clients
also quote without markers (phones paste our text under a blank line, HTML quotes that
html2text flattens) and answer inline between quoted lines.  We know every body we sent,
so ``remove_known_quotes(trimmed, sent)`` moves each line of ``trimmed.text`` that
reproduces a sent body to ``trimmed.quoted`` and keeps everything else.

A line is ours when its words are a contiguous run of the words of one sent body, so
re-wrapping at any width, quote markers (``>``, ``> >``, ``|``), white space, typographic
quotes and dashes and html2text's Markdown (``**``, ``_``, ``\-``, ``[text](url)``) do not
matter.  A line of one or two words is ours only with a quote marker, or when it continues
a matched neighbour exactly in the sent body.

This stage must never remove a line the person wrote that is not in a sent body, must
never reorder lines, and must never lose text: every removed line lands in ``quoted``.
Pure: stdlib only, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from qmail.core.mail import Trimmed

_MARKERS = re.compile(r"^[ \t]*(?:[>|][ \t]?)+")
_LINK = re.compile(r"\[([^\]]*)\]\([^)\s]*\)")  # html2text: [text](url) -> text
_AUTOLINK = re.compile(r"<((?:https?|mailto|ftp):[^>\s]*)>")  # html2text: <url> -> url
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!>])")  # html2text escapes Markdown
_TYPOGRAPHY = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)
_SHORT = 2  # lines of this many words or fewer need a marker or a matched neighbour
# An attribution left in the text ("On Mon, 3 Jun 2024 at 10:12, Anna <a@b> wrote:") has
# an address, a time, a year or "wrote"; "My answer to this:" has none of them.
_ATTRIBUTION_HINT = re.compile(r"@|\b\d{1,2}:\d{2}\b|\b(?:19|20)\d\d\b|\bwrote\b", re.IGNORECASE)


def _marked(line: str) -> bool:
    """Tell whether a line starts with a quote marker.

    >>> _marked("> > hi"), _marked("| hi"), _marked("a > b")
    (True, True, False)
    """
    return _MARKERS.match(line) is not None


def _words(line: str) -> tuple[str, ...]:
    r"""The words of a line as we compare them: markers and html2text Markdown dropped.

    >>> _words("> > It\u2019s **done** \\- see [the page](https://x.io/p) _now_")
    ("It's", 'done', 'see', 'the', 'page', 'now')
    """
    text = unicodedata.normalize("NFC", _MARKERS.sub("", line)).translate(_TYPOGRAPHY)
    text = _ESCAPE.sub(r"\1", _AUTOLINK.sub(r"\1", _LINK.sub(r"\1", text)))
    stripped = (word.strip("*_") for word in text.split())
    return tuple(word for word in stripped if any(char.isalnum() for char in word))


class _Index:
    """The words of every sent body, with the positions of each word, built once per call."""

    def __init__(self, sent: Sequence[str]) -> None:
        self.docs: list[tuple[str, ...]] = []
        self.positions: dict[str, list[tuple[int, int]]] = {}
        self.wordless: set[str] = set()  # lines such as "--" that appear in a sent body
        for doc, body in enumerate(sent):
            words: list[str] = []
            for line in body.splitlines():
                line_words = _words(line)
                if not line_words and line.strip():
                    self.wordless.add(_MARKERS.sub("", line).strip())
                words.extend(line_words)
            for position, word in enumerate(words):
                self.positions.setdefault(word, []).append((doc, position))
            self.docs.append(tuple(words))

    def find(
        self, words: tuple[str, ...], before: tuple[str, ...] = (), after: tuple[str, ...] = ()
    ) -> bool:
        """Tell whether ``before + words + after`` is a run of one sent body's words.

        The search starts from the rarest word, so a line costs about its own length.
        """
        run = (*before, *words, *after)
        offset, anchor = min(enumerate(run), key=lambda item: len(self.positions.get(item[1], ())))
        for doc, position in self.positions.get(anchor, ()):
            start = position - offset
            if start >= 0 and self.docs[doc][start : start + len(run)] == run:
                return True
        return False


def _match(lines: list[str], index: _Index) -> set[int]:
    """The lines that are ours; short unmarked ones only as continuations of a neighbour."""
    words = [_words(line) for line in lines]
    ours: set[int] = set()
    worded = [i for i, found in enumerate(words) if found]
    for before, i in zip([-1, *worded], worded, strict=False):  # -1: no line above
        chained = before in ours and _chains(lines, before, i)
        alone = len(words[i]) > _SHORT or _marked(lines[i])
        if (chained and index.find(words[i], before=words[before])) or (
            alone and index.find(words[i])
        ):
            ours.add(i)
    for i, after in zip(reversed(worded), [-1, *reversed(worded)], strict=False):
        chained = i not in ours and after in ours and _chains(lines, i, after)
        if chained and index.find(words[i], after=words[after]):
            ours.add(i)
    return ours


def _chains(lines: list[str], first: int, second: int) -> bool:
    """Tell whether two worded lines may continue each other as one quoted run.

    A marked line continues into an unmarked one only when they touch: a client that
    wraps after adding markers leaves the continuation unmarked, but never a blank line
    between; "> ... changelog?", blank, "Thanks," is the person answering.

    >>> _chains(["> a b c", "", "Thanks,"], 0, 2), _chains(["> a b c", "d"], 0, 1)
    (False, True)
    """
    return second == first + 1 or _marked(lines[first]) == _marked(lines[second])


def _spread(lines: list[str], ours: set[int], index: _Index) -> set[int]:
    """Add to ``ours`` the attribution above a removed block and the glue inside blocks."""
    glue = [_is_glue(line, index) for line in lines]
    above, below = _neighbours(glue)
    removed = set(ours)
    for i in ours:
        j = above[i]
        if j is not None and j not in ours and _is_attribution(lines, j):
            removed.add(j)
    for i in range(len(lines)):
        sides = [side in removed for side in (above[i], below[i]) if side is not None]
        # A bare marker (">") belongs to the quote it touches, even where that quote
        # begins or ends: a phone's paste of our text split by an answer starts with one.
        touching = any if _marked(lines[i]) else all
        if glue[i] and sides and touching(sides):
            removed.add(i)
    return removed


def _neighbours(glue: list[bool]) -> tuple[list[int | None], list[int | None]]:
    """For each line, the nearest line above and the nearest below that is not glue.

    >>> _neighbours([False, True, True, False])
    ([None, 0, 0, 0], [3, 3, 3, None])
    """
    above: list[int | None] = [None] * len(glue)
    below: list[int | None] = [None] * len(glue)
    for i in range(1, len(glue)):
        above[i] = above[i - 1] if glue[i - 1] else i - 1
        below[-1 - i] = below[-i] if glue[-i] else len(glue) - i
    return above, below


def _is_attribution(lines: list[str], i: int) -> bool:
    """Tell whether an unmatched line above our text is an attribution trim_reply left.

    Apple Mail puts it inside the quote ("> On ... wrote:"); html2text flattens Yahoo's.

    >>> _is_attribution(["> On Mon, 3 Jun 2024 Anna wrote:"], 0)
    True
    >>> _is_attribution(["My answer to point 2:"], 0), _is_attribution(["x", "On 1:20:"], 1)
    (False, False)
    """
    line = lines[i].rstrip()
    starts_paragraph = i == 0 or not _words(lines[i - 1])
    return starts_paragraph and line.endswith(":") and bool(_ATTRIBUTION_HINT.search(line))


def _is_glue(line: str, index: _Index) -> bool:
    """Blank lines, bare markers and wordless lines we sent ("--") bind a quoted block."""
    bare = not line.strip() or _marked(line) or _MARKERS.sub("", line).strip() in index.wordless
    return bare and not _words(line)


def _keep(lines: list[str], removed: set[int]) -> str:
    r"""Join the kept lines; where lines were removed, blank lines around them become one.

    >>> _keep(["Yes", "", "> q", "", "Done", "", "", "ok", "> q"], {2, 8})
    'Yes\n\nDone\n\n\nok'
    """
    out: list[str] = []
    gap = False
    for i, line in enumerate(lines):
        if i in removed:
            gap = True
        elif line.strip():
            out.append(line)
            gap = False
        elif not (gap and (not out or not out[-1].strip())):
            out.append(line)
    return "\n".join(out).rstrip()


def remove_known_quotes(trimmed: Trimmed, sent: Sequence[str]) -> Trimmed:
    """Move the lines of ``trimmed.text`` that reproduce a body in ``sent`` to ``quoted``."""
    index = _Index(sent)
    if not index.positions:
        return trimmed
    lines = trimmed.text.split("\n")
    ours = _match(lines, index)
    if not ours:
        return trimmed
    removed = _spread(lines, ours, index)
    taken: list[str] = []
    for i in sorted(removed):
        taken.extend(([""] if taken and i - 1 not in removed else []) + [lines[i]])
    quoted = "\n".join(part for part in (trimmed.quoted, "\n".join(taken).strip()) if part)
    return Trimmed(_keep(lines, removed), quoted)
