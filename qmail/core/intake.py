"""The public contact form, pure: checking what a visitor typed, and the mail it becomes.

A visitor's message opens a task "as if they had mailed the intake address": once the
address is confirmed, ``intake_mail`` writes the mail they would have sent (``From`` them,
``To`` the intake address, their subject and text), and the inbound pipeline files it like
any other, so the task, the contact, the acknowledgement and the team's notifications are
those of a mail.  The mail carries no ``Auto-Submitted`` and no loop marker: it is the
visitor's own words, not ours.  This module never sends anything to anyone: the only mail
an unconfirmed address gets is the fixed confirmation (``compose.compose_intake_request``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from qmail.core.addresses import split_address, typed_address
from qmail.core.headers import POLICY, UTF8_POLICY, mailbox, one_line, wire_bytes

MAX_NAME = 200
MAX_SUBJECT = 200
MAX_TEXT = 20_000
DEFAULT_SUBJECT = "Message from the contact form"


@dataclass(frozen=True)
class IntakeForm:
    """A visitor's message as checked: one address, a one-line name and subject, the text."""

    email: str
    name: str
    subject: str
    text: str


def check_form(email: str, name: str, subject: str, text: str, domain: str) -> IntakeForm | str:
    r"""The form's fields as a message, or why they are not one (for the visitor).

    An address at our own domain is refused: the confirmation mail would come back to us.

    >>> check_form(" Dana@Client.Example ", "Dana\n", "", "Hello", "example.com").email
    'dana@client.example'
    >>> check_form("dana@client.example", "Dana\n", "", "Hello", "example.com").subject
    'Message from the contact form'
    >>> check_form("tasks@example.com", "", "Hi", "Hello", "example.com")
    'Please give an address of your own.'
    >>> check_form("dana@client.example", "", "Hi", "  ", "example.com")
    'Please write a message.'
    """
    address = typed_address(email)
    if address is None or len(address) > 254:
        return "Please give one valid email address."
    _, address_domain = split_address(address)
    if address_domain == domain.lower() or address_domain.endswith("." + domain.lower()):
        return "Please give an address of your own."
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return "Please write a message."
    if len(text) > MAX_TEXT:
        return f"Please keep the message under {MAX_TEXT:,} characters."
    name, subject = one_line(name), one_line(subject)
    if len(name) > MAX_NAME or len(subject) > MAX_SUBJECT:
        return f"Please keep the name and the subject under {MAX_SUBJECT} characters."
    return IntakeForm(address, name, subject or DEFAULT_SUBJECT, text)


def intake_message_id(submission_id: int, nonce: str, domain: str) -> str:
    """The Message-ID of a submission's mail: the same each time, so it is filed once."""
    return f"intake.{submission_id}.{nonce}@{domain}"


def intake_mail(form: IntakeForm, to: str, message_id: str, date: datetime) -> bytes:
    """The mail the visitor would have sent to the intake address ``to``."""
    sender = mailbox(form.name, form.email)
    message = EmailMessage(policy=POLICY if sender.addr_spec.isascii() else UTF8_POLICY)
    message["From"] = sender
    message["To"] = mailbox("", to)
    message["Subject"] = form.subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = f"<{message_id}>"
    message.set_content(form.text)
    return wire_bytes(message)
