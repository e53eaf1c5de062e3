"""Replies that quote a whole qmail notification: the ``tests/mail/leak_*.eml`` fixtures.

The secrets in a notification depend on the signing key and the ids, so the fixtures hold
markers where the notification's secrets were, and ``fill_leak_fixture`` puts real ones in:

``{{REPLY_ADDRESS}}``
    the recipient's reply address, ``reply+TOKEN@<domain>`` (no ``mailto:``, no brackets)
``{{PRIVATE_ADDRESS}}``
    their "reply privately to the team" address, same form
``{{MAGIC_LINK}}``
    the full sign-in URL, ``<base_url>/auth/magic/ml_...``
``{{UNSUBSCRIBE_URL}}``
    the full unsubscribe URL, ``<base_url>/unsubscribe/un_...``

Each fixture is written as its mail program sent it, except that the body of a part whose
``Content-Transfer-Encoding`` is ``quoted-printable`` or ``base64`` is written decoded.
After filling the markers, the helper does what the mail program did, so that lines break
inside the real tokens, exactly where that program would break them:

1. fixtures in ``WRAPPED_QUOTES`` have their quoted lines (``>``) longer than the width
   wrapped like a plain-text client: at the last space, or cut at the width when one
   word (a URL) is longer; the next line repeats the quote markers;
2. encoded parts are encoded: quoted-printable with soft breaks (``=`` + newline) at 76
   columns, base64 in lines of 76.

``leak_values()`` makes a set of real secrets as qmail makes them; integration tests may
pass the ones their running server signed instead.  Each fixture's golden
``<name>.expected.json`` names the person's own new words (``opening``), the markers whose
secrets the parsed mail holds before scrubbing (``quoted``) and pieces of text that must
show the placeholders afterwards (``scrubbed_contains``).
"""

from __future__ import annotations

import base64
import quopri
import re
import textwrap
from pathlib import Path

from qmail.auth.signed import LinkTokens, ReplyTokens
from qmail.core.addresses import reply_address
from qmail.core.mail import ReplyTarget

MAIL_DIR = Path(__file__).parent / "mail"
LEAK_FIXTURES = (
    "leak_gmail_plain_en",
    "leak_outlook_html_en",
    "leak_apple_qp_en",
    "leak_thunderbird_forward_en",
)
MARKERS = ("REPLY_ADDRESS", "PRIVATE_ADDRESS", "MAGIC_LINK", "UNSUBSCRIBE_URL")
WRAPPED_QUOTES = {"leak_gmail_plain_en": 76}
DOMAIN = "tasks.example.com"
BASE_URL = "https://tasks.example.com"

_ENCODED_PART = re.compile(
    r"^Content-Transfer-Encoding:[ \t]*(quoted-printable|base64)[ \t]*\n(?:.+\n)*\n",
    re.IGNORECASE | re.MULTILINE,
)


def leak_values(secret_key: str = "leak-test-key") -> dict[str, str]:
    """Real secrets of one notification (branch 12, person 34), made as qmail makes them."""
    replies = ReplyTokens(secret_key)
    links = LinkTokens(secret_key, 3600)
    return {
        "REPLY_ADDRESS": reply_address(replies.make(ReplyTarget(12, 34)), DOMAIN),
        "PRIVATE_ADDRESS": reply_address(replies.make(ReplyTarget(12, 34, True)), DOMAIN),
        "MAGIC_LINK": f"{BASE_URL}/auth/magic/{links.make_login(34, 2)}",
        "UNSUBSCRIBE_URL": f"{BASE_URL}/unsubscribe/{links.make_unsubscribe(7, 34)}",
    }


def fill_leak_fixture(name: str, values: dict[str, str]) -> bytes:
    """The raw mail of fixture ``name`` with ``values`` for its markers, as it was sent."""
    text = (MAIL_DIR / f"{name}.eml").read_text(encoding="utf-8")
    used = set(re.findall(r"\{\{(\w+)\}\}", text))
    assert used <= set(MARKERS), f"{name}: unknown markers {used - set(MARKERS)}"
    text = re.sub(r"\{\{(\w+)\}\}", lambda marker: values[marker.group(1)], text)
    if name in WRAPPED_QUOTES:
        text = "\n".join(_wrap_quoted(line, WRAPPED_QUOTES[name]) for line in text.split("\n"))
    return _encode_parts(text)


def _wrap_quoted(line: str, width: int) -> str:
    """A quoted line wrapped like a plain-text mail client; other lines as they are."""
    markers = re.match(r"(?:> ?)+", line)
    if markers is None or len(line) <= width:
        return line
    prefix = markers.group()
    wrapped = textwrap.wrap(
        line[len(prefix) :],
        width=width - len(prefix),
        break_long_words=True,
        break_on_hyphens=False,
    )
    return "\n".join(prefix + piece for piece in wrapped)


def _encode_parts(text: str) -> bytes:
    """Encode each part whose header names quoted-printable or base64 (bodies written clear)."""
    boundaries = re.findall(r'boundary="([^"]+)"', text)
    ends = [re.escape(f"\n--{boundary}") for boundary in boundaries]
    end_of_body = re.compile("|".join(ends) + r"|\Z") if ends else re.compile(r"\Z")
    pieces: list[bytes] = []
    position = 0
    for head in _ENCODED_PART.finditer(text):
        pieces.append(text[position : head.end()].encode("utf-8"))
        end = end_of_body.search(text, head.end())
        assert end is not None
        body = text[head.end() : end.start()].encode("utf-8")
        if head.group(1).lower() == "base64":
            encoded = base64.encodebytes(body).rstrip(b"\n")
        else:
            encoded = quopri.encodestring(body)
        pieces.append(encoded)
        position = end.start()
    pieces.append(text[position:].encode("utf-8"))
    return b"".join(pieces)
