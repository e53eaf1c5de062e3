"""The services every stage needs, built once per process: the database, the settings and
the signing keys.  ``qmail serve`` and each role, the CLI and the tests make one with
``open_context`` and pass it down; nothing keeps it in a global."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from qmail.auth.signed import LinkTokens, ReplyTokens
from qmail.config import Settings, secret_key
from qmail.db import WriteTurns, create_db_engine, migrate


@dataclass(frozen=True)
class Context:
    """What the pipeline needs from the outside world: the database and the settings."""

    engine: Engine
    settings: Settings
    tokens: ReplyTokens
    links: LinkTokens
    turns: WriteTurns = field(default_factory=WriteTurns, compare=False)


def open_context(settings: Settings, create: bool = True) -> Context:
    """The database (created or migrated when ``create``) and the signing keys."""
    engine = create_db_engine(settings)
    if create:
        migrate(engine)
    key = secret_key(settings)
    links = LinkTokens(key, settings.security.magic_link_ttl)
    return Context(engine, settings, ReplyTokens(key), links)


@contextmanager
def opened_context(settings: Settings, create: bool = True) -> Iterator[Context]:
    """``open_context()`` for one command: the connections are closed at the end."""
    context = open_context(settings, create)
    try:
        yield context
    finally:
        context.engine.dispose()
