"""Compose every mail qmail sends: values in, ``email.message.EmailMessage`` out.

The last pure stage of the flow: ``outbound.notifications`` decides who is told what and
makes the signed addresses and links; this module only renders them from
``templates/mail/<kind>.txt`` (text part) and ``<kind>.html`` (its alternative).  It never
reads the clock or the database: the caller passes a ``mail_environment()`` and sets
``Date`` (or ``date``).
``From`` is our signed ``reply+TOKEN`` address under the author's name, never the
author's own address (that fails the author's domain's DMARC).  A person outside the
team never sees the private address, the team's tags or a word about hidden branches,
whatever the caller passes.  Header safety and encoding live in ``qmail.core.headers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address as Mailbox
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from qmail.core.headers import (
    mailbox,
    msg_id,
    new_message,
    one_line,
    set_list_headers,
    set_thread,
    task_subject,
)
from qmail.core.mail import Address

CONTEXT_LINES = 10


@dataclass(frozen=True)
class AttachmentNote:
    """A file of the message, named in the body; the stencil carries the file itself."""

    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class Notification:
    """A message posted in a task's branch, as one recipient is told about it.

    ``context`` is the previous message's text in the same branch (quoted, first lines
    only) or empty.  ``reply_address`` is signed for this recipient and branch;
    ``private_address`` ("reply privately to the team") is only ever shown to team
    members.  Message-IDs are stored without angle brackets.  ``loop_marker`` is the
    value of ``X-Qmail-Loop`` (usually our domain), by which we know our own mail again.
    """

    number: int
    title: str
    status: str
    tags: tuple[str, ...]
    hidden: bool
    author: Address
    text: str
    context: str
    recipient: Address
    recipient_is_team: bool
    reply_address: str
    private_address: str | None
    magic_link: str
    unsubscribe_url: str
    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    domain: str
    team_name: str
    loop_marker: str
    attachments: tuple[AttachmentNote, ...] = ()
    date: datetime | None = None


@dataclass(frozen=True)
class Acknowledgement:
    """Tells an external sender that their mail opened task ``number``.

    ``in_reply_to`` is the Message-ID of the sender's mail, so the answer threads under it.
    """

    number: int
    title: str
    recipient: Address
    reply_address: str
    magic_link: str
    message_id: str
    in_reply_to: str
    domain: str
    team_name: str
    loop_marker: str
    date: datetime | None = None


@dataclass(frozen=True)
class LoginLink:
    """A magic sign-in link, sent from ``from_address`` (e.g. ``noreply@<domain>``)."""

    recipient: Address
    magic_link: str
    ttl_minutes: int
    domain: str
    team_name: str
    message_id: str
    loop_marker: str
    from_address: str
    date: datetime | None = None


@dataclass(frozen=True)
class IntakeRequest:
    """Asks whoever left a message on the contact form to confirm their address.

    Sent to an address nobody has proved yet, so it says nothing of the visitor's own
    beyond the start of their subject (``subject_start``): the contact form is not a way
    to send one's words to somebody else.
    """

    recipient: Address
    confirm_link: str
    subject_start: str
    ttl_minutes: int
    domain: str
    team_name: str
    message_id: str
    loop_marker: str
    from_address: str
    date: datetime | None = None


@dataclass(frozen=True)
class Refused:
    """One address that was not added to a hidden branch, and why."""

    email: str
    reason: str


@dataclass(frozen=True)
class Refusal:
    """Tells a team member what of their mail to a hidden branch was not done.

    ``refused``: addresses they copied in that were kept out (only team members join a
    hidden branch); ``commands``: command lines not carried out (they change what the
    client sees, so they work only in the main discussion).
    """

    number: int
    title: str
    recipient: Address
    refused: tuple[Refused, ...]
    reply_address: str
    message_id: str
    in_reply_to: str | None
    domain: str
    team_name: str
    loop_marker: str
    date: datetime | None = None
    commands: tuple[str, ...] = ()


def mail_environment(folder: Path) -> Environment:
    """The jinja2 environment for ``templates/mail``: HTML autoescaped, text verbatim.

    ``StrictUndefined`` turns a misspelt name into an error in the tests instead of a
    blank in somebody's inbox.  Templates are part of the release: each is compiled once
    per process and not looked at on disk again (no ``stat`` for every mail composed).
    """
    return Environment(
        loader=FileSystemLoader(folder),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def compose_notification(n: Notification, env: Environment) -> EmailMessage:
    """The mail telling ``n.recipient`` about a new message in a task's branch."""
    message, text, html = notification_parts(n, env)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def notification_parts(n: Notification, env: Environment) -> tuple[EmailMessage, str, str]:
    """The notification's headers (a message without a body), its text and its HTML."""
    return (notification_head(n), *notification_bodies(n, env))


