"""The credentials a person manages on ``/settings``: API tokens and their activity feed link.

An edge only: tokens are made, listed and revoked by ``qmail.auth.api_tokens``, feed
links by ``qmail.auth.feeds``.  A person only ever sees and revokes their own tokens:
another person's token id answers 404, as an unknown one does.  A new token is shown
once, on the page that answers the form that made it (there is no other copy of it);
afterwards only its name and dates are listed.  Forms carry Litestar's CSRF token.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlmodel import Session

from qmail import models
from qmail.access import Reader
from qmail.auth import api_tokens, feeds
from qmail.errors import BadRequest, NotFound
from qmail.web.forms import Form, form_value
from qmail.web.settings_page import settings_context


class SettingsTokens(Controller):
    path = "/settings"

    @post("/tokens", sync_to_thread=True, status_code=200)
    def create_token(
        self,
        request: Request[Any, Any, Any],
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        data: Form,
    ) -> Template:
        """Make a token under the form's ``name``; the page shows it this once."""
        name = " ".join(form_value(data, "name").split())
        if not name:
            raise BadRequest("give the token a name, to know later what uses it")
        if len(name) > api_tokens.MAX_NAME:
            raise BadRequest(f"name is longer than {api_tokens.MAX_NAME} characters")
        token = api_tokens.create_api_token(session, _own(session, person), name)
        session.commit()
        context = settings_context(request, session, person, new_token=token, new_name=name)
        return Template("settings.html", context=context)

    @post("/tokens/{token_id:int}/revoke", sync_to_thread=True)
    def revoke_token(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        token_id: FromPath[int],
    ) -> Response[Any]:
        """Revoke one of the person's own tokens: it opens nothing from now on."""
        assert person.id is not None
        if not api_tokens.revoke_api_token(session, person.id, token_id, datetime.now(UTC)):
            raise NotFound(f"no API token {token_id}")
        session.commit()
        return Redirect("/settings#api-tokens", status_code=303)

    @post("/feed", sync_to_thread=True)
    def new_feed_link(
        self, session: NamedDependency[Session], person: NamedDependency[Reader]
    ) -> Response[Any]:
        """Give the person a feed link; one they had stops working."""
        feeds.new_feed_link(session, _own(session, person))
        session.commit()
        return Redirect("/settings#feed", status_code=303)

    @post("/feed/off", sync_to_thread=True)
    def stop_feed_link(
        self, session: NamedDependency[Session], person: NamedDependency[Reader]
    ) -> Response[Any]:
        """Turn the person's feed link off."""
        feeds.stop_feed_link(session, _own(session, person))
        session.commit()
        return Redirect("/settings#feed", status_code=303)


def _own(session: Session, person: Reader) -> models.Person:
    """The signed-in person's row, in this request's session."""
    own = session.get(models.Person, person.id)
    assert own is not None
    return own
