"""Building the web application: routes, dependencies, OpenAPI and error answers.

``create_app(settings, engine)`` is the only way to get an app: nothing is built at import
time, so tests and ``qmail serve`` each make their own with their own settings and database.
Errors are answered in one place, ``handle_error``: handlers only raise ``NotFound``,
``Forbidden``, ``BadRequest`` (or ``Unauthenticated`` from the dependencies).
"""

from __future__ import annotations

import logging

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Litestar, Request, Response, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from sqlalchemy.engine import Engine

from qmail.auth.signed import IntakeTokens, LinkTokens, ReplyTokens
from qmail.config import Settings, secret_key
from qmail.context import Context
from qmail.errors import BadRequest, Forbidden, NotFound
from qmail.people import Team
from qmail.resources import static_dir, templates_dir
from qmail.web.activity_feed import ActivityFeed
from qmail.web.api import AttachmentApi, HealthApi, TaskApi
from qmail.web.api_docs import openapi_config
from qmail.web.api_guards import api_router
from qmail.web.auth import AuthController
from qmail.web.companies_page import CompaniesPage
from qmail.web.contacts import ContactApi
from qmail.web.deps import Unauthenticated, provide_current_user, provide_db_session
from qmail.web.inbox import InboxPage
from qmail.web.intake_page import IntakePage, IntakePreflight
from qmail.web.map_page import PeopleMapPage
from qmail.web.new_task_page import NewTaskPage
from qmail.web.pages import ReaderPages
from qmail.web.settings_page import SettingsPage
from qmail.web.settings_tokens import SettingsTokens
from qmail.web.task_edits import TaskEdits
from qmail.web.task_page import TaskPage, replies_controller
from qmail.web.unsubscribe import UnsubscribeController
from qmail.web.webhooks_api import WebhookApi
from qmail.web.webhooks_page import WebhooksPage

log = logging.getLogger(__name__)

_STATUS = {NotFound: 404, Forbidden: 403, BadRequest: 400, Unauthenticated: 401}


def create_app(settings: Settings, engine: Engine) -> Litestar:
    """The web app for these settings and this database."""
    key = secret_key(settings)
    links = LinkTokens(key, settings.security.magic_link_ttl)
    csrf = csrf_config(settings, key)
    return Litestar(
        route_handlers=[
            Router(  # for people, not programs: not in the API's schema
                path="/",
                include_in_schema=False,
                route_handlers=[
                    AuthController,
                    InboxPage,
                    NewTaskPage,
                    TaskPage,
                    replies_controller(settings.smtp.max_message_size),
                    TaskEdits,
                    ReaderPages,
                    ActivityFeed,
                    CompaniesPage,
                    PeopleMapPage,
                    UnsubscribeController,
                    SettingsPage,
                    SettingsTokens,
                    IntakePreflight,  # before IntakePage: see its docstring
                    IntakePage,
                    WebhooksPage,
                    create_static_files_router(path="/static", directories=[static_dir()]),
                ],
            ),
            api_router(csrf, [HealthApi, TaskApi, AttachmentApi, ContactApi, WebhookApi]),
        ],
        template_config=TemplateConfig(
            instance=JinjaTemplateEngine.from_environment(page_environment())
        ),
        dependencies={
            "session": Provide(provide_db_session),
            "person": Provide(provide_current_user, sync_to_thread=True),
        },
        exception_handlers={Exception: handle_error},
        csrf_config=csrf,
        openapi_config=openapi_config(),
        state=State(
            {
                "settings": settings,
                "engine": engine,
                "links": links,
                "team": Team.of(settings),
                "intake_tokens": IntakeTokens(key, settings.intake.confirm_ttl),
                # what posting from the web needs to notify by mail, as ingest does
                "context": Context(engine, settings, ReplyTokens(key), links),
            }
        ),
        # Logging is the process's business (the CLI sets it up), not the app's: Litestar's
        # default would reconfigure the root logger each time an app is built.
        logging_config=None,
    )


def csrf_config(settings: Settings, key: str) -> CSRFConfig:
    """CSRF tokens on every form (double-submit cookie ``qmail_csrf``).

    ``SameSite=Lax`` is not enough: another port of the same host is the same site, so the
    session cookie rides along on its POSTs.  Pages embed the token in their forms and in
    ``<meta name="csrf-token">`` (for scripts, as the ``x-csrftoken`` header: the cookie is
    HttpOnly).  ``/api/`` is checked by the API router instead (``api_guards``): the same
    token for writes signed in by the cookie, none for bearer-token clients.
    """
    return CSRFConfig(
        secret=key,
        cookie_name="qmail_csrf",
        cookie_httponly=True,
        cookie_samesite="lax",
        cookie_secure=settings.web.base_url.startswith("https://"),
        exclude=[
            "^/api/",  # checked by the API router: api_guards.ApiCSRFMiddleware
            # RFC 8058: mail programs POST one-click unsubscribes with no cookie or token;
            # the signed link itself is the authorization there.
            "^/unsubscribe/",
            # The public contact form's endpoint: posted by the widget on other sites,
            # which hold no token of ours; no session or cookie is involved.  The
            # confirmation page's form keeps its token.
            "^/intake$",
        ],
    )


def page_environment() -> Environment:
    """Jinja2 for pages: autoescaped always, so no text from mail is ever markup.

    Templates are part of the release: each is compiled once per process and never looked
    at on disk again (no ``stat`` of every template a page extends, on every request).
    """
    return Environment(
        loader=FileSystemLoader(templates_dir() / "pages"),
        autoescape=True,
        undefined=StrictUndefined,
        auto_reload=False,
    )


def error_status(error: Exception) -> tuple[int, str]:
    """The HTTP status and the message shown to the client for ``error``."""
    for cls, status in _STATUS.items():
        if isinstance(error, cls):
            return status, str(error) or cls.__name__
    if isinstance(error, HTTPException):  # Litestar's own: unknown route, bad parameter…
        return error.status_code, error.detail + _what_failed(error)
    log.exception("unexpected error", exc_info=error)
    return 500, "internal error"  # never leak a traceback or SQL to the client


def _what_failed(error: HTTPException) -> str:
    """What a validation error found, after its detail: ``"…: Expected `str` (to)"``.

    Litestar keeps it in ``extra`` (a list of ``{"message", "key", "source"}``), which the
    one error shape, ``{"error": ...}``, would otherwise lose.
    """
    if not isinstance(error, ValidationException) or not isinstance(error.extra, list):
        return ""
    found = []
    for item in error.extra[:3]:
        if isinstance(item, dict) and item.get("message"):
            where = f" ({item['key']})" if item.get("key") else ""
            found.append(f"{item['message']}{where}")
    return f": {'; '.join(found)}" if found else ""


def handle_error(request: Request, error: Exception) -> Response[object]:
    """The one exception handler: JSON ``{"error": ...}`` for the API."""
    status, message = error_status(error)
    if status == 401 and not request.url.path.startswith("/api/"):
        return Redirect("/login", status_code=303)  # a page: go and sign in
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if isinstance(error, HTTPException) and error.headers:
        headers = {**error.headers, **headers}
    if request.url.path.startswith("/api/"):
        return Response({"error": message}, status_code=status, headers=headers)
    return Template(  # type: ignore[return-value]
        "error.html",
        context={
            "status": status,
            "title": _TITLES.get(status, "Something went wrong"),
            "message": message,
        },
        status_code=status,
        headers=headers,
    )


_TITLES = {400: "Bad request", 401: "Please sign in", 403: "Not allowed", 404: "Not found"}
