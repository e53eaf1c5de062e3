"""People: every address qmail has seen, and whether it belongs to the team.

A person is created the first time an address shows up (sender, recipient, CC, the CLI);
``mail.team_domains`` decides at that moment whether they are on the team.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from qmail import models
from qmail.config import Settings
from qmail.core.addresses import split_address
from qmail.core.mail import Address


def is_team_address(email: str, settings: Settings) -> bool:
    return split_address(email)[1] in settings.mail.team_domains


def get_person(
    session: Session, address: Address, settings: Settings, now: datetime
) -> models.Person:
    """The person with this address, created on first sight; a missing name is filled in."""
    email = address.email.lower()
    person = session.exec(select(models.Person).where(models.Person.email == email)).first()
    if person is None:
        person = models.Person(
            email=email,
            name=address.name,
            is_team=is_team_address(email, settings),
            created_at=now,
        )
        session.add(person)
        session.flush()
    elif address.name and not person.name:
        person.name = address.name
    return person


def is_ours(email: str, settings: Settings) -> bool:
    return split_address(email)[1] == settings.mail.domain.lower()
