r"""Safe header values for the mail we send: one line each, encoded where they must be.

Titles, names and ids come from strangers' mail, so a CR or LF in them must never start a
new header (``Subject: Hi\r\nBcc: evil@x``): every value passes ``one_line()`` first.
Values reach the wire through ``POLICY`` (``email.policy.SMTP``: CRLF, folded at 78
columns, non-ASCII as RFC 2047) with one repair: the stdlib RFC 2047-encodes any header
word too long to fold, which turns a long ``List-Unsubscribe`` URL into an encoded word
no client or Gmail's one-click unsubscribe understands; ``VerbatimHeader`` folds such
ASCII values at spaces only.  Mail to an internationalised address (``jörg@client.test``)
has UTF-8 headers instead (``UTF8_POLICY``, RFC 6532), for an SMTPUTF8 session (RFC 6531).
Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.header import Header
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, Policy
from email.utils import format_datetime
from typing import Any, ClassVar, Literal

# RFC 5322 2.1.1: 998 octets MUST, 78 SHOULD.
MAX_LINE = 998

# C0 controls, DEL, C1 controls and the Unicode line and paragraph separators: anything
# a mail client or a later parser could take for the end of a line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# What may not appear in either side of a Message-ID (RFC 5322 3.6.4: dot-atom-text).
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")


def one_line(value: str) -> str:
    r"""``value`` on one line: control characters become spaces, runs of space collapse.

    >>> one_line("Hi\r\nBcc: evil@x")
    'Hi Bcc: evil@x'
    >>> one_line("  Alice\n Smith\t")
    'Alice Smith'
    """
    return " ".join(_CONTROL.sub(" ", value).split())


def msg_id(value: str, domain: str, *, strict: bool = False) -> str:
    r"""A Message-ID in angle brackets, from an id stored without them.

    Brackets, white space and control characters are dropped; an id without a domain
    part gets ``@domain``.  ``strict`` (for our own ``Message-ID``) also keeps only
    RFC 5322 ``atext`` and dots on both sides of one ``@``: the stdlib cuts a
    ``Message-ID`` short at the first other character.  Ids of others' mail (in
    ``In-Reply-To``, ``References``) stay as they came, or their threads would break.

    >>> msg_id("abc@example.com", "example.com")
    '<abc@example.com>'
    >>> msg_id(" <a b\r\nX: y@x> ", "example.com")
    '<abX:y@x>'
    >>> msg_id("a@x\r\nBcc: evil@y", "example.com", strict=True)
    '<a@xBccevily>'
    >>> msg_id("local-only", "example.com")
    '<local-only@example.com>'
    """
    bare = "".join(one_line(value).replace("<", "").replace(">", "").split())
    if "@" not in bare:
        bare = f"{bare}@{domain}"
    if strict:
        left, _, right = bare.partition("@")
        bare = f"{_NOT_ATEXT.sub('', left)}@{_NOT_ATEXT.sub('', right)}"
    return f"<{bare}>"


def mailbox(name: str, address: str) -> Address:
    r"""An ``Address`` whose display name is one line; the stdlib quotes and encodes it.

    An internationalised address (RFC 6531, ``jörg@client.test``) is given in its parts:
    the stdlib's address parser refuses a non-ASCII local part.

    >>> str(mailbox("Bob\nBcc: x@y", "bob@example.com"))
    '"Bob Bcc: x@y" <bob@example.com>'
    >>> str(mailbox("Jörg", "jörg@client.test")), mailbox("", '"jö,rg"@x.test').addr_spec
    ('Jörg <jörg@client.test>', '"jö,rg"@x.test')
    """
    addr_spec = "".join(one_line(address).split())
    if addr_spec.isascii():
        return Address(display_name=one_line(name), addr_spec=addr_spec)
    local, _, domain = addr_spec.rpartition("@")
    if len(local) > 1 and local[0] == local[-1] == '"':  # the stdlib quotes it again
        local = re.sub(r"\\(.)", r"\1", local[1:-1])
    return Address(display_name=one_line(name), username=local, domain=domain)


def phrase(text: str) -> str:
    r"""An RFC 5322 phrase: a quoted string when ASCII, RFC 2047 encoded words otherwise.

    Used where the stdlib has no structured header to do it, as ``List-Id`` (RFC 2919).

    >>> phrase('qmail "core" task 12')
    '"qmail \\"core\\" task 12"'
    >>> phrase("Команда")
    '=?utf-8?b?0JrQvtC80LDQvdC00LA=?='
    """
    text = one_line(text)
    if text.isascii():
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return " ".join(Header(text, "utf-8").encode(linesep=" ").split())


def fold_words(name: str, value: str, width: int, linesep: str) -> str:
    """``name: value`` folded at spaces to ``width`` columns where a space allows it.

    >>> fold_words("X", "aaa bbb ccc", 10, "|")
    'X: aaa bbb| ccc|'
    """
    lines: list[str] = []
    line = f"{name}:"
    for word in value.split():
        if len(line) + 1 + len(word) > width and line.strip() != f"{name}:":
            lines.append(line)
            line = ""
        line = f"{line} {word}"
    lines.append(line)
    return linesep.join(lines) + linesep


class VerbatimHeader(BaseHeader):
    """A header kept as given and folded at spaces only, never turned into encoded words.

    For ASCII values with long unbreakable tokens (URLs, ``<list-id>``) the stdlib would
    otherwise RFC 2047-encode; a non-ASCII value falls back to the stdlib's folding.
    """

    max_count: ClassVar[Literal[1] | None] = 1

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        """Keep the value as it is (it was made by us, already one line)."""
        kwds["parse_tree"] = UnstructuredHeader.value_parser(value)
        kwds["decoded"] = one_line(value)

    def fold(self, *, policy: Policy) -> str:
        """Fold at spaces to the policy's width; fall back to the stdlib for non-ASCII."""
        value = str(self)
        if not value.isascii():
            return HeaderRegistry()(self.name, value).fold(policy=policy)
        return fold_words(self.name, value, policy.max_line_length or MAX_LINE, policy.linesep)


