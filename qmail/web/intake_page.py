"""The public contact form: ``/intake``, the widget's endpoint, and the confirmation links.

An edge only: the fields are checked by ``qmail.core.intake`` and kept, limited and filed
by ``qmail.inbound.intake_form``.  Everything here answers 404 unless ``intake.enabled``.

``POST /intake`` takes the form from our own page and from the widget (``web/widget.js``)
on the pages of the sites in ``intake.allowed_origins``: the widget posts it
form-encoded with ``Accept: application/json`` (a CORS "simple" request, no preflight)
and reads ``{"status": "sent", "message"}`` or ``{"error"}``.  A post whose ``Origin`` is
neither ours nor allowed is refused with 403; an allowed one is answered with
``Access-Control-Allow-Origin`` naming it, never ``*``, and never with credentials.  The
path is exempt from Litestar's CSRF check (``app.csrf_config``): no session or cookie is
involved, and the widget's site has no token of ours.  A filled-in honeypot field
(``website``) gets the same answer as a real message and nothing is kept or sent.

``GET /intake/confirm/<token>`` only asks (mail scanners fetch links); ``POST`` files the
message, once however often it is sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Template
from sqlmodel import Session

from qmail.config import Settings
from qmail.core.intake import check_form
from qmail.errors import Forbidden, NotFound
from qmail.inbound import intake_form

SENT = (
    "Thank you. Please confirm your address: we have sent you a mail with a link."
    " Your message reaches us once you follow it."
)
# The token is in the page's URL: keep it out of Referer headers and out of caches.
_LINK_PAGE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


class IntakeFields(msgspec.Struct):
    email: str = ""
    name: str = ""
    subject: str = ""
    message: str = ""
    website: str = ""  # the honeypot: people never see it, robots fill it in


class IntakePage(Controller):
    path = "/intake"

    @get("/", sync_to_thread=False)
    def form(self, state: State) -> Template:
        """The contact form, on our own site."""
        _require_enabled(state.settings)
        return _form_page(state.settings, IntakeFields(), 200)

    @post("/", sync_to_thread=True, status_code=200)
    def submit(
        self,
        request: Request[Any, Any, Any],
        session: NamedDependency[Session],
        state: State,
        data: Annotated[IntakeFields, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any] | Template:
        """Keep the message and mail the confirmation link; 400, 403 or 429 otherwise."""
        settings: Settings = state.settings
        _require_enabled(settings)
        cors = cors_headers(request.headers.get("origin"), settings)
        if cors is None:
            raise Forbidden("This site may not use the contact form.")
        answer = _JsonAnswers(cors) if _wants_json(request) else _PageAnswers(settings, data)
        if data.website.strip():
            return answer.sent()
        domain = settings.mail.domain
        checked = check_form(data.email, data.name, data.subject, data.message, domain)
        if isinstance(checked, str):
            return answer.problem(checked, 400)
        ip = request.client.host if request.client else ""
        tokens = state.intake_tokens
        limited = intake_form.submit(session, state.context, tokens, checked, ip, datetime.now(UTC))
        if limited is not None:
            return answer.problem(limited.reason, 429, {"Retry-After": "3600"})
        return answer.sent()

    @get("/confirm/{token:str}", sync_to_thread=True)
    def ask(
        self, session: NamedDependency[Session], state: State, token: FromPath[str]
    ) -> Template:
        """ "Send your message?", with a button; nothing happens yet."""
        _require_enabled(state.settings)
        submission = intake_form.read_submission(session, state.intake_tokens, token)
        if submission is None:
            return _confirm_page(state.settings, "invalid", 400)
        if submission.confirmed_at is not None:
            return _confirm_page(state.settings, "done", 200)
        details = {"email": submission.email, "subject": submission.subject}
        return _confirm_page(state.settings, "ask", 200, details)

    @post("/confirm/{token:str}", sync_to_thread=True, status_code=200)
    def confirm(
        self, session: NamedDependency[Session], state: State, token: FromPath[str]
    ) -> Template:
        """Open the task as the visitor's mail would; a second time changes nothing."""
        _require_enabled(state.settings)
        submission = intake_form.read_submission(session, state.intake_tokens, token)
        if submission is None:
            return _confirm_page(state.settings, "invalid", 400)
        if submission.confirmed_at is None:
            intake_form.confirm(state.context, submission, datetime.now(UTC))
        return _confirm_page(state.settings, "done", 200)


def cors_headers(origin: str | None, settings: Settings) -> dict[str, str] | None:
    """The CORS headers for a post from ``origin``; ``None``: that origin may not post.

    No ``Origin`` (a program, not a browser page) and our own origin need none.
    """
    headers = {"Vary": "Origin"}
    if origin is None:
        return headers
    origin = origin.strip().lower()
    base = urlsplit(settings.web.base_url)
    if origin == f"{base.scheme}://{base.netloc}".lower():
        return headers
    if origin in settings.intake.allowed_origins:
        return {**headers, "Access-Control-Allow-Origin": origin}
    return None


def _require_enabled(settings: Settings) -> None:
    if not settings.intake.enabled:
        raise NotFound("Not found")


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    return "application/json" in request.headers.get("accept", "")


class _JsonAnswers:
    """What the widget reads: ``{"status": "sent", "message"}`` or ``{"error"}``."""

    def __init__(self, cors: dict[str, str]) -> None:
        self.cors = cors

    def sent(self) -> Response[Any] | Template:
        return Response({"status": "sent", "message": SENT}, headers=self.cors)

    def problem(
        self, reason: str, status: int, headers: dict[str, str] | None = None
    ) -> Response[Any] | Template:
        headers = {**self.cors, **(headers or {})}
        return Response({"error": reason}, status_code=status, headers=headers)


class _PageAnswers:
    """What our own page shows: the form again with the problem, or "check your mail"."""

    def __init__(self, settings: Settings, data: IntakeFields) -> None:
        self.settings, self.data = settings, data

    def sent(self) -> Response[Any] | Template:
        return _form_page(self.settings, IntakeFields(), 200, sent=True)

    def problem(
        self, reason: str, status: int, headers: dict[str, str] | None = None
    ) -> Response[Any] | Template:
        return _form_page(self.settings, self.data, status, problem=reason, headers=headers)


def _form_page(
    settings: Settings,
    data: IntakeFields,
    status: int,
    sent: bool = False,
    problem: str = "",
    headers: dict[str, str] | None = None,
) -> Template:
    context = {
        "team_name": settings.mail.team_name,
        "form": msgspec.structs.asdict(data),
        "sent": sent,
        "problem": problem,
    }
    return Template("intake.html", context=context, status_code=status, headers=headers)


def _confirm_page(
    settings: Settings, state: str, status: int, details: dict[str, str] | None = None
) -> Template:
    context = {"team_name": settings.mail.team_name, "state": state, **(details or {})}
    return Template(
        "intake_confirm.html", context=context, status_code=status, headers=_LINK_PAGE_HEADERS
    )
