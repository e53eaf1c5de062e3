"""Bearer tokens for the JSON API: made by ``qmail token create`` or on ``/settings``.

A token is ``qm_`` + 32 random bytes (URL-safe base64); only its SHA-256 hex is stored, so
a leaked database does not leak usable tokens.  Lookup is by the hash of the presented
token: the comparison an attacker could time is between hashes they cannot choose, so no
constant-time compare is needed.  The recognisable prefix lets secret scanners spot leaked
tokens and lets us reject garbage before touching the database.

A person names their tokens and revokes them on ``/settings``; a revoked token opens
nothing from the next request on (the row stays, for the record).  ``last_used_at`` is
written at most every ``USED_EVERY``, so API calls do not mean writing rows.

Never store or log a token in the clear; after creation it is shown once, never again.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from qmail import models

PREFIX = "qm_"
MAX_NAME = 100
USED_EVERY = timedelta(minutes=5)
_MAX_LENGTH = 200  # a real token is 46 characters; refuse to hash megabytes of header


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256 in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(
    session: Session, person: models.Person, name: str = "", now: datetime | None = None
) -> str:
    """Make a new token for ``person``; the clear token is returned once and never stored."""
    if person.id is None:
        raise ValueError("the person must be saved before a token is made for them")
    token = PREFIX + secrets.token_urlsafe(32)
    row = models.ApiToken(person_id=person.id, token_hash=hash_token(token), name=name[:MAX_NAME])
    if now is not None:
        row.created_at = now
    session.add(row)
    session.flush()
    return token


def find_api_token(session: Session, token: str) -> tuple[models.ApiToken, models.Person] | None:
    """The unrevoked token row a presented token is and its person (one query), or
    ``None`` for anything else."""
    if not token.startswith(PREFIX) or len(token) > _MAX_LENGTH:
        return None
    found = session.exec(
        select(models.ApiToken, models.Person)
        .join(models.Person, col(models.Person.id) == models.ApiToken.person_id)
        .where(
            models.ApiToken.token_hash == hash_token(token),
            col(models.ApiToken.revoked_at).is_(None),
        )
    ).first()
    return (found[0], found[1]) if found is not None else None


def person_for_api_token(session: Session, token: str) -> models.Person | None:
    """The person a presented token belongs to, or ``None`` for anything unknown or revoked."""
    found = find_api_token(session, token)
    return found[1] if found is not None else None


def mark_used(session: Session, api_token: models.ApiToken, now: datetime) -> None:
    """Record that the token was used, at most every ``USED_EVERY``; commits when it writes."""
    if api_token.last_used_at is not None and now - api_token.last_used_at < USED_EVERY:
        return
    session.connection().execute(
        update(models.ApiToken)
        .where(col(models.ApiToken.id) == api_token.id)
        .values(last_used_at=now)
    )
    session.commit()
    api_token.last_used_at = now


def tokens_of(session: Session, person_id: int) -> list[models.ApiToken]:
    """A person's tokens that still work, newest first."""
    return list(
        session.exec(
            select(models.ApiToken)
            .where(
                models.ApiToken.person_id == person_id,
                col(models.ApiToken.revoked_at).is_(None),
            )
            .order_by(col(models.ApiToken.id).desc())
        ).all()
    )


def revoke_api_token(session: Session, person_id: int, token_id: int, now: datetime) -> bool:
    """Revoke one of ``person_id``'s own working tokens (no commit); ``False`` when they have
    no such token (someone else's, unknown, or revoked already)."""
    found = session.get(models.ApiToken, token_id)
    if found is None or found.person_id != person_id or found.revoked_at is not None:
        return False
    found.revoked_at = now
    session.add(found)
    return True