def notification_head(n: Notification) -> EmailMessage:
    """The notification's headers: the same for the team and for everybody else."""
    message = _begin(
        n,
        sender=mailbox(sender_name(n), n.reply_address),
        reply_to=n.reply_address,
        subject=task_subject(n.number, n.title),
        auto_submitted="auto-generated",
    )
    set_thread(message, n.in_reply_to, n.references, n.domain)
    set_list_headers(message, n.team_name, n.number, n.domain, n.unsubscribe_url)
    return message


def sender_name(n: Notification) -> str:
    """The display name of a notification's ``From``: its author, via the team."""
    return one_line(f"{_display(n.author)} (via {n.team_name})")


def notification_bodies(n: Notification, env: Environment) -> tuple[str, str]:
    """The notification's text and HTML, which differ for the team (``recipient_is_team``)."""
    team = n.recipient_is_team
    context_lines = plain_text(n.context).splitlines()[:CONTEXT_LINES]
    context: dict[str, Any] = {
        "number": n.number,
        "title": one_line(n.title),
        "status": one_line(n.status),
        "tags": [one_line(tag) for tag in n.tags] if team else [],
        "hidden": team and n.hidden,
        "author": _display(n.author),
        "text": plain_text(n.text),
        "context_lines": context_lines,
        "attachments": [(one_line(a.filename), human_size(a.size)) for a in n.attachments],
        "magic_link": n.magic_link,
        "private_address": n.private_address if team else None,
        "team_name": one_line(n.team_name),
    }
    text = env.get_template("notification.txt").render(**context)
    html = env.get_template("notification.html").render(**context)
    return text, html


def compose_acknowledgement(a: Acknowledgement, env: Environment) -> EmailMessage:
    """The answer to an external sender whose mail opened a task (RFC 3834 auto-reply)."""
    message, text, html = acknowledgement_parts(a, env)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def acknowledgement_parts(a: Acknowledgement, env: Environment) -> tuple[EmailMessage, str, str]:
    """The acknowledgement's headers (a message without a body), its text and its HTML."""
    return (acknowledgement_head(a), *acknowledgement_bodies(a, env))


def acknowledgement_head(a: Acknowledgement) -> EmailMessage:
    """The acknowledgement's headers."""
    message = _begin(
        a,
        sender=mailbox(a.team_name, a.reply_address),
        reply_to=a.reply_address,
        subject=task_subject(a.number, a.title),
        auto_submitted="auto-replied",
    )
    set_thread(message, a.in_reply_to, (), a.domain)
    return message


def acknowledgement_bodies(a: Acknowledgement, env: Environment) -> tuple[str, str]:
    """The acknowledgement's text and HTML."""
    context = {
        "number": a.number,
        "title": one_line(a.title),
        "magic_link": a.magic_link,
        "team_name": one_line(a.team_name),
    }
    text = env.get_template("ack.txt").render(**context)
    html = env.get_template("ack.html").render(**context)
    return text, html


