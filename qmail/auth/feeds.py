"""A person's Atom feed link: made, replaced and turned off on ``/settings``.

A feed reader cannot sign in, so the link itself is the credential:
``<base_url>/activity.atom?token=fd_…``, a signed token (``LinkTokens.make_feed``) naming
the person and a random nonce kept in ``Person.feed_nonce``.  A link counts only while its
nonce is the person's current one (compared in constant time): "New link" draws a new
nonce, so the old link stops working at once; "Turn off" clears it.  The database alone
(without the secret key) holds no usable link, and nobody has one until they ask for it.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote

from sqlmodel import Session

from qmail import models
from qmail.auth.signed import LinkTokens

FEED_PATH = "/activity.atom"


def new_feed_link(session: Session, person: models.Person) -> None:
    """Give ``person`` a feed link, replacing any they had (no commit)."""
    person.feed_nonce = secrets.token_urlsafe(16)
    session.add(person)


def stop_feed_link(session: Session, person: models.Person) -> None:
    """Turn ``person``'s feed link off (no commit)."""
    person.feed_nonce = None
    session.add(person)


def feed_token(links: LinkTokens, person: models.Person) -> str | None:
    """The token of ``person``'s current feed link, ``None`` when they have none."""
    if person.id is None or not person.feed_nonce:
        return None
    return links.make_feed(person.id, person.feed_nonce)


def feed_url(base_url: str, token: str, query: str = "") -> str:
    """The absolute feed address for ``token``, with the filters of ``query`` (``?…``)."""
    filters = f"{query[1:]}&" if query.startswith("?") else ""
    return f"{base_url.rstrip('/')}{FEED_PATH}?{filters}token={quote(token)}"


def person_for_feed_token(session: Session, links: LinkTokens, token: str) -> models.Person | None:
    """The person whose current feed link ``token`` is, else ``None`` (forged, replaced,
    turned off)."""
    found = links.read_feed(token)
    if found is None:
        return None
    person_id, nonce = found
    person = session.get(models.Person, person_id)
    if person is None or not person.feed_nonce:
        return None
    if not hmac.compare_digest(person.feed_nonce.encode(), nonce.encode()):
        return None
    return person
