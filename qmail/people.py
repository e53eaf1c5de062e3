"""People: the addresses qmail has met, and who of them is on the team.

A person is created when they write to us (the author of a mail that is posted), when a
team member whose mail is proven to be theirs copies them in, by the configuration
(``mail.triage``) or by the CLI.  Nobody becomes a person, let alone a team member, just
by being named in a mail.

Team membership is never frozen into the database: ``Team`` reads it from the
configuration as it is now (``mail.team_domains``), with each person's explicit ``role``
(``qmail person set EMAIL --team|--external``) on top.  The same rule is available as a
Python test (``Team.includes``) and as a SQL condition (``Team.condition``), so a query
and the code around it can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, bindparam, false, insert, or_
from sqlmodel import Session, col, select

from qmail import models
from qmail.config import Settings
from qmail.core.addresses import split_address
from qmail.core.mail import Address
from qmail.db import Prepared, held, insert_row

TEAM = "team"
EXTERNAL = "external"
ROLES = (TEAM, EXTERNAL)


class Someone(Protocol):
    """What is read of a person to mail them: a ``Person`` row, or its columns read in Core."""

    @property
    def id(self) -> int | None: ...
    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str | None: ...


@dataclass(frozen=True)
class Team:
    """Who is on the team now: ``mail.team_domains``, and explicit roles on top."""

    domains: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> Team:
        return cls(tuple(domain.lower() for domain in settings.mail.team_domains))

    def by_address(self, email: str) -> bool:
        """Whether the configuration alone puts ``email`` on the team."""
        return split_address(email)[1] in self.domains

    def includes(self, person: Someone) -> bool:
        """Whether ``person`` is a team member: their explicit role, else the configuration."""
        if person.role is not None:
            return person.role == TEAM
        return self.by_address(person.email)

    def condition(self, person: Any = models.Person) -> ColumnElement[bool]:
        """``includes`` as a SQL condition on ``Person`` (or an alias of it).

        ``Person.domain`` is the database's own reading of the address's domain, with an
        index on ``(role, domain)``: the team is found without reading everyone.
        """
        role = col(person.role)
        configured = col(person.domain).in_(self.domains) if self.domains else false()
        return or_(role == TEAM, and_(role.is_(None), configured))


LOOK_UP: Any = object()  # (a person not looked up by the caller: see ``get_person``)


def find_person(session: Session, email: str) -> models.Person | None:
    """The person with this address, if qmail has met them.

    Read in Core (``db.Prepared``: every mail asks), and given as the ORM would give it:
    the session's object if it holds one, else one it holds from now on (``db.held``);
    the session's changes are flushed first, as a query would.
    """
    if session.autoflush:
        session.flush()
    rows = _BY_EMAIL.read(session, {"email": email.strip().lower()})
    if not rows:
        return None
    return held(session, models.Person, dict(zip(_PERSON_FIELDS, rows[0], strict=True)))


_PERSON_FIELDS = tuple(column.key for column in models.Person.__table__.columns)  # type: ignore[attr-defined]
_BY_EMAIL = Prepared(
    select(*models.Person.__table__.columns).where(  # type: ignore[attr-defined]
        col(models.Person.email) == bindparam("email")
    )
)


def on_team(session: Session, team: Team, email: str) -> bool:
    """Whether ``email`` is a team member: by their role when qmail knows them, else by
    the configuration (someone not met yet has no role)."""
    known = find_person(session, email)
    return team.includes(known) if known is not None else team.by_address(email)


def get_person(
    session: Session, address: Address, now: datetime, found: models.Person | None = LOOK_UP
) -> models.Person:
    """The person with this address, created on first sight; a missing name is filled in.

    Callers decide whether meeting this address may create a person (see the module's
    docstring); the new person follows the configuration (no explicit role).  ``found``:
    what ``find_person`` gave for this address in this transaction (not read again;
    ``None``: nobody), or ``LOOK_UP``.
    """
    email = address.email.lower()
    if found is LOOK_UP or (found is not None and found.email != email.strip()):
        found = find_person(session, email)
    person = found
    if person is None:  # written in Core and kept in the session (``db.insert_row``)
        values = dict(_NEW_PERSON, email=email, name=address.name, created_at=now)
        person = insert_row(session, _WRITE_PERSON, models.Person, values)
    elif address.name and not person.name:
        person.name = address.name
    return person


_NEW_PERSON: dict[str, Any] = {  # (what a new person has besides address, name and time)
    "role": None,
    "last_login_at": None,
    "notifications": "mine",
    "digest_sent_at": None,
    "digest_after_id": None,
    "feed_nonce": None,
}
_WRITE_PERSON = Prepared(
    insert(models.Person).returning(col(models.Person.id), col(models.Person.domain)),
    (
        "email",
        "name",
        "role",
        "created_at",
        "last_login_at",
        "notifications",
        "digest_sent_at",
        "digest_after_id",
        "feed_nonce",
    ),
)


def is_ours(email: str, settings: Settings) -> bool:
    return split_address(email)[1] == settings.mail.domain.lower()
