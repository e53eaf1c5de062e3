"""Our address scheme, both ways: ``reply+TOKEN@<domain>`` and the intake addresses.

Pure string work: verifying a token's signature is ``qmail.auth.signed``' job.  The SMTP
edge asks ``parse_recipient()`` what an envelope address is before accepting it.
"""

from __future__ import annotations

from dataclasses import dataclass

from qmail.core.mail import Intake

REPLY_PREFIX = "reply+"


@dataclass(frozen=True)
class TokenAddress:
    """A ``reply+TOKEN@domain`` address whose token is still to be verified."""

    token: str


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
