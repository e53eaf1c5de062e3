"""Our address scheme, both ways: ``reply+TOKEN@<domain>`` and the intake addresses.

Pure string work: verifying a token's signature is ``qmail.auth.signed``' job.  The SMTP
edge asks ``parse_recipient()`` what an envelope address is before accepting it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qmail.core.mail import Intake

REPLY_PREFIX = "reply+"


@dataclass(frozen=True)
class TokenAddress:
    """A ``reply+TOKEN@domain`` address whose token is still to be verified."""

    token: str


# What a person may type as someone's address on a form: a local part without spaces,
# brackets or separators (Unicode allowed, as SMTPUTF8 allows it) and a host name of
# letters, digits and dashes.
_MAILBOX = re.compile(
    r"[^\s@<>()\[\],;:\\\"]{1,64}@"
    r"(?=.{1,253}$)[^\W_](?:(?:[^\W_]|-)*[^\W_])?(?:\.[^\W_](?:(?:[^\W_]|-)*[^\W_])?)*"
)


def typed_address(text: str) -> str | None:
    """A single address typed on a form, in lower case; ``None`` when it is not one.

    >>> typed_address("  Dana@Client.Example ")
    'dana@client.example'
    >>> typed_address("jörg@client.test")
    'jörg@client.test'
    >>> bad = ("dana", "a b@x.test", "a@x.test, b@y.test", "<a@x>", "a@x_y.test", "a@x..test")
    >>> [typed_address(text) for text in bad]
    [None, None, None, None, None, None]
    """
    text = text.strip()
    return text.lower() if _MAILBOX.fullmatch(text) else None


def split_address(address: str) -> tuple[str, str]:
    """Split an address into (local part, domain), the domain in lower case.

    >>> split_address("Reply+AbC@Tasks.Example.com")
    ('Reply+AbC', 'tasks.example.com')
    >>> split_address("<tasks@x.org>")
    ('tasks', 'x.org')
    """
    address = address.strip().strip("<>")
    local, _, domain = address.rpartition("@")
    return local, domain.lower()


def parse_recipient(
    address: str, domain: str, intake: tuple[str, ...]
) -> Intake | TokenAddress | None:
    """What an envelope recipient means to us, or ``None`` when it is not ours.

    >>> parse_recipient("tasks@example.com", "example.com", ("tasks@example.com",))
    Intake(address='tasks@example.com')
    >>> parse_recipient("reply+abc123@example.com", "example.com", ())
    TokenAddress(token='abc123')
    >>> parse_recipient("bob@example.com", "example.com", ()) is None
    True
    >>> parse_recipient("reply+@example.com", "example.com", ()) is None
    True
    """
    local, at_domain = split_address(address)
    if not local or at_domain != domain.lower():
        return None
    normalized = f"{local.lower()}@{at_domain}"
    if normalized in intake:
        return Intake(normalized)
    if local.lower().startswith(REPLY_PREFIX) and len(local) > len(REPLY_PREFIX):
        return TokenAddress(local[len(REPLY_PREFIX) :].lower())
    return None


def reply_address(token: str, domain: str) -> str:
    """The address that carries ``token``.

    >>> reply_address("12-3-b-xyz", "example.com")
    'reply+12-3-b-xyz@example.com'
    """
    return f"{REPLY_PREFIX}{token}@{domain}"
