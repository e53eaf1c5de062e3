"""The API's own documentation: the OpenAPI schema and the page that reads it.

Only ``/api`` is documented (the pages are for people, not programs: ``app.py`` mounts
them with ``include_in_schema=False``).  The schema declares how a caller authenticates,
a bearer token from ``qmail token create`` or the web session's cookie, and the one error
shape every API error really has, ``{"error": "..."}`` (``app.handle_error``), instead of
Litestar's default validation-error shape, which qmail never sends.

The page at ``/schema`` is Swagger UI, served from ``web/vendor/`` (see its README):
qmail often runs where a browser cannot, or should not, fetch scripts from a CDN.
``/schema/openapi.json`` is the schema itself (CONTRACT.md).
"""

from __future__ import annotations

import msgspec
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme

from qmail import __version__


class ApiError(msgspec.Struct):
    """What every API error answers, with the HTTP status saying which kind it is."""

    error: str


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(ApiError, generate_examples=False, description=description)


ERRORS = {
    400: _error("Bad request: a parameter or the body is not what the operation takes"),
    401: _error("No valid bearer token or session (WWW-Authenticate: Bearer)"),
    403: _error("Signed in, but not allowed (e.g. a client doing what only the team does)"),
    404: _error("No such task, branch or attachment, or one the caller may not see"),
}

BEARER: SecurityRequirement = {"bearer": []}
COOKIE: SecurityRequirement = {"session": []}

DESCRIPTION = """\
qmail's JSON API: the tasks, threads and address book a person may see, as that person.

Authenticate with `Authorization: Bearer <token>` (a token from `qmail token create EMAIL`)
or, from a page of qmail itself, the session cookie (writes then need the page's CSRF
token as the `x-csrftoken` header).  Bodies are JSON (`Content-Type: application/json`).
Every error answers `{"error": "<what went wrong>"}` with its HTTP status.  A task the
caller may not see answers 404, exactly like one that does not exist.
"""


def openapi_config() -> OpenAPIConfig:
    """``/schema`` (Swagger UI) and ``/schema/openapi.json``, for ``/api`` only."""
    vendor = "/static/vendor"
    return OpenAPIConfig(
        title="qmail API",
        version=__version__,
        description=DESCRIPTION,
        path="/schema",
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="A token from `qmail token create EMAIL`, acting as that person.",
                ),
                "session": SecurityScheme(
                    type="apiKey",
                    name="qmail_session",
                    security_scheme_in="cookie",
                    description="The web session of a signed-in person (pages only).",
                ),
            }
        ),
        security=[BEARER, COOKIE],
        render_plugins=[
            SwaggerRenderPlugin(
                path=["/", "/swagger"],
                js_url=f"{vendor}/swagger-ui-bundle.js",
                css_url=f"{vendor}/swagger-ui.css",
                standalone_preset_js_url=f"{vendor}/swagger-ui-standalone-preset.js",
                favicon="<link rel='icon' href='data:,'>",  # none: not even from a CDN
            ),
            JsonRenderPlugin(),
        ],
    )
