"""Scrub our own secrets out of inbound mail before anything of it is stored.

Every mail qmail sends carries secrets made for its one recipient: their ``reply+TOKEN``
address, a magic sign-in link, an unsubscribe link, the contact form's confirmation link.
When that person answers or forwards it, their mail program quotes the mail, so the
secrets come back inside; stored in the thread, they would let other participants (a
client) sign in as a team member.  This module replaces every token of ours with a
neutral placeholder, in any form a mail program leaves it: plain, ``mailto:``, HTML
``href``, wrapped across ``>``-quoted or indented lines, split by quoted-printable soft
line breaks, inside forwarded messages.

It finds tokens by shape, never by signature: it needs no key, stays pure, and also
removes tokens we did not sign (harmless).  It must never change a byte of text that
holds no token, never touch the ``email`` of an address (routing needs it), and never
rewrite a binary file.
"""

from __future__ import annotations

import base64
import email
import email.message
import email.policy
import quopri
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace

from qmail.core.mail import Address, Attachment, Mail

PLACEHOLDERS = {
    "reply": "[reply address]",
    "magic": "[sign-in link]",
    "unsubscribe": "[unsubscribe link]",
    "intake": "[confirmation link]",
    "api": "[token]",
}

# Where a mail program broke a line inside a token: trailing blanks, a quoted-printable
# soft break ("=" at the end of a raw line), the line break, then the quote markers
# ("> ", "> > ") or indentation of the next line.  Blank lines never join.
_JOINT_PATTERN = r"(?<![ \t])(?>[ \t]*+=?[ \t]*+\r?\n(?:[ \t]*>)*[ \t]*)(?=\S)"
_JOINT = re.compile(_JOINT_PATTERN)

_B64 = "[A-Za-z0-9_-]"  # base64url, the alphabet of itsdangerous tokens
_PAYLOAD_LIMIT = 1000  # characters of a link token's payload; ours are far shorter
_URL = r"(?i:https?)://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%+-]+)*?"
_PLUS = r"(?:\+|%2[Bb]|=2[Bb]|&\#0*43;|&\#[xX]0*2[Bb];)"  # "+" as URLs, QP and HTML write it
_PAYLOAD = f"{_B64}{{1,{_PAYLOAD_LIMIT}}}+"


def _signature(length: int) -> str:
    """A pattern for a random signature of ``length`` characters.

    It has a capital, digit or dash somewhere, which a snake_case name in code
    (``html_page.render.a_long_function_name``) has not.
    """
    return f"(?=[a-z_]{{0,{length - 1}}}[A-Z0-9-]){_B64}{{{length}}}"


# Matched on the joined view (see ``_Joined``); signatures have exact lengths (27 for the
# SHA-1 HMAC of itsdangerous, 26 base32 for reply tokens, 43 for API tokens), so a token
# that ends a line never swallows the words of the next one.  Payloads are bounded, or
# a file of "ml_ml_ml_..." would take quadratic time.
_SECRET = re.compile(
    rf"""
      (?:{_URL}/auth/magic/)?(?P<magic>ml_\.?{_PAYLOAD}\.{_B64}{{1,12}}+\.{_signature(27)})
    | (?:{_URL}/unsubscribe/)?(?P<unsubscribe>un_{_PAYLOAD}\.{_signature(27)})
    | (?:{_URL}/intake/confirm/)?(?P<intake>in_\.?{_PAYLOAD}\.{_B64}{{1,12}}+\.{_signature(27)})
    | (?P<api>qm_{_signature(43)})
    | (?i:mailto:)?(?P<reply>(?i:reply{_PLUS}[0-9]{{1,12}}-[0-9]{{1,12}}-[bp]-[a-z2-7]{{26}}))
    """,
    re.VERBOSE,
)
_REPLY_HEAD = re.compile(rf"(?i:reply){_PLUS}")
_LABEL = "[A-Za-z0-9]+"
_AT_DOMAIN = re.compile(
    rf"(?:@|%40|&\#0*64;)(?:{_JOINT_PATTERN})?{_LABEL}"
    rf"(?:(?:\.|-+(?:{_JOINT_PATTERN})?){_LABEL})*"
)
# A signature runs on while the same line does (another digest length); never past a break.
_TAIL = {"reply": re.compile("[A-Za-z0-9]{0,64}"), "other": re.compile(f"{_B64}{{0,64}}")}