def compose_login_link(link: LoginLink, env: Environment) -> EmailMessage:
    """The mail carrying a magic sign-in link; it has no thread and takes no replies."""
    message = _begin(
        link,
        sender=mailbox(link.team_name, link.from_address),
        reply_to=None,
        subject=f"Your sign-in link for {one_line(link.team_name)}",
        auto_submitted="auto-generated",
    )
    _render(
        message,
        env,
        "login",
        magic_link=link.magic_link,
        valid_for=duration(link.ttl_minutes),
        team_name=one_line(link.team_name),
    )
    return message


def compose_intake_request(request: IntakeRequest, env: Environment) -> EmailMessage:
    """The mail asking to confirm an address left on the contact form; it takes no replies."""
    message = _begin(
        request,
        sender=mailbox(request.team_name, request.from_address),
        reply_to=None,
        subject=f"Please confirm your message to {one_line(request.team_name)}",
        auto_submitted="auto-generated",
    )
    _render(
        message,
        env,
        "intake_request",
        confirm_link=request.confirm_link,
        subject_start=one_line(request.subject_start),
        valid_for=duration(request.ttl_minutes),
        team_name=one_line(request.team_name),
    )
    return message


def compose_refusal(r: Refusal, env: Environment) -> EmailMessage:
    """The answer to a team member whose mail to a hidden branch was not all carried out.

    ``auto-replied`` (RFC 3834): it answers that member's mail.
    """
    message = _begin(
        r,
        sender=mailbox(r.team_name, r.reply_address),
        reply_to=r.reply_address,
        subject=task_subject(r.number, r.title),
        auto_submitted="auto-replied",
    )
    set_thread(message, r.in_reply_to, (), r.domain)
    _render(
        message,
        env,
        "refusal",
        number=r.number,
        title=one_line(r.title),
        refused=[(one_line(x.email), one_line(x.reason)) for x in r.refused],
        commands=[one_line(command) for command in r.commands],
        team_name=one_line(r.team_name),
    )
    return message


def body_text(message: EmailMessage) -> str:
    r"""The text/plain part of ``message``, with ``\n`` line ends, or ``""`` if none.

    The caller stores it, so that a later reply quoting it can be recognised.
    """
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    return plain_text(str(part.get_content()))


def human_size(size: int) -> str:
    """A file size as people read it.

    >>> human_size(512), human_size(2048), human_size(5 * 1024 * 1024 + 1)
    ('512 bytes', '2 KB', '5.0 MB')
    """
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def duration(minutes: int) -> str:
    """How long a link stays valid, in the largest whole unit.

    >>> duration(1), duration(30), duration(120), duration(1440), duration(90)
    ('1 minute', '30 minutes', '2 hours', '1 day', '90 minutes')
    """
    for unit, length in (("day", 1440), ("hour", 60)):
        if minutes >= length and minutes % length == 0:
            count = minutes // length
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _begin(
    item: Notification | Acknowledgement | LoginLink | IntakeRequest | Refusal,
    *,
    sender: Mailbox,
    reply_to: str | None,
    subject: str,
    auto_submitted: str,
) -> EmailMessage:
    """A new message with ``item``'s recipient, ids and our standard headers."""
    return new_message(
        sender=sender,
        recipient=mailbox(item.recipient.name, item.recipient.email),
        reply_to=reply_to,
        subject=subject,
        message_id=msg_id(item.message_id, item.domain, strict=True),
        auto_submitted=auto_submitted,
        loop_marker=item.loop_marker,
        date=item.date,
    )


def _render(message: EmailMessage, env: Environment, name: str, **context: Any) -> None:
    """Fill the body: ``<name>.txt`` as text/plain, ``<name>.html`` as its alternative."""
    message.set_content(env.get_template(f"{name}.txt").render(**context))
    message.add_alternative(env.get_template(f"{name}.html").render(**context), subtype="html")


def _display(person: Address) -> str:
    """The name people know someone by: the display name, or else the address."""
    return one_line(person.name) or one_line(person.email)


def plain_text(text: str) -> str:
    r"""Body text with ``\n`` line ends and no blank lines around it."""
    return text.replace("\r\n", "\n").replace("\r", "\n").rstrip().lstrip("\n")
