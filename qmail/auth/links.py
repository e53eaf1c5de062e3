"""Magic sign-in links: reading one, spending it once, and mailing a fresh one.

A link is single use: spending it records its nonce in ``SpentLink``, whose primary key
lets only one of two concurrent clicks through, while the person's other links keep
working.  Spending opens a server-side session (``qmail.auth.sessions``) and lands on the
page the link was made for.  ``send_login_link`` mails a link to a known address, at most
``LOGIN_MAILS_PER_HOUR`` an hour.  The web's ``/auth`` and ``/login`` views call these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from jinja2 import Environment
from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from qmail import models
from qmail.auth import sessions
from qmail.auth.signed import LinkTokens, MagicLink, magic_link_url
from qmail.config import Settings
from qmail.core.compose import LoginLink, compose_login_link, mail_environment
from qmail.core.mail import Address
from qmail.outbound.outbox import enqueue, new_message_id
from qmail.resources import templates_dir

LOGIN_MAILS_PER_HOUR = 5


_MAX_TOKEN_LENGTH = 300  # a real link token is about 100 characters


# Spent nonces are kept a little past the links' lifetime, for clocks that disagree.
_CLOCK_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class SignIn:
    """A spent link: who signed in, their new session's cookie and where to go."""

    person: models.Person
    cookie: str
    next_path: str


def landing_path(path: str) -> str:
    """``path`` if it is a path on this site, else ``/``: a link never sends anyone away.

    Browsers read ``//host`` and ``/\\host`` as another site: one leading slash only.
    """
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    if not path.isascii() or not path.isprintable() or " " in path:
        return "/"
    return path


def read_link(
    session: Session, links: LinkTokens, token: str
) -> tuple[MagicLink, models.Person] | None:
    """What a link says and whom it signs in, if it is genuine, unexpired and not yet spent."""
    link = links.read_login(token) if len(token) <= _MAX_TOKEN_LENGTH else None
    if link is None or session.get(models.SpentLink, link.nonce) is not None:
        return None
    person = session.get(models.Person, link.person_id)
    return None if person is None or person.id is None else (link, person)


def spend_link(
    session: Session, links: LinkTokens, token: str, user_agent: str, now: datetime
) -> SignIn | None:
    """Sign in with a link, once: record its nonce, open a session, commit."""
    found = read_link(session, links, token)
    if found is None:
        return None
    link, person = found
    assert person.id is not None
    session.add(models.SpentLink(nonce=link.nonce, person_id=person.id, spent_at=now))
    try:
        session.flush()
    except IntegrityError:  # another click spent it between our read and our write
        session.rollback()
        return None
    kind = "signed_in" if _record_sign_in(session, person.id, now) else "signed_up"
    session.add(models.Event(person_id=person.id, kind=kind, created_at=now))
    cookie = sessions.open_session(session, person.id, user_agent, now)
    session.connection().execute(
        delete(models.SpentLink).where(
            col(models.SpentLink.spent_at)
            < now - timedelta(seconds=links.login_ttl) - _CLOCK_MARGIN
        )
    )
    session.commit()
    return SignIn(person, cookie, landing_path(link.next_path))


def _record_sign_in(session: Session, person_id: int, now: datetime) -> bool:
    """Set ``last_login_at``; ``True`` if the person had signed in before."""
    person = col(models.Person.id) == person_id
    connection = session.connection()
    first = connection.execute(
        update(models.Person)
        .where(person, col(models.Person.last_login_at).is_(None))
        .values(last_login_at=now)
    )
    if first.rowcount == 1:
        return False
    connection.execute(update(models.Person).where(person).values(last_login_at=now))
    return True


def login_mails_since(session: Session, email: str, since: datetime) -> int:
    """How many sign-in mails were queued for ``email`` since ``since``."""
    outbox = models.Outbox
    statement = (
        select(func.count())
        .select_from(outbox)
        .where(outbox.kind == "login", outbox.recipient == email)
        .where(col(outbox.created_at) >= since)
    )
    return int(session.exec(statement).one())


@cache
def _mail_env() -> Environment:
    return mail_environment(templates_dir() / "mail")


def send_login_link(
    session: Session, settings: Settings, links: LinkTokens, email: str, now: datetime
) -> bool:
    """Queue a sign-in mail for a known address, within the rate limit; commit."""
    person = session.exec(select(models.Person).where(models.Person.email == email)).first()
    if person is None or person.id is None:
        return False
    if login_mails_since(session, person.email, now - timedelta(hours=1)) >= LOGIN_MAILS_PER_HOUR:
        return False
    domain = settings.mail.domain
    link = LoginLink(
        recipient=Address(person.email, person.name),
        magic_link=magic_link_url(settings.web.base_url, links.make_login(person.id)),
        ttl_minutes=max(1, settings.security.magic_link_ttl // 60),
        domain=domain,
        team_name=settings.mail.team_name,
        message_id=new_message_id(domain),
        loop_marker=domain,
        from_address=f"noreply@{domain}",
    )
    enqueue(session, compose_login_link(link, _mail_env()), "login", person, now)
    session.commit()
    return True
