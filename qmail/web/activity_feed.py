"""The activity stream as an Atom feed: ``/activity.atom?token=…`` plus the page's filters.

A feed reader cannot sign in, so the person's feed link is the credential
(``qmail.auth.feeds``): a link that is forged, replaced or turned off answers 404, and no
cookie or bearer token is looked at.  What the feed holds is exactly what ``/activity``
shows that person with the same filters: the same permission-checked query
(``queries.events.activity``), so a client's feed never holds tags nor a hidden branch.
Entries are text only (titles and message excerpts, never mail HTML), with ``tag:`` ids
that never change and absolute links to ``web.base_url`` (``core.atom``).  The access
log never shows a feed link's token (``HideFeedTokens``).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from sqlmodel import Session

from qmail.access import reader_of
from qmail.auth.feeds import FEED_PATH, feed_url, person_for_feed_token
from qmail.core.atom import AtomEntry, AtomFeed, render_feed, tag_uri
from qmail.errors import NotFound
from qmail.queries.activity_filters import ActivityFilters
from qmail.queries.events import EventLine, activity, message_excerpts

ATOM_TYPE = "application/atom+xml; charset=utf-8"
_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s]+")
TAG_YEAR = 2026  # the date part of every id's tag: URI; changing it would change every id


class ActivityFeed(Controller):
    @get(FEED_PATH, sync_to_thread=True)
    def feed(
        self,
        request: Request[Any, Any, Any],
        session: NamedDependency[Session],
        state: State,
        token: Annotated[str, QueryParameter(max_length=300)] = "",
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Response[bytes]:
        """The events the feed link's owner may see, filtered, newest first, as Atom."""
        person = person_for_feed_token(session, state.links, token)
        if person is None:
            raise NotFound("this feed link is not valid: it was replaced or turned off")
        reader = reader_of(person, state.team)
        filters = ActivityFilters.read(request.query_params, reader)
        lines, following = activity(session, reader, cursor, filters)
        excerpts = message_excerpts(session, reader, lines)
        base_url, domain = state.settings.web.base_url.rstrip("/"), state.settings.mail.domain
        here = feed_url(base_url, token, filters.query())
        atom = AtomFeed(
            id=tag_uri(domain, TAG_YEAR, f"activity/{person.id}{filters.query()}"),
            title="Activity" + "".join(f" · {name} {value}" for name, value in filters.items()),
            updated=lines[0].created_at if lines else datetime.now(UTC),
            self_link=here + (f"&cursor={cursor}" if cursor else ""),
            alternate_link=base_url + filters.link(),
            next_link=f"{here}&cursor={following}" if following else None,
            entries=tuple(_entry(line, base_url, domain, excerpts) for line in lines),
        )
        return Response(render_feed(atom), media_type=ATOM_TYPE)


def _entry(line: EventLine, base_url: str, domain: str, excerpts: dict[int, str]) -> AtomEntry:
    """One event as an entry: who did what on which task; a message's first words."""
    task = f"#{line.number} {line.title}"
    said = f"{line.who} {line.text}"
    anchor = f"#message-{line.message_id}" if line.message_id else ""
    content = excerpts.get(line.message_id, "") if line.message_id else ""
    return AtomEntry(
        id=tag_uri(domain, TAG_YEAR, f"event/{line.event_id}"),
        title=f"{said} · {task}" + (" (team only)" if line.hidden else ""),
        updated=line.created_at,
        link=f"{base_url}/tasks/{line.number}{anchor}",
        author=line.who,
        content=content or f"{said} on {task}.",
    )


class HideFeedTokens(logging.Filter):
    """Blanks ``token=…`` in access-log lines: a feed link is a lasting credential, and
    uvicorn's access log writes every request's path with its query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(r"\1…", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True
