"""Signing in by magic link, asking for a fresh link, signing out (CONTRACT.md, "Web and JSON API").

``GET /auth/magic/<token>`` only shows a confirmation form and changes nothing: corporate
mail scanners (Microsoft Defender Safe Links, Mimecast, Proofpoint) fetch every link in a
mail, and a GET that signed in would spend the link before its owner clicks.  ``POST`` to
the same URL spends it: one ``UPDATE … WHERE login_count = <the link's count>`` bumps the
person's counter, so of two concurrent clicks only one signs in, and every older link dies
with it.  The first sign-in is the person's signup (an Event ``signed_up``).

``POST /login`` answers the same page whether or not the address is known (no account
enumeration) and sends at most ``LOGIN_MAILS_PER_HOUR`` links per address.  Every form
carries Litestar's CSRF token; nothing here ever shows a token that was not valid.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any

import msgspec
from jinja2 import Environment
from litestar import Controller, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from qmail import models
from qmail.config import Settings
from qmail.core.compose import LoginLink, compose_login_link, mail_environment
from qmail.core.mail import Address
from qmail.outbox import enqueue, new_message_id
from qmail.resources import templates_dir
from qmail.tokens import LinkTokens, SessionTokens
from qmail.web.deps import SESSION_COOKIE

LOGIN_MAILS_PER_HOUR = 5
_MAX_TOKEN_LENGTH = 300  # a real link token is about 50 characters
# The token is in the page's URL: keep it out of Referer headers and out of caches.
_LINK_PAGE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


class LoginForm(msgspec.Struct):
    email: str = ""


def person_for_link(session: Session, links: LinkTokens, token: str) -> models.Person | None:
    """The person a link signs in, if it is genuine, unexpired and not yet spent."""
    pair = links.read_login(token) if len(token) <= _MAX_TOKEN_LENGTH else None
    if pair is None:
        return None
    person = session.get(models.Person, pair[0])
    if person is None or person.login_count != pair[1]:
        return None
    return person


def spend_link(
    session: Session, links: LinkTokens, token: str, now: datetime
) -> models.Person | None:
    """Sign in with a link, once: bump the counter, record the sign-in, commit."""
    person = person_for_link(session, links, token)
    if person is None or person.id is None:
        return None
    first = person.last_login_at is None
    spent = session.connection().execute(
        update(models.Person)
        .where(col(models.Person.id) == person.id)
        .where(col(models.Person.login_count) == person.login_count)
        .values(login_count=person.login_count + 1, last_login_at=now)
    )
    if spent.rowcount != 1:  # another click spent it between our read and our write
        session.rollback()
        return None
    kind = "signed_up" if first else "signed_in"
    session.add(models.Event(person_id=person.id, kind=kind, created_at=now))
    session.commit()
    return person


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
    token = links.make_login(person.id, person.login_count)
    link = LoginLink(
        recipient=Address(person.email, person.name),
        magic_link=f"{settings.web.base_url.rstrip('/')}/auth/magic/{token}",
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


def session_cookie(settings: Settings, sessions: SessionTokens, person_id: int) -> Cookie:
    """The signed session cookie: HttpOnly, SameSite=Lax, Secure behind https."""
    return Cookie(
        key=SESSION_COOKIE,
        value=sessions.make(person_id),
        max_age=sessions.max_age,
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
        person = person_for_link(session, state.links, token)
        if person is None:
            return invalid_link()
        return Template("magic.html", context={"email": person.email}, headers=_LINK_PAGE_HEADERS)

    @post("/auth/magic/{token:str}", sync_to_thread=True)
    def sign_in(
        self, session: NamedDependency[Session], state: State, token: FromPath[str]
    ) -> Response[Any]:
        """Spend the link, set the session cookie and go to the inbox."""
        person = spend_link(session, state.links, token, datetime.now(UTC))
        if person is None or person.id is None:
            return invalid_link()
        cookie = session_cookie(state.settings, state.sessions, person.id)
        return Redirect("/", status_code=303, cookies=[cookie])

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

    @post("/logout", sync_to_thread=False)
    def logout(self) -> Response[Any]:
        """Forget the session cookie and go to the sign-in page."""
        response = Redirect("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
