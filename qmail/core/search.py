"""Full-text search, the pure part: the words of a query and highlighted snippets.

A query is its words (letters and digits; everything else separates them), all of them
required, each matched as a whole word in any case (``march INVOICE`` finds "Invoice for
March").  Whole words only, no prefixes: a word is one entry of the index, read lazily,
newest first, while a prefix would make the database gather every word starting with it
(``the`` -> there, them, then...) before the first result.  The
database turns the words into its own query language (``fts5_query`` for SQLite's FTS5,
``tsquery`` for PostgreSQL); neither ever sees a character of the query that is not a
letter or a digit, so no operator or quote can be smuggled in.

A snippet comes from the database with the matched words between ``MARK_START`` and
``MARK_END``.  ``highlight`` escapes all of it first and only then turns the markers into
``<mark>`` elements: nothing from a mail is ever markup, and the elements stay balanced
even if a mail itself contains the marker characters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from html import escape

MARK_START = "\x02"  # ASCII STX and ETX: never part of a word, nor of HTML
MARK_END = "\x03"
MAX_TERMS = 8  # more words narrow nothing down and only cost time

_WORD = re.compile(r"[^\W_]+")


def search_terms(query: str) -> tuple[str, ...]:
    """The words of ``query``, in lower case, each once, at most ``MAX_TERMS``.

    >>> search_terms("Invoice  #42: 100%_done, invoice!")
    ('invoice', '42', '100', 'done')
    >>> search_terms("Счёт №5"), search_terms("% _ *")
    (('счёт', '5'), ())
    """
    words = dict.fromkeys(word.casefold() for word in _WORD.findall(query))
    return tuple(words)[:MAX_TERMS]


def fts5_query(terms: tuple[str, ...]) -> str:
    """An FTS5 query requiring every term.

    >>> fts5_query(("invoice", "march", "42"))
    '"invoice" AND "march" AND "42"'
    """
    return " AND ".join(f'"{term}"' for term in terms)


def fts5_text_query(terms: tuple[str, ...]) -> str:
    """An FTS5 query requiring every term in the ``text`` column of ``message_fts``.

    Its other column holds each message's branch id: a number typed as a word never
    finds a branch.

    >>> fts5_text_query(("invoice", "42"))
    'text : ("invoice" AND "42")'
    """
    return f"text : ({fts5_query(terms)})"


def fts5_any(ids: list[int]) -> str:
    """An FTS5 query for any of these numbers (branch ids, as ``message_fts`` holds them).

    >>> fts5_any([12, 7])
    '"12" OR "7"'
    """
    return " OR ".join(f'"{int(number)}"' for number in ids)


def tsquery(terms: tuple[str, ...]) -> str:
    """A PostgreSQL ``to_tsquery`` text requiring every term.

    >>> tsquery(("invoice", "march", "42"))
    "'invoice' & 'march' & '42'"
    """
    return " & ".join(f"'{term}'" for term in terms)


def _plain(word: str) -> str:
    """A word as the index compares it: case and diacritics folded away."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def mark_words(text: str, terms: tuple[str, ...]) -> str:
    """``text`` with the words that ``terms`` name between the markers (for ``highlight``).

    >>> highlight(mark_words("Invoice for MARCH, déjà 5 days", ("invoice", "march", "deja")))
    '<mark>Invoice</mark> for <mark>MARCH</mark>, <mark>déjà</mark> 5 days'
    """
    wanted = {_plain(term) for term in terms}

    def mark(word: re.Match[str]) -> str:
        found = _plain(word.group()) in wanted
        return f"{MARK_START}{word.group()}{MARK_END}" if found else word.group()

    return _WORD.sub(mark, text) if wanted else text


def scorer(terms: tuple[str, ...]) -> Callable[[str], float]:
    """How well a text matches ``terms``, for ranking the few texts the index has found.

    BM25's saturating term frequency and length normalisation (a typical message is
    taken to be 50 words), without the rarity of each word: only the index knows it, and
    it costs a count of every message holding the word, which grows with the database.
    The words are counted by a regular expression (in C), compiled once for all the texts
    of a search: a word the index matched with other accents counts for nothing here, and
    the text still stays among the results.

    >>> score = scorer(("invoice",))
    >>> score("The invoice, the INVOICE") > score("an invoice")
    True
    >>> score("invoice") > score("invoice " + "word " * 200)
    True
    >>> score("invoices_invoice") > 0 == score("invoices")
    True
    """
    alternatives = "|".join(re.escape(term) for term in terms)
    words = re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])")

    def score(text: str) -> float:
        folded = text.casefold()
        found = words.findall(folded)
        norm = 1.2 * (0.25 + 0.75 * len(folded.split()) / 50)
        frequencies = (found.count(term) for term in terms)
        return sum(frequency * 2.2 / (frequency + norm) for frequency in frequencies)

    return score


def highlight(snippet: str) -> str:
    r"""HTML for a snippet: escaped, with the marked words in ``<mark>`` elements.

    >>> highlight("a \x02<b>\x03 & \x02c\x03")
    'a <mark>&lt;b&gt;</mark> &amp; <mark>c</mark>'

    Markers that do not pair up (a mail may contain them) never unbalance the markup:

    >>> highlight("\x03x \x02y \x02z")
    'x <mark>y z</mark>'
    """
    html, inside = [], False
    for part in re.split(f"([{MARK_START}{MARK_END}])", snippet):
        if part == MARK_START and not inside:
            html.append("<mark>")
            inside = True
        elif part == MARK_END and inside:
            html.append("</mark>")
            inside = False
        elif part not in (MARK_START, MARK_END):
            html.append(escape(part, quote=True))
    if inside:
        html.append("</mark>")
    return "".join(html)
