"""What every JSON API request passes before its handler runs: the API router's rules.

Issue 7: a page on another port of 127.0.0.1 (the *same site*, so the ``SameSite=Lax``
session cookie rides along) posted a message as the signed-in person with a
``<form enctype="text/plain">`` whose body happened to be JSON.  Two rules close that, once
for the whole API (``api_router``), never per handler:

- a handler that takes a body takes ``Content-Type: application/json`` only (else 415):
  no HTML form can send that type, and a cross-origin ``fetch`` with it needs a CORS
  preflight, which we never grant;
- an unsafe request authenticated by the session cookie carries the CSRF token, checked by
  Litestar's own double-submit middleware; a bearer-token request does not: a browser never
  adds an ``Authorization`` header on its own, and ``provide_current_user`` never falls back
  from a presented token to the cookie.
"""

from __future__ import annotations

import dataclasses

from litestar import Request, Router
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.handlers import BaseRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.types import ControllerRouterHandler, Receive, Scope, Send

from qmail.web.deps import SESSION_COOKIE, bearer_token

JSON = "application/json"


def require_json_body(connection: ASGIConnection, route_handler: BaseRouteHandler) -> None:
    """Refuse a request to a handler with a body unless the body is declared JSON (415).

    A guard, so it runs before the body is read.  Parameters such as ``; charset=utf-8``
    are allowed.
    """
    if route_handler.parsed_data_field is None:
        return
    media_type = connection.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != JSON:
        raise HTTPException(status_code=415, detail=f"the API takes only Content-Type: {JSON}")


class ApiCSRFMiddleware(CSRFMiddleware):
    """Litestar's CSRF check for cookie-authenticated writes to the API.

    Skipped for safe methods (the API sets no cookie: pages hand out the token), for
    requests that present a bearer token, which are judged by that token alone, and for
    requests without a session cookie: nothing ambient to abuse, and authentication
    answers them 401.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and self.exempt(Request(scope)):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def exempt(self, request: Request) -> bool:
        return (
            request.method in self.config.safe_methods
            or bearer_token(request) is not None
            or SESSION_COOKIE not in request.cookies
        )


def api_router(csrf: CSRFConfig, controllers: list[ControllerRouterHandler]) -> Router:
    """Everything under ``/api/``, with the rules above; ``csrf`` is the pages' config."""
    return Router(
        path="/api",
        route_handlers=controllers,
        guards=[require_json_body],
        middleware=[
            DefineMiddleware(ApiCSRFMiddleware, config=dataclasses.replace(csrf, exclude=None))
        ],
    )
