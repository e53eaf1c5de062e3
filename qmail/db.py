"""The database edge: engines, sessions and the schema's migrations.

SQLite (the default) runs in WAL mode with a busy timeout so the SMTP server, the web app
and the worker can share one file; PostgreSQL needs nothing special.  ``migrate()`` brings
any database to the newest schema through Alembic and is safe to run again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlmodel import Session, create_engine

from qmail.config import Settings
from qmail.errors import ConfigError

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


def database_url(settings: Settings) -> str:
    """The configured URL, with a relative SQLite path resolved against the config folder."""
    try:
        url = make_url(settings.database.url)
    except ArgumentError:
        raise ConfigError(
            f"database.url is not a database URL: {settings.database.url!r}"
        ) from None
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = settings.path(url.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        url = url.set(database=str(path))
    return url.render_as_string(hide_password=False)


def create_db_engine(settings: Settings) -> Engine:
    """An engine for the configured database (SQLite gets WAL, foreign keys, busy timeout)."""
    url = database_url(settings)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _sqlite_pragmas(connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def like_escaped(text: str) -> str:
    r"""``text`` for a LIKE pattern with ``escape="\"``: ``%``, ``_`` and ``\`` taken literally.

    >>> print(like_escaped("50%_off\\"))
    50\%\_off\\
    """
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere (use with ``escape="\\"``)."""
    return f"%{like_escaped(text)}%"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# The full-text search objects of migration 0007, which qmail/models.py does not describe
# (they differ between SQLite and PostgreSQL): FTS5 tables with their shadow tables, and
# PostgreSQL's generated tsvector columns and their indexes.
SEARCH_TABLES = ("message_fts", "task_fts")
SEARCH_OBJECTS = {("column", "search"), ("index", "ix_message_search"), ("index", "ix_task_search")}


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's filter for comparing the database with the models: all but search objects."""
    if type_ == "table" and name and name.startswith(SEARCH_TABLES):
        return False
    return (type_, name) not in SEARCH_OBJECTS


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision (idempotent)."""
    command.upgrade(alembic_config(engine), "head")
    log.info("database schema is up to date")
