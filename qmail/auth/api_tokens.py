"""Bearer tokens for the JSON API (``qmail token create``).

A token is ``qm_`` + 32 random bytes (URL-safe base64); only its SHA-256 hex is stored, so
a leaked database does not leak usable tokens.  Lookup is by the hash of the presented
token: the comparison an attacker could time is between hashes they cannot choose, so no
constant-time compare is needed.  The recognisable prefix lets secret scanners spot leaked
tokens and lets us reject garbage before touching the database.

Never store or log a token in the clear.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import Session, col, select

from qmail import models

PREFIX = "qm_"
_MAX_LENGTH = 200  # a real token is 46 characters; refuse to hash megabytes of header


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256 in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(session: Session, person: models.Person) -> str:
    """Make a new token for ``person``; the clear token is returned once and never stored."""
    if person.id is None:
        raise ValueError("the person must be saved before a token is made for them")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(models.ApiToken(person_id=person.id, token_hash=hash_token(token)))
    session.flush()
    return token


def person_for_api_token(session: Session, token: str) -> models.Person | None:
    """The person a presented token belongs to, or ``None`` for anything unknown."""
    if not token.startswith(PREFIX) or len(token) > _MAX_LENGTH:
        return None
    statement = (
        select(models.Person)
        .join(models.ApiToken, col(models.ApiToken.person_id) == models.Person.id)
        .where(models.ApiToken.token_hash == hash_token(token))
    )
    return session.exec(statement).first()
