"""The public contact form: ``/intake``, the widget's endpoint, and the confirmation links.

An edge only: the fields are checked by ``qmail.core.intake`` and kept, limited and filed
by ``qmail.inbound.intake_form``.  Everything here answers 404 unless ``intake.enabled``.

``POST /intake`` takes the form from our own page and from the widget (``web/widget.js``)
on the pages of the sites in ``intake.allowed_origins``: the widget posts it
form-encoded with ``Accept: application/json`` (a CORS "simple" request, no preflight)
and reads ``{"status": "sent", "message"}`` or ``{"error"}``; scripts may post JSON too
(from a page, after a preflight ``OPTIONS`` that only allowed sites pass).  A post whose
``Origin`` is neither ours nor allowed is refused with 403; an allowed one is answered
with ``Access-Control-Allow-Origin`` naming it, never ``*``, and never with credentials.
The path is exempt from Litestar's CSRF check (``app.csrf_config``): no session or cookie
is involved, and the widget's site has no token of ours.  A filled-in honeypot field
(``website``) gets the same answer as a real message and nothing is kept or sent.

``GET /intake/confirm/<token>`` only asks (mail scanners fetch links); ``POST`` files the
message, once however often it is sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, HttpMethod, Request, Response, get, post, route
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template
from litestar.utils.sync import sync_to_thread
from sqlmodel import Session

from qmail.config import Settings
from qmail.core.intake import IntakeForm, check_form
from qmail.db import session_scope
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


class IntakePreflight(Controller):
    """CORS preflight for ``POST /intake`` (a page posting JSON asks first).

    Its own controller, registered before ``IntakePage``: Litestar 2 lets the OPTIONS
    handler it generates for a path shadow one registered after that path's other
    handlers (litestar-org/litestar#4788).
    """

    path = "/intake"

    @route("/", http_method=[HttpMethod.OPTIONS], sync_to_thread=False, status_code=204)
    def answer(self, request: Request[Any, Any, Any], state: State) -> Response[None]:
        """CORS preflight (a JSON post from a page): yes only for ``intake.allowed_origins``."""
        _require_enabled(state.settings)
        origin, host = request.headers.get("origin"), request.headers.get("host", "")
        cors = cors_headers(origin, host, state.settings) or {"Vary": "Origin"}
        if "Access-Control-Allow-Origin" in cors:
            cors |= {
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "Content-Type, Accept",
                "Access-Control-Max-Age": "600",
            }
        return Response(None, status_code=204, headers={"Allow": "GET, POST, OPTIONS", **cors})


class IntakePage(Controller):
    path = "/intake"

    @get("/", sync_to_thread=False)
    def form(self, state: State) -> Template:
        """The contact form, on our own site."""
        _require_enabled(state.settings)
        return _form_page(state.settings, IntakeFields(), 200)

    @post("/", status_code=200)
    async def submit(
        self, request: Request[Any, Any, Any], state: State
    ) -> Response[Any] | Template:
        """Keep the message and mail the confirmation link; 400, 403, 415 or 429 otherwise."""
        settings: Settings = state.settings
        _require_enabled(settings)
        cors = cors_headers(
            request.headers.get("origin"), request.headers.get("host", ""), settings
        )
        if cors is None:
            raise Forbidden("This site may not use the contact form.")
        try:
            data = await read_fields(request)
        except Unreadable as error:
            answer = _answers(request, cors, settings, IntakeFields())
            return answer.problem(error.reason, error.status)
        answer = _answers(request, cors, settings, data)
        if data.website.strip():
            return answer.sent()
        domain = settings.mail.domain
        checked = check_form(data.email, data.name, data.subject, data.message, domain)
        if isinstance(checked, str):
            return answer.problem(checked, 400)
        ip = request.client.host if request.client else ""
        limited = await sync_to_thread(_keep, state, checked, ip)
        if limited is not None:
            return answer.problem(limited.reason, 429, {"Retry-After": "3600"})
        return answer.sent()

    @get("/confirm/{token:str}", sync_to_thread=True)
    def ask(
        self, session: NamedDependency[Session], state: State, token: FromPath[str]
    ) -> Template:
        """The question "Send your message?", with a button; nothing happens yet."""
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


def cors_headers(origin: str | None, host: str, settings: Settings) -> dict[str, str] | None:
    """The CORS headers for a post from ``origin``; ``None``: that origin may not post.

    No ``Origin`` (a program, not a browser page) and our own pages need none: ours are
    at ``web.base_url``, or at the host the request names (qmail reached under another
    name than its base URL, say ``localhost``, still takes its own form).
    """
    headers = {"Vary": "Origin"}
    if origin is None:
        return headers
    origin = origin.strip().lower()
    base = urlsplit(settings.web.base_url)
    if origin == f"{base.scheme}://{base.netloc}".lower():
        return headers
    if host and urlsplit(origin).netloc == host.strip().lower():
        return headers
    if origin in settings.intake.allowed_origins:
        return {**headers, "Access-Control-Allow-Origin": origin}
    return None


class Unreadable(Exception):
    """A post that is no form we can read: its HTTP status and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


async def read_fields(request: Request[Any, Any, Any]) -> IntakeFields:
    """The posted fields: form-encoded or multipart (forms, the widget) or JSON (scripts)."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind == "application/json":
        try:
            return msgspec.json.decode(await request.body(), type=IntakeFields)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise Unreadable(400, f"The message could not be read: {error}") from None
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        values = {name: form.get(name) for name in IntakeFields.__struct_fields__}
        return IntakeFields(**{name: v for name, v in values.items() if isinstance(v, str)})
    raise Unreadable(415, "Please post the form as a form or as application/json.")


def _keep(state: State, form: IntakeForm, ip: str) -> intake_form.Limited | None:
    with session_scope(state.engine) as session:
        return intake_form.submit(
            session, state.context, state.intake_tokens, form, ip, datetime.now(UTC)
        )


def _require_enabled(settings: Settings) -> None:
    if not settings.intake.enabled:
        raise NotFound("Not found")


def _answers(
    request: Request[Any, Any, Any], cors: dict[str, str], settings: Settings, data: IntakeFields
) -> _JsonAnswers | _PageAnswers:
    """JSON for scripts (they post JSON or accept it), else our page."""
    accept, kind = request.headers.get("accept", ""), request.headers.get("content-type", "")
    if "application/json" in accept or kind.startswith("application/json"):
        return _JsonAnswers(cors)
    return _PageAnswers(settings, data)


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
