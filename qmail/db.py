"""The database edge: engines, sessions and the schema's migrations.

SQLite (the default) runs in WAL mode with a busy timeout so the SMTP server, the web app
and the worker can share one file, and with ``synchronous=FULL``: a commit is on the disk
before it returns, so the ``250`` that follows it survives a power cut, not only a crash
(the spool commits many mails at once, so this costs one sync per batch).  PostgreSQL
needs nothing special.  ``migrate()`` brings
any database to the newest schema through Alembic and is safe to run again.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, inspect, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import configure_mappers, make_transient_to_detached
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
    cursor.execute("PRAGMA synchronous=FULL")
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


class WriteTurns:
    """Whose turn it is to write, among the threads of one process: the spool goes first.

    SQLite has one writer at a time and lets waiters poll for the lock, so a worker that
    starts its next batch the moment it committed the last can keep the SMTP server's
    commit (and the 250s waiting on it) waiting for seconds.  So the spool marks itself
    ``urgent`` while it writes, and the worker waits for that before each batch.
    (Processes on PostgreSQL lock rows, not the database: there it costs nothing.)
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._urgent = 0

    @contextmanager
    def urgent(self) -> Iterator[None]:
        with self._changed:
            self._urgent += 1
        try:
            yield
        finally:
            with self._changed:
                self._urgent -= 1
                self._changed.notify_all()

    def after_urgent(self, timeout: float = 5.0) -> None:
        """Wait until no urgent write is waiting or under way (``timeout`` at most)."""
        with self._changed:
            self._changed.wait_for(lambda: self._urgent == 0, timeout)


def insert_or_skip(session: Session, model: Any, *keys: str) -> Any:
    """``INSERT … ON CONFLICT (keys) DO NOTHING`` into ``model``'s table, in Core; execute
    it with the values as parameters.

    Both databases have it (SQLite since 3.24), so a row that may exist already is
    written in one statement, without reading it first.  One statement object per table
    and database, so SQLAlchemy builds and compiles it once (see ``WRITES``).
    """
    return _insert_or_skip(session.get_bind().dialect.name, model, keys)


@functools.cache
def _insert_or_skip(dialect: str, model: Any, keys: tuple[str, ...]) -> Any:
    table = model.__table__
    insert = postgresql_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    return insert.on_conflict_do_nothing(index_elements=list(keys))


class Prepared:
    """A Core statement compiled once for each database and run on the driver's cursor.

    For the statements filing runs for every mail: SQLAlchemy's own work for each
    execution (about 80 µs on the workplace machine, four times the driver's) is skipped.
    The values are converted as SQLAlchemy converts them (each bound parameter's type's
    processor, e.g. dates on SQLite), and ``IN`` lists (of numbers or text) are expanded
    as SQLAlchemy expands them; but rows come back as the driver gives them, so only
    statements whose columns are numbers, text or bytes may be prepared (a boolean is 0
    or 1 on SQLite).  An insert names the ``columns`` its rows give, all of them (a
    missing value is an error, not a default).  Runs in the session's
    transaction, on its connection; SQLAlchemy's events do not see it.
    """

    def __init__(self, statement: Any, columns: tuple[str, ...] = ()) -> None:
        self.statement = statement
        self.columns = columns
        self._compiled: dict[str, _Compiled] = {}

    def run(self, session: Session, values: dict[str, Any] | None = None) -> Any:
        """Execute with ``values``; the driver's cursor, to fetch from."""
        connection = session.connection()
        sql, parameters = self._for(connection.dialect).bind(values or {})
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, parameters)
        except connection.dialect.loaded_dbapi.Error as error:
            cursor.close()
            raise _wrapped(connection.dialect, sql, parameters, error) from error
        return cursor

    def read(self, session: Session, values: dict[str, Any] | None = None) -> list[Any]:
        """The rows of a ``select`` for ``values``, each value converted as SQLAlchemy
        converts it (each column's type's result processor: dates and booleans on SQLite)."""
        cursor = self.run(session, values)
        rows = cursor.fetchall()
        cursor.close()
        processors = self._for(session.get_bind().dialect).results
        if not any(processors):
            return rows
        return [
            tuple(
                value if f is None else f(value) for f, value in zip(processors, row, strict=True)
            )
            for row in rows
        ]

    def run_many(self, session: Session, rows: list[dict[str, Any]]) -> None:
        """Execute once for each of ``rows`` (an ``executemany``; no ``IN`` lists)."""
        connection = session.connection()
        compiled = self._for(connection.dialect)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        parameters = [compiled.bind(row)[1] for row in rows]
        try:
            cursor.executemany(compiled.sql, parameters)
        except connection.dialect.loaded_dbapi.Error as error:
            raise _wrapped(connection.dialect, compiled.sql, parameters, error) from error
        finally:
            cursor.close()

    def _for(self, dialect: Any) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(
                dialect=dialect, column_keys=list(self.columns) or None
            )
            found = self._compiled[dialect.name] = _Compiled(compiled, dialect)
        return found


