"""The plans of the statements that read the outbox: each must read by an index.

Fills a fresh database (a SQLite file, or ``--database`` PostgreSQL) with ``--rows``
outbox rows (mostly sent, a few hundred pending and failed, 50 tasks of 20 people), runs
``ANALYZE``, then prints the plan of every reader of ``outbox``: delivery's claim,
the thread a notification continues, the rate limits (acknowledgements, sign-in links),
what a reply answers (routing), and the ``qmail outbox list`` / outbox page listings.
Prints plans; asserts nothing.

    .venv/bin/python bench/outbox_plans.py
    .venv/bin/python bench/outbox_plans.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import event, text
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).parent))
from process import fresh_postgres, settings_for

from qmail.access import Reader
from qmail.auth import links
from qmail.context import open_context
from qmail.inbound import facts
from qmail.models import Person
from qmail.outbound import answers, delivery, notifications
from qmail.queries.outbox import list_outbox

NOW = datetime(2026, 1, 1, tzinfo=UTC)
# (SQLite: a recursive count; PostgreSQL: generate_series.)  Every 1000th row pending, every
# 997th failed, the rest sent; about 8 a message, as notifications are.
FILL = """
INSERT INTO outbox (kind, task_id, person_id, recipient, message_id, raw, text, state,
    attempts, next_attempt_at, last_error, created_at)
SELECT CASE WHEN n % 9 = 0 THEN 'ack' ELSE 'notification' END, 1 + n % 50, 1 + n % 20,
    'p' || (n % 20) || '@example.com', 'qmail.' || n || '@example.com', {empty}, '',
    CASE WHEN n % 1000 = 0 THEN 'pending' WHEN n % 997 = 0 THEN 'failed' ELSE 'sent' END,
    1, {when}, '', {when}
FROM {numbers}
"""


def fill(session: Session, rows: int) -> None:
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        numbers = (
            f"(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {rows})"
            " SELECT n FROM c)"
        )
        empty, when = "x''", "'2025-12-31 00:00:00.000000'"
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    else:
        numbers, empty = f"generate_series(1, {rows}) AS n", "''::bytea"
        when = "'2025-12-31 00:00:00+00'::timestamptz"
        connection.exec_driver_sql("SET session_replication_role = replica")  # (no FK checks)
    connection.execute(text(FILL.format(empty=empty, when=when, numbers=numbers)))
    session.commit()
    session.connection().exec_driver_sql("ANALYZE")
    session.commit()


def captured(session: Session, work) -> list[tuple[str, object]]:  # type: ignore[no-untyped-def]
    """The statements ``work(session)`` sends through SQLAlchemy, with their values."""
    sent: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        sent.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        work(session)
    finally:
        event.remove(engine, "before_cursor_execute", record)
        session.rollback()
    return sent


def readers(session: Session) -> dict[str, tuple[str, object]]:
    dialect = session.get_bind().dialect
    prepared = {
        "notify: the thread so far (_EARLIER_IDS)": notifications._EARLIER_IDS._for(dialect).bind(
            {"task_id": 7, "person_ids": [3, 4, 5]}
        ),
        "ack: once a day (_ACKNOWLEDGED)": answers._ACKNOWLEDGED._for(dialect).bind(
            {"recipient": "p3@example.com", "since": NOW - timedelta(days=1)}
        ),
        "route: what a reply answers (_thread_statement)": facts._thread_statement(True, False)
        ._for(dialect)
        .bind({"ids": ["qmail.123@example.com"]}),
        "route: the text we sent (_SENT_TEXTS)": facts._SENT_TEXTS._for(dialect).bind(
            {"ids": ["qmail.123@example.com"]}
        ),
    }
    person = session.get(Person, 1) or Person(id=1, email="p1@example.com", name="")
    through = {
        "delivery: the claim (claim_due)": lambda s: delivery.claim_due(
            s, NOW, timedelta(minutes=5), 50
        ),
        "sign-in: rate limit (login_mails_since)": lambda s: links.login_mails_since(
            s, "p3@example.com", NOW - timedelta(hours=1)
        ),
        "outbox list --state failed": lambda s: list_outbox(s, "failed"),
        "outbox page (list_outbox, reader)": lambda s: list_outbox(
            s, limit=200, reader=Reader(person, is_team=True)
        ),
    }
    for name, work in through.items():
        prepared[name] = captured(session, work)[0]
    return prepared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--database", default="", help="a PostgreSQL URL (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qmail-plans-") as folder:
        database = fresh_postgres(args.database) if args.database else ""
        context = open_context(settings_for(database, Path(folder)))
        with Session(context.engine) as session:
            fill(session, args.rows)
            sqlite = session.get_bind().dialect.name == "sqlite"
            for name, (sql, values) in readers(session).items():
                explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
                plan = session.connection().exec_driver_sql(explain + sql, values).all()  # type: ignore[arg-type]
                print(f"{name}:")
                for row in plan:
                    print("   ", row[-1])
                session.rollback()
        context.engine.dispose()


if __name__ == "__main__":
    main()
