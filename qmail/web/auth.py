"""The sign-in views: magic links, asking for a fresh link, signing out (CONTRACT.md).

An edge only: links are read, spent and mailed by ``qmail.auth.links``.
``GET /auth/magic/<token>`` only shows a confirmation form and changes nothing: corporate
mail scanners (Microsoft Defender Safe Links, Mimecast, Proofpoint) fetch every link in a
mail, and a GET that signed in would spend the link before its owner clicks.  ``POST`` to
the same URL spends it, opens a server-side session and lands on the page the link was
made for (a task, from a notification), or the inbox.

``POST /login`` answers the same page whether or not the address is known (no account
enumeration) and sends at most ``LOGIN_MAILS_PER_HOUR`` links per address.  ``POST
/logout`` revokes the session on the server, so a copied cookie stops working too.  Every
form carries Litestar's CSRF token; nothing here ever shows a token that was not valid.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from sqlmodel import Session

from qmail.auth import sessions
from qmail.auth.links import read_link, send_login_link, spend_link
from qmail.config import Settings
from qmail.web.deps import SESSION_COOKIE, current_web_session

# The token is in the page's URL: keep it out of Referer headers and out of caches.
_LINK_PAGE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


class LoginForm(msgspec.Struct):
    email: str = ""


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