def _cores(joints: str) -> tuple[str, str]:
    """Patterns for what every token has, its letters perhaps broken by ``joints``.

    ``ml_``, ``un_``, ``in_`` or ``qm_`` (an ``_`` in the text), or ``reply`` in any
    case: a text without either holds no token, and is not read any further.
    """
    letters = ("[Rr]", "[Ee]", "[Pp]", "[Ll]", "[Yy]")
    return f"(?:m{joints}l|[ui]{joints}n|q{joints}m){joints}_", joints.join(letters)


_JOINTS = f"(?:{_JOINT_PATTERN})*"
_UNDERSCORED, _REPLY_WORD = (re.compile(core) for core in _cores(_JOINTS))
_UNDERSCORED_BYTES, _REPLY_WORD_BYTES = (re.compile(core.encode()) for core in _cores(_JOINTS))


def _may_hold_secrets(text: str | bytes) -> bool:
    r"""Whether ``text`` may hold a token, found ten times faster than the tokens.

    One plain regular expression over a 20 MB file takes 0.5 s; finding tokens, 5 s.
    Bytes are read as latin-1 would show them; their ``\s`` is narrower than a
    string's, so they join more lines and never miss what the string would show.

    >>> _may_hold_secrets("ask for a new link"), _may_hold_secrets(b"> RE=\n> PLY+2")
    (False, True)
    """
    if isinstance(text, bytes):
        underscored, reply = _UNDERSCORED_BYTES, _REPLY_WORD_BYTES
        return (b"_" in text and bool(underscored.search(text))) or bool(reply.search(text))
    underscored_text = "_" in text and bool(_UNDERSCORED.search(text))
    return underscored_text or bool(_REPLY_WORD.search(text))


@dataclass(frozen=True)
class _Secret:
    """One token found in a text: the span the placeholder replaces, and the bare token."""

    start: int
    end: int
    kind: str
    token: str


class _Joined:
    """``text`` with every joint removed, and the way back to positions in ``text``."""

    def __init__(self, text: str) -> None:
        pieces: list[str] = []
        self._joined_starts, self._original_starts = [0], [0]
        position = length = 0
        for joint in _JOINT.finditer(text):
            pieces.append(text[position : joint.start()])
            length += joint.start() - position
            position = joint.end()
            self._joined_starts.append(length)
            self._original_starts.append(position)
        pieces.append(text[position:])
        self.text = "".join(pieces)

    def to_original(self, index: int) -> int:
        """Where the character at ``index`` of the joined view is in the text."""
        piece = bisect_right(self._joined_starts, index) - 1
        return self._original_starts[piece] + index - self._joined_starts[piece]

    def joints(self, start: int, end: int) -> list[int]:
        """The joined positions in ``start..end-1`` where a joint was taken out."""
        first, last = bisect_left(self._joined_starts, start), bisect_left(self._joined_starts, end)
        return sorted(set(self._joined_starts[first:last]))

    def to_joined(self, index: int) -> int:
        """The joined position of text position ``index`` (inside a joint: the one after)."""
        piece = bisect_right(self._original_starts, index) - 1
        offset = index - self._original_starts[piece]
        if piece + 1 < len(self._joined_starts):
            offset = min(offset, self._joined_starts[piece + 1] - self._joined_starts[piece])
        return self._joined_starts[piece] + offset


def _find(text: str) -> list[_Secret]:
    """Every token of ours in ``text``, in order, with the span its placeholder replaces."""
    if not _may_hold_secrets(text):
        return []
    view = _Joined(text)
    found: list[_Secret] = []
    position = 0
    while match := _SECRET.search(view.text, position):
        if _begins_too_early(view, match):
            position = match.start() + 1
            continue
        found.append(_read(text, view, match))
        position = view.to_joined(found[-1].end)
    return found


def _begins_too_early(view: _Joined, match: re.Match[str]) -> bool:
    """Whether a whole token begins on a later line, inside the token of ``match``.

    With a word such as ``ml_`` ending one line and a token opening the next, the joined
    view sees one longer token; the word is text, the token begins on the next line.
    """
    kind = _kind(match)
    joints = view.joints(match.start(kind) + 1, match.end())
    return any(_SECRET.match(view.text, joint) for joint in joints)


def _kind(match: re.Match[str]) -> str:
    return next(name for name in PLACEHOLDERS if match.group(name) is not None)


