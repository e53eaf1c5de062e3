"""Browser sessions, kept on the server: opened by a magic link, ended by signing out.

The session cookie is ``ss_`` + 32 random bytes (URL-safe base64); only its SHA-256 is
stored (``WebSession.token_hash``), as for API tokens, so a leaked database holds no
usable cookie.  A cookie counts only while its row exists, is not revoked and has not
expired: signing out revokes the row, so a copied cookie dies with it.  ``last_seen_at`` is
written at most every ``SEEN_EVERY``, so reading pages does not mean writing rows.

Used by the web app (``web/deps.py``, ``web/auth.py``, ``web/settings_page.py``) and the CLI
(``qmail session list|revoke``).  Never store or log a cookie in the clear.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from qmail import models
from qmail.auth.api_tokens import hash_token

PREFIX = "ss_"
MAX_AGE = timedelta(days=30)
SEEN_EVERY = timedelta(minutes=5)
KEEP_ENDED = timedelta(days=30)  # ended sessions stay listed this long, then go
_MAX_LENGTH = 200  # a real cookie is 46 characters; refuse to hash megabytes of header
_MAX_USER_AGENT = 300


def open_session(session: Session, person_id: int, user_agent: str, now: datetime) -> str:
    """A new session for ``person_id``; the cookie value is returned once and never stored."""
    cookie = PREFIX + secrets.token_urlsafe(32)
    session.add(
        models.WebSession(
            person_id=person_id,
            token_hash=hash_token(cookie),
            user_agent=user_agent[:_MAX_USER_AGENT],
            created_at=now,
            expires_at=now + MAX_AGE,
            last_seen_at=now,
        )
    )
    # Opportunistic clean-up: sessions that ended long ago are of no use to anyone.
    session.connection().execute(
        delete(models.WebSession).where(col(models.WebSession.expires_at) < now - KEEP_ENDED)
    )
    session.flush()
    return cookie


def state(web_session: models.WebSession, now: datetime) -> str:
    """``active``, ``revoked`` or ``expired``."""
    if web_session.revoked_at is not None:
        return "revoked"
    return "active" if now < web_session.expires_at else "expired"


def active_session(session: Session, cookie: str, now: datetime) -> models.WebSession | None:
    """The session a cookie opens, if it is genuine, not revoked and not expired."""
    if not cookie.startswith(PREFIX) or len(cookie) > _MAX_LENGTH:
        return None
    web_session = session.exec(
        select(models.WebSession).where(models.WebSession.token_hash == hash_token(cookie))
    ).first()
    if web_session is None or state(web_session, now) != "active":
        return None
    return web_session


def mark_seen(session: Session, web_session: models.WebSession, now: datetime) -> None:
    """Record activity, at most every ``SEEN_EVERY``; commits when it writes."""
    if now - web_session.last_seen_at < SEEN_EVERY:
        return
    session.connection().execute(
        update(models.WebSession)
        .where(col(models.WebSession.id) == web_session.id)
        .values(last_seen_at=now)
    )
    session.commit()
    web_session.last_seen_at = now


def sessions_of(
    session: Session, person_id: int, now: datetime, active_only: bool = False
) -> list[models.WebSession]:
    """A person's sessions, newest first (only the usable ones with ``active_only``)."""
    rows = session.exec(
        select(models.WebSession)
        .where(models.WebSession.person_id == person_id)
        .order_by(col(models.WebSession.id).desc())
    ).all()
    return [row for row in rows if not active_only or state(row, now) == "active"]


def revoke(session: Session, web_session: models.WebSession, now: datetime) -> bool:
    """End a session (no commit); ``False`` when it had already ended."""
    if state(web_session, now) != "active":
        return False
    web_session.revoked_at = now
    session.add(web_session)
    return True
