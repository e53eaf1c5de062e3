"""Signing in by magic link, asking for a fresh link, signing out (CONTRACT.md, "Web and JSON API").

``GET /auth/magic/<token>`` only shows a confirmation form and changes nothing: corporate
mail scanners (Microsoft Defender Safe Links, Mimecast, Proofpoint) fetch every link in a
mail, and a GET that signed in would spend the link before its owner clicks.  ``POST`` to
the same URL spends it: an INSERT of the link's nonce into ``SpentLink``, whose primary key
lets only one of two concurrent clicks through.  Other links of the same person keep
working.  The POST opens a server-side session (``qmail.auth.sessions``) and lands on the
page the link was made for (a task, from a notification), or the inbox.  The first
sign-in is the person's signup (an Event ``signed_up``).

``POST /login`` answers the same page whether or not the address is known (no account
enumeration) and sends at most ``LOGIN_MAILS_PER_HOUR`` links per address.  ``POST
/logout`` revokes the session on the server, so a copied cookie stops working too.  Every
form carries Litestar's CSRF token; nothing here ever shows a token that was not valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any

import msgspec
from jinja2 import Environment
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
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
from qmail.web.deps import SESSION_COOKIE, current_web_session

LOGIN_MAILS_PER_HOUR = 5
_MAX_TOKEN_LENGTH = 300  # a real link token is about 100 characters
# Spent nonces are kept a little past the links' lifetime, for clocks that disagree.
_CLOCK_MARGIN = timedelta(hours=1)
# The token is in the page's URL: keep it out of Referer headers and out of caches.
_LINK_PAGE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


class LoginForm(msgspec.Struct):
    email: str = ""


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


def session_cookie(settings: Settings, value: str) -> Cookie:
    """The session cookie: HttpOnly, SameSite=Lax, Secure behind https."""
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        max_age=int(sessions.MAX_AGE.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.web.base_url.startswith("https://"),
    )


def invalid_link() -> Template:
    """The one page for a tampered, expired or spent link: no reason given, a way out."""
    return Template("link_invalid.html", status_code=400, headers=_LINK_PAGE_HEADERS)


class AuthController(Controller):
    @get("/auth/magic/{token:str}", sync_to_thread=True)
    def confirm(
        self, session: NamedDependency[Session], state: State, token: FromPath[str]
    ) -> Response[Any]:
        """The "Sign in as …?" form; spends nothing (mail scanners fetch links)."""
        found = read_link(session, state.links, token)
        if found is None:
            return invalid_link()
        email = found[1].email
        return Template("magic.html", context={"email": email}, headers=_LINK_PAGE_HEADERS)

    @post("/auth/magic/{token:str}", sync_to_thread=True)
    def sign_in(
        self,
        request: Request[Any, Any, Any],
        session: NamedDependency[Session],
        state: State,
        token: FromPath[str],
    ) -> Response[Any]:
        """Spend the link, open a session and go to the page the link was made for."""
        user_agent = request.headers.get("user-agent", "")
        signed_in = spend_link(session, state.links, token, user_agent, datetime.now(UTC))
        if signed_in is None:
            return invalid_link()
        cookie = session_cookie(state.settings, signed_in.cookie)
        return Redirect(signed_in.next_path, status_code=303, cookies=[cookie])

    @get("/login", sync_to_thread=False)
    def login_page(self) -> Template:
        """The form asking for an address to send a sign-in link to."""
        return Template("login.html", context={"sent": False})

    @post("/login", sync_to_thread=True, status_code=200)
    def request_link(
        self,
        session: NamedDependency[Session],
        state: State,
        data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        """Mail a sign-in link to a known address; the answer is the same for any address."""
        email = data.email.strip().lower()
        if 0 < len(email) <= 320:
            send_login_link(session, state.settings, state.links, email, datetime.now(UTC))
        return Template("login.html", context={"sent": True})

    @post("/logout", sync_to_thread=True)
    def logout(
        self, request: Request[Any, Any, Any], session: NamedDependency[Session]
    ) -> Response[Any]:
        """End the session on the server, forget the cookie, go to the sign-in page."""
        web_session = current_web_session(request, session)
        if web_session is not None:
            sessions.revoke(session, web_session, datetime.now(UTC))
            session.commit()
        response = Redirect("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