def _wrapped(dialect: Any, sql: str, parameters: Any, error: Exception) -> BaseException:
    """The driver's error as SQLAlchemy raises it (``IntegrityError``, ``OperationalError``…),
    so that callers tell a race or a busy database from a bug as they do for statements
    SQLAlchemy runs."""
    return DBAPIError.instance(
        sql, parameters, error, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
    )


def insert_row(session: Session, statement: Prepared, model: Any, values: dict[str, Any]) -> Any:
    """Write a new row of ``model`` with ``statement``, an insert of ``values`` (its
    ``statement.columns``) returning what the database makes (the id, computed columns),
    and give the object for it, held by the session as the ORM holds what it inserted
    (``attach``), without the unit of work: no flush, and nothing reads the row back.
    Every column is either given or returned."""
    cursor = statement.run(session, values)
    written = cursor.fetchone()
    names = [column[0] for column in cursor.description]
    cursor.close()
    return attach(session, built(model, {**values, **dict(zip(names, written, strict=True))}))


def built(model: Any, values: dict[str, Any]) -> Any:
    """An object of ``model`` with these values for all of its columns, made as the ORM
    makes the objects it loads: without ``__init__`` and its attribute events (a quarter
    of a filed mail's reading of its sender)."""
    fields = _fields(model)
    if values.keys() != fields:
        raise ValueError(f"{model.__name__}: {sorted(fields ^ values.keys())} given or missing")
    row = inspect(model).class_manager.new_instance()
    row.__dict__.update(values)
    return row


@functools.cache
def _fields(model: Any) -> frozenset[str]:
    configure_mappers()  # (as the ORM's first query or object would: none may have come yet)
    return frozenset(column.key for column in model.__table__.columns)


def attach(session: Session, row: Any) -> Any:
    """Hold ``row``, built from values the database has (its primary key included), in the
    session as if loaded: ``session.get`` finds it, a change to it is an ``UPDATE`` at the
    next flush, and it is never inserted.

    Every column must be set (a SQLModel object has them all, defaults included): one left
    unset would be read from the database when first used.  A savepoint rolled back does
    not take it out of the session (as it does an object the ORM inserted): the caller
    expunges it (see ``pipeline.process_pending``).
    """
    make_transient_to_detached(row)
    session.add(row)
    return row


def held(session: Session, model: Any, values: dict[str, Any]) -> Any:
    """The session's object for the row of ``model`` with these column values (all of
    them, read in Core with ``Prepared.read``): the one it holds already, as the ORM would
    give it (not overwritten), else one built from them and held (``attach``)."""
    key = session.identity_key(model, (values["id"],))  # type: ignore[no-untyped-call]
    found = session.identity_map.get(key)
    return found if found is not None else attach(session, built(model, values))


class _Compiled:
    """A statement compiled for one database, with its parameters' processors."""

    def __init__(self, compiled: Any, dialect: Any) -> None:
        self.compiled = compiled
        self.sql = str(compiled)
        self.order = tuple(compiled.positiontup) if compiled.positional else None
        # What ``construct_params`` would do, worked out once: the values the statement
        # holds, the names the caller's values go to, and how each value is converted.
        self.fixed: dict[str, Any] = {}
        self.given: list[tuple[str, str]] = []
        self.processors: dict[str, Any] = {}
        expanding = []
        for bind, name in compiled.bind_names.items():
            if bind.expanding:
                expanding.append(bind)
                continue
            if bind.required:
                self.given.append((name, bind.key))
            else:
                self.fixed[name] = bind.effective_value
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = _LastOne(processor)
        self.expands = any(bind.required for bind in expanding)
        selected = getattr(compiled.statement, "selected_columns", ())
        self.results = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in selected
        ]
        if expanding and not self.expands:  # lists the statement holds: expanded once
            state = compiled.construct_expanded_state({key: None for _, key in self.given})
            given = {name for name, _ in self.given}
            self.sql = state.statement
            self.order = None if state.positiontup is None else tuple(state.positiontup)
            for name, value in state.parameters.items():
                if name not in given and name not in self.fixed:
                    processor = state.processors.get(name)
                    self.fixed[name] = processor(value) if processor else value

    def bind(self, values: dict[str, Any]) -> tuple[str, Any]:
        """The SQL and the driver's parameters for ``values``."""
        if self.expands:  # the statement's text depends on the lengths of its lists
            state = self.compiled.construct_expanded_state(values)
            parameters = dict(state.parameters)
            for name, processor in {**self.processors, **state.processors}.items():
                if name in parameters:
                    parameters[name] = processor(parameters[name])
            if state.positiontup is None:
                return state.statement, parameters
            return state.statement, tuple(parameters[name] for name in state.positiontup)
        parameters = dict(self.fixed)
        for name, key in self.given:
            parameters[name] = values[key]  # (a missing value: KeyError)
        for name, processor in self.processors.items():
            parameters[name] = processor(parameters[name])
        if self.order is None:
            return self.sql, parameters
        return self.sql, tuple(parameters[name] for name in self.order)