def _read(text: str, view: _Joined, match: re.Match[str]) -> _Secret:
    """The secret a match on the joined view stands for: its span in ``text``, its token."""
    kind = _kind(match)
    token_start = view.to_original(match.start(kind))
    end = view.to_original(match.end() - 1) + 1
    tail = _TAIL["reply" if kind == "reply" else "other"].match(text, end)
    end = tail.end() if tail else end
    token = _JOINT.sub("", text[token_start:end])
    if kind == "reply":
        token = _REPLY_HEAD.sub("reply+", token, count=1).lower()
        end = _domain_end(text, end)
    return _Secret(view.to_original(match.start()), end, kind, token)


def _domain_end(text: str, end: int) -> int:
    r"""Where a reply address whose token ends at ``end`` ends: after its ``@domain``.

    A domain continues on the next line only after ``@`` or ``-`` (it cannot end there),
    or when the line breaks just before its ``@``; a sentence's full stop is not its own.

    >>> text = "x reply+1-2-b-TOKEN@tasks.example.com. Bye"
    >>> text[_domain_end(text, 19) :]
    '. Bye'
    >>> text = "x reply+1-2-b-TOKEN\n> @tasks.my-\n> domain.org\n> Bye"
    >>> text[_domain_end(text, 19) :]
    '\n> Bye'
    """
    domain = _AT_DOMAIN.match(text, end)
    if domain is None and (joint := _JOINT.match(text, end)):
        domain = _AT_DOMAIN.match(text, joint.end())
        if domain is not None and "." not in domain.group():
            domain = None  # "@bob" opening the next line is a mention, not our domain
    return domain.end() if domain else end


def find_secrets(text: str) -> list[str]:
    """The tokens of ours in ``text``, in order, as bare tokens (reply tokens lower-cased).

    Tests scan pages, API answers, the database and sent mail with it for leaks.

    >>> find_secrets("write to REPLY+12-34-B-" + "A" * 26 + "@x.org or mail reply@x.org")
    ['reply+12-34-b-aaaaaaaaaaaaaaaaaaaaaaaaaa']
    """
    return [secret.token for secret in _find(text)]


def scrub_secrets(text: str) -> str:
    r"""``text`` with every token of ours replaced by its placeholder; itself if none.

    >>> scrub_secrets("Open <https://q.example/auth/magic/ml_WzUs.aw47JA." + "Zx" * 13 + "Q>")
    'Open <[sign-in link]>'
    >>> scrub_secrets("> mailto:reply+1-2-p-abcdefghijklmn\n> opqrstuvwxyz@x.org\n> Hi")
    '> [reply address]\n> Hi'
    """
    found = _find(text)
    if not found:
        return text
    pieces, position = [], 0
    for secret in found:
        pieces += [text[position : secret.start], PLACEHOLDERS[secret.kind]]
        position = secret.end
    return "".join([*pieces, text[position:]])


_UTF16 = ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def scrub_bytes(content: bytes) -> bytes:
    r"""``scrub_secrets`` for the bytes of a textual file; every other byte is kept.

    Tokens are ASCII, so latin-1 (one character per byte) shows them in any charset that
    extends ASCII (UTF-8, ISO-8859-*, windows-125x) and maps back exactly; UTF-16 is read
    when a byte order mark announces it.

    >>> scrub_bytes(b"caf\xc3\xa9 un_WzEsMl0." + b"Ab" * 13 + b"c, ok")
    b'caf\xc3\xa9 [unsubscribe link], ok'
    >>> scrub_bytes(b"\xff\xfeq\x00m\x00_\x00" + "Ab".encode("utf-16-le") * 21 + b"c\x00")
    b'\xff\xfe[\x00t\x00o\x00k\x00e\x00n\x00]\x00'
    """
    for mark, codec in _UTF16:
        if content.startswith(mark) and len(content) % 2 == 0:
            text = content[len(mark) :].decode(codec, "surrogatepass")
            clean = scrub_secrets(text)
            return content if clean is text else mark + clean.encode(codec, "surrogatepass")
    if not _may_hold_secrets(content):
        return content
    text = content.decode("latin-1")
    clean = scrub_secrets(text)
    return content if clean is text else clean.encode("latin-1")


_TEXTUAL_TYPES = ("application/xhtml+xml", "application/xml", "application/json", "application/rtf")
_TEXTUAL_NAMES = (".eml", ".txt", ".htm", ".html", ".mht", ".xml", ".json", ".csv", ".md", ".rtf")


