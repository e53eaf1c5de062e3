"""Fixtures shared by every test: mail fixtures, settings, a store, ports and waiting.

Each test gets its own database: a fresh SQLite file under ``tmp_path``, or, when
``QMAIL_TEST_DATABASE_URL`` names a PostgreSQL database, a fresh schema in it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

from qmail.auth.signed import LinkTokens, ReplyTokens
from qmail.config import Settings, load
from qmail.context import Context
from qmail.db import create_db_engine, migrate

MAIL_DIR = Path(__file__).parent / "mail"
TEST_DATABASE_URL = os.environ.get("QMAIL_TEST_DATABASE_URL", "")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SECRET = "test-secret-key-not-for-production"

# Generated-input tests: 150 cases per run in the suite; HYPOTHESIS_PROFILE=deep for a long
# hunt (thousands of cases) before a release or after changing the parser.
hypothesis_settings.register_profile("suite", max_examples=150)
hypothesis_settings.register_profile("deep", max_examples=3000)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


def eml_bytes(name: str) -> bytes:
    """The raw bytes of ``tests/mail/<name>.eml``."""
    return (MAIL_DIR / f"{name}.eml").read_bytes()


def expected(name: str) -> dict:
    """The golden ``tests/mail/<name>.expected.json`` of a fixture."""
    return json.loads((MAIL_DIR / f"{name}.expected.json").read_text(encoding="utf-8"))


@pytest.fixture
def eml():
    """``eml(name)`` -> raw bytes of a mail fixture."""
    return eml_bytes


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except Exception:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {check}")
        time.sleep(interval)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test."""
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path}/qmail.db"
        return
    with scratch_schema(TEST_DATABASE_URL) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for one test: its own database and folder; the team is at example.com."""
    settings = load(
        env={
            "QMAIL_DATABASE__URL": database_url,
            "QMAIL_MAIL__DOMAIN": "example.com",
            "QMAIL_MAIL__TEAM_DOMAINS": "example.com",
            "QMAIL_SECURITY__SECRET_KEY": SECRET,
        }
    )
    return dataclasses.replace(settings, root=str(tmp_path))


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database file migrated once per run, copied for each test that needs one:
    Alembic's upgrade costs about 0.3 s however little it has to do."""
    path = tmp_path_factory.mktemp("template") / "qmail.db"
    engine = create_db_engine(load(env={"QMAIL_DATABASE__URL": f"sqlite:///{path}"}))
    migrate(engine)
    engine.dispose()  # the last connection folds the WAL into the file
    return path


Statement = tuple[str, Any]


@pytest.fixture(scope="session")
def migration_statements() -> list[Statement]:
    """What Alembic sends PostgreSQL to build the schema, recorded once per run in a scratch
    schema, to be sent again into each test's own schema: the same schema for a tenth of the
    cost (``test_store.py`` checks that the two are the same)."""
    return recorded_migration(TEST_DATABASE_URL)


def recorded_migration(url: str) -> list[Statement]:
    """Migrate a scratch schema of the PostgreSQL database at ``url``, recording every
    statement (with its parameters) that reaches the database."""
    statements: list[Statement] = []
    with scratch_schema(url) as schema_url:
        engine = create_db_engine(load(env={"QMAIL_DATABASE__URL": schema_url}))

        @event.listens_for(engine, "before_cursor_execute")
        def record(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
            statements.append((statement, dict(parameters) if parameters else None))

        migrate(engine)
        engine.dispose()
    return statements


def replay(engine: Engine, statements: list[Statement]) -> None:
    """Send recorded statements to ``engine``'s database, in one transaction."""
    with engine.begin() as connection:
        for statement, parameters in statements:
            connection.exec_driver_sql(statement, parameters)


@contextmanager
def scratch_schema(url: str) -> Iterator[str]:
    """A new empty schema in the PostgreSQL database at ``url``, dropped afterwards; yields
    the URL that makes it the connection's search path."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def store(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Context]:
    """A migrated database and what the pipeline needs around it."""
    engine = create_db_engine(settings)
    target = engine.url.database if engine.dialect.name == "sqlite" else None
    if engine.dialect.name == "postgresql":
        replay(engine, request.getfixturevalue("migration_statements"))
    elif target and not Path(target).exists():
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), target)
    else:
        migrate(engine)
    links = LinkTokens(SECRET, settings.security.magic_link_ttl)
    yield Context(engine, settings, ReplyTokens(SECRET), links)
    engine.dispose()