LOOP_HEADER = "X-Qmail-Loop"
VERBATIM_HEADERS = ("List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", LOOP_HEADER)

_REGISTRY = HeaderRegistry()
for _name in VERBATIM_HEADERS:
    _REGISTRY.map_to_type(_name.lower(), VerbatimHeader)

# 7bit: bodies go quoted-printable or base64 rather than raw 8-bit, which a relay without
# 8BITMIME would have to refuse or convert.
POLICY = SMTP.clone(cte_type="7bit", header_factory=_REGISTRY)
# For a recipient with an internationalised address: headers in UTF-8 (RFC 6532), as only
# an SMTPUTF8 session can carry them; RFC 2047 cannot encode an address.  Bodies stay 7bit.
UTF8_POLICY = POLICY.clone(utf8=True)


def wire_bytes(message: EmailMessage) -> bytes:
    """``message`` as it is sent, CRLF line ends and bodies 7bit.

    Headers are ASCII, or UTF-8 when ``new_message`` made it for an internationalised address.
    """
    utf8 = getattr(message.policy, "utf8", False)
    return message.as_bytes(policy=UTF8_POLICY if utf8 else POLICY)


def new_message(
    *,
    sender: Address,
    recipient: Address,
    reply_to: str | None,
    subject: str,
    message_id: str,
    auto_submitted: str,
    loop_marker: str,
    date: datetime | None,
) -> EmailMessage:
    """A message with the headers every mail of ours carries, ready for its body.

    ``Date`` only when given: the transport stamps it when the mail really leaves.
    ``X-Auto-Response-Suppress: All`` keeps Outlook and Exchange from answering with
    out-of-office mail; the loop header lets ingest recognise our own mail coming back.
    A recipient with an internationalised address gets UTF-8 headers (``UTF8_POLICY``).
    """
    message = EmailMessage(policy=POLICY if recipient.addr_spec.isascii() else UTF8_POLICY)
    message["From"] = sender
    message["To"] = recipient
    if reply_to is not None:
        message["Reply-To"] = mailbox("", reply_to)
    message["Subject"] = one_line(subject)
    message["Message-ID"] = message_id
    if date is not None:
        message["Date"] = format_datetime(date)
    message["Auto-Submitted"] = auto_submitted
    message["X-Auto-Response-Suppress"] = "All"
    message[LOOP_HEADER] = one_line(loop_marker)
    return message


def set_thread(
    message: EmailMessage, in_reply_to: str | None, references: tuple[str, ...], domain: str
) -> None:
    """``In-Reply-To`` and ``References``; the parent always ends the references (RFC 5322)."""
    ids = [msg_id(ref, domain) for ref in references if one_line(ref)]
    if in_reply_to and one_line(in_reply_to):
        parent = msg_id(in_reply_to, domain)
        message["In-Reply-To"] = parent
        if parent not in ids:
            ids.append(parent)
    if ids:
        message["References"] = " ".join(dict.fromkeys(ids))


def task_subject(number: int, title: str) -> str:
    r"""``[#12] Title``: the same on every mail of a task, so clients keep one thread.

    >>> task_subject(12, "Broken\r\nBcc: x@y")
    '[#12] Broken Bcc: x@y'
    """
    return f"[#{number}] {one_line(title)}".rstrip()


def set_list_headers(
    message: EmailMessage, team_name: str, number: int, domain: str, unsubscribe_url: str
) -> None:
    """``List-Id`` (RFC 2919) per task, and one-click ``List-Unsubscribe`` (RFC 8058).

    People filter a busy task by its List-Id, and mail providers (Gmail, Yahoo) ask
    bulk senders for the one-click unsubscribe pair.  No ``Precedence: list``: it makes
    Gmail and Outlook hide or file away the replies people write.
    """
    list_id = f"task-{number}.{one_line(domain)}"
    message["List-Id"] = f"{phrase(f'{team_name} task {number}')} <{list_id}>"
    message["List-Unsubscribe"] = f"<{one_line(unsubscribe_url)}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