class _LastOne:
    """A parameter's processor that keeps its last value's conversion: the rows of a batch
    bind the same time (the batch's ``now``) again and again, and SQLAlchemy's date
    processor on SQLite formats it anew each time.  Values are immutable (a ``datetime``,
    a ``bool``), compared by identity; the pair is replaced whole, so threads may share it."""

    __slots__ = ("last", "processor")

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.last: tuple[Any, Any] = (_NOTHING, None)

    def __call__(self, value: Any) -> Any:
        seen, converted = self.last
        if value is seen:
            return converted
        converted = self.processor(value)
        self.last = (value, converted)
        return converted


_NOTHING = object()


def prepared_insert_or_skip(
    session: Session,
    model: Any,
    keys: tuple[str, ...],
    others: tuple[str, ...],
    returning: str | None = None,
) -> Prepared:
    """``insert_or_skip`` as a ``Prepared`` statement: every row gives the ``keys`` and
    the ``others`` columns; ``returning``: a column the written row returns (no row: none
    was written)."""
    dialect = session.get_bind().dialect.name
    return _prepared_insert_or_skip(dialect, model, keys, others, returning)


@functools.cache
def _prepared_insert_or_skip(
    dialect: str,
    model: Any,
    keys: tuple[str, ...],
    others: tuple[str, ...],
    returning: str | None,
) -> Prepared:
    statement = _insert_or_skip(dialect, model, keys)
    if returning is not None:
        statement = statement.returning(model.__table__.c[returning])
    return Prepared(statement, keys + others)


@contextmanager
def commit_unsynced(session: Session) -> Iterator[None]:
    """Write in the block, then commit without waiting for the disk: for what a power cut
    may lose harmlessly, such as the mark of what someone has read, written when a page
    is merely viewed.

    SQLite (WAL) then syncs at its next checkpoint instead of at this commit (``PRAGMA
    synchronous=NORMAL`` around the block, ``FULL`` again after it, as ``_sqlite_pragmas``
    sets it for every other commit; the level cannot change inside a transaction, so
    one already open keeps it).  A sync per page view cost 8 ms (p90 14 ms) at 1 M
    messages, holding the one write lock meanwhile.  PostgreSQL: ``synchronous_commit``
    off for this transaction.  Either way the commit stays atomic and consistent.
    """
    if not is_sqlite(session):
        try:
            yield
            session.execute(text("SET LOCAL synchronous_commit = off"))
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return
    raw = session.connection().connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    lowered = not raw.in_transaction
    if lowered:
        raw.execute("PRAGMA synchronous=NORMAL")
    # Committed, and the level set back, while the session still holds the connection:
    # once released to the pool, another thread may take it (or the pool close it).
    try:
        yield
        session.flush()
        raw.commit()
    except BaseException:
        if raw.in_transaction:
            raw.rollback()
        if lowered:
            raw.execute("PRAGMA synchronous=FULL")
        session.rollback()
        raise
    if lowered:
        raw.execute("PRAGMA synchronous=FULL")
    session.commit()  # the session's own bookkeeping: nothing is left to write


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def write_blob(session: Session, table: str, column: str, row_id: int, content: bytes) -> None:
    """Write ``content`` into the ``zeroblob`` of its size that SQLite holds at that row.

    SQLite's incremental blob I/O writes through its page cache: the file is not copied
    into a bound parameter and then into a record, as an INSERT with the bytes would.
    """
    connection = session.connection().connection.driver_connection
    assert isinstance(connection, sqlite3.Connection)
    with connection.blobopen(table, column, row_id) as blob:
        blob.write(content)


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


# The full-text search objects of migration 0008, which qmail/models.py does not describe
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
