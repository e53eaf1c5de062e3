"""Turn the HTML part of a mail into readable plain text.

HTML-only mail (phones, newsletters, Outlook set to HTML) still has to become the text of
a task.  ``html_to_text`` keeps words, links as ``[text](url)`` and images as their alt
text.  It must never let markup, scripts, styles, event handlers or ``javascript:`` links
through to the text, and never fetch anything the HTML points to.
"""

from __future__ import annotations

import re
from html import unescape

import html2text

# Elements whose content is never readable text in a mail: code, embedded documents,
# fallbacks for other renderers.  html2text itself already hides head, script and style.
_HIDDEN = frozenset(
    {"script", "style", "head", "title", "noscript", "template", "iframe", "object", "svg"}
)
_SAFE_SCHEMES = ("http:", "https:", "mailto:", "tel:", "ftp:", "cid:")


class _Reader(html2text.HTML2Text):
    """html2text with hidden elements muted and unsafe link targets dropped."""

    def __init__(self) -> None:
        super().__init__(bodywidth=0)
        self.images_to_alt = True
        self.ignore_emphasis = True
        self.ignore_tables = True
        self.unicode_snob = True
        self.single_line_break = False
        self._hidden_depth = 0

    def handle_tag(self, tag: str, attrs: dict[str, str | None], start: bool) -> None:
        if tag in _HIDDEN:
            self._hidden_depth = max(0, self._hidden_depth + (1 if start else -1))
            return
        if tag == "a" and start and not is_safe_url(attrs.get("href")):
            attrs = {name: value for name, value in attrs.items() if name != "href"}
        super().handle_tag(tag, attrs, start)
        if tag in ("td", "th") and not start:
            self.o(" ")  # keep the words of adjacent table cells apart
        elif tag == "tr" and not start:
            self.p()

    def handle_data(self, data: str, entity_char: bool = False) -> None:
        if not self._hidden_depth:
            # entity_char=True skips html2text's Markdown escaping of "1." and "-" at line
            # starts: the result is read as plain text, not rendered as Markdown.
            super().handle_data(data, entity_char=True)


def is_safe_url(url: str | None) -> bool:
    """Whether a link target may appear in the text: web, mail and phone links only.

    >>> is_safe_url("https://example.com/a"), is_safe_url(" JavaScript:alert(1)")
    (True, False)
    >>> is_safe_url("data:text/html;base64,xx"), is_safe_url(None)
    (False, False)
    """
    if not url:
        return False
    return re.sub(r"\s+", "", url).lower().startswith(_SAFE_SCHEMES)


def tidy(text: str) -> str:
    r"""Strip trailing spaces, squeeze blank lines and no-break spaces.

    >>> tidy("a  \n\n\n\nb\xa0c\n\n")
    'a\n\nb c'
    """
    lines = [line.rstrip() for line in text.replace("\xa0", " ").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def html_to_text(markup: str) -> str:
    """The readable text of an HTML document; never raises on broken markup."""
    reader = _Reader()
    try:
        text = reader.handle(markup)
    except Exception:  # html2text trips over some malformed documents
        text = strip_markup(markup)
    return tidy(text)


def strip_markup(markup: str) -> str:
    """Crude fallback: drop hidden elements with their content, then every tag.

    >>> strip_markup("<p>Hi <script>x()</script><b>there</b> &amp; bye")
    'Hi  there & bye'
    """
    hidden = "|".join(sorted(_HIDDEN))
    markup = re.sub(rf"(?is)<({hidden})\b.*?(</\1\s*>|$)", " ", markup)
    return unescape(re.sub(r"(?s)<[^>]*>?", "", markup)).strip()