def is_textual(content_type: str, filename: str = "") -> bool:
    """Whether a file is text a token can hide in: scrubbed; any other file is left alone.

    >>> is_textual("text/html"), is_textual("message/rfc822"), is_textual("image/png")
    (True, True, False)
    >>> is_textual("application/octet-stream", "Fwd.EML"), is_textual("application/atom+xml")
    (True, True)
    """
    content_type = content_type.lower()
    return (
        content_type.startswith(("text/", "message/"))
        or content_type in _TEXTUAL_TYPES
        or content_type.endswith(("+xml", "+json"))
        or filename.lower().endswith(_TEXTUAL_NAMES)
    )


def scrub_mail(mail: Mail) -> Mail:
    """``mail`` with every token of ours gone from all it shows: what the store may keep.

    Subject, text, display names, attachment names and textual attachments are scrubbed.
    The ``email`` of each address is kept as it is: routing needs it, and our own
    ``reply+TOKEN`` addresses must be recognised (``is_ours``) and never stored.
    """
    return replace(
        mail,
        subject=scrub_secrets(mail.subject),
        text=scrub_secrets(mail.text),
        sender=_scrub_address(mail.sender) if mail.sender else None,
        to=tuple(_scrub_address(one) for one in mail.to),
        cc=tuple(_scrub_address(one) for one in mail.cc),
        reply_to=tuple(_scrub_address(one) for one in mail.reply_to),
        attachments=tuple(_scrub_attachment(one) for one in mail.attachments),
    )


def _scrub_address(address: Address) -> Address:
    name = scrub_secrets(address.name)
    return address if name is address.name else replace(address, name=name)


def _scrub_attachment(attachment: Attachment) -> Attachment:
    filename = scrub_secrets(attachment.filename)
    content = attachment.content
    if is_textual(attachment.content_type, attachment.filename):
        content = scrub_content(attachment.content_type, content, attachment.filename)
    if filename is attachment.filename and content is attachment.content:
        return attachment
    return replace(attachment, filename=filename, content=content)


def scrub_content(content_type: str, content: bytes, filename: str = "") -> bytes:
    """A textual file without our tokens (``content`` itself if it holds none).

    A forwarded mail (``message/*``, a ``.eml`` file) is read part by part.  With
    ``is_textual``, what a data migration needs to clean stored attachments.
    """
    content_type = content_type.lower()
    if content_type.startswith("message/") or filename.lower().endswith(".eml"):
        return _scrub_message(content)
    return scrub_bytes(content)


def _scrub_message(raw: bytes) -> bytes:
    """A mail kept whole (a forwarded ``message/rfc822``) without our tokens.

    The raw bytes are scrubbed first (headers, plain parts, quoted-printable soft breaks).
    Tokens in base64 or quoted-printable parts are invisible to that: such parts are
    decoded, scrubbed and encoded again, and then the mail is written anew (Thunderbird
    forwards our notification with base64 parts; ``leak_thunderbird_forward_en.eml``).
    A mail the stdlib cannot read or write keeps the result of the first pass.
    """
    scrubbed = scrub_bytes(raw)
    try:
        message = email.message_from_bytes(scrubbed, policy=email.policy.compat32)
        if not _scrub_encoded_parts(message):
            return scrubbed
        linesep = "\r\n" if b"\r\n" in raw else "\n"
        return message.as_bytes(policy=email.policy.compat32.clone(linesep=linesep))
    except Exception:  # the stdlib parser and generator raise on some broken mail
        return scrubbed


def _scrub_encoded_parts(message: email.message.Message) -> bool:
    """Scrub the decoded content of each encoded textual part in place; whether any changed."""
    changed = False
    for part in message.walk():
        encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        if part.is_multipart() or encoding not in ("base64", "quoted-printable"):
            continue
        decoded, filename = part.get_payload(decode=True), str(part.get_filename() or "")
        if not is_textual(part.get_content_type(), filename) or not isinstance(decoded, bytes):
            continue
        clean = scrub_content(part.get_content_type(), decoded, filename)
        if clean is not decoded:
            part.set_payload(_encode(clean, encoding, str(part.get_payload())))
            changed = True
    return changed


def _encode(content: bytes, encoding: str, before: str) -> str:
    """``content`` in the transfer encoding of a part, ending as the part's payload ended."""
    encoded = base64.encodebytes(content) if encoding == "base64" else quopri.encodestring(content)
    return encoded.decode("ascii").rstrip("\n") + ("\n" if before.endswith("\n") else "")
