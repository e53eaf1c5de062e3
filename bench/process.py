"""Processing throughput: kept mail filed by the worker (parse, route, trim, store, notify).

Keeps ``--count`` mails as the SMTP server would (the ``tests/mail`` corpus, each with a
fresh Message-ID, half of them answering an earlier one by In-Reply-To), with a team of
``--team`` people who are told of every new task, then times the worker filing the
backlog: ``--workers`` processes running ``roles.file_pending`` (several make sense on
PostgreSQL; SQLite has one writer).  Prints mails per second, the SQL statements per mail
and what became of the mails; ``--profile`` prints where one worker's time goes.
Prints figures; asserts nothing.

    .venv/bin/python bench/process.py --count 2000
    .venv/bin/python bench/process.py --count 2000 --workers 3 \\
        --database postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import multiprocessing
import os
import pstats
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, event, func, inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

sys.path.insert(0, str(Path(__file__).parent))
from ingest import fixtures

from qmail import models, roles
from qmail.config import Settings, load
from qmail.context import Context, open_context
from qmail.core.mail import Address
from qmail.db import session_scope
from qmail.inbound import store
from qmail.people import get_person

BENCH_DATABASE = "qmail_bench"


def settings_for(database: str, folder: Path) -> Settings:
    settings = load(
        env={
            "QMAIL_DATABASE__URL": database or f"sqlite:///{folder}/bench.db",
            "QMAIL_MAIL__DOMAIN": "example.com",
            "QMAIL_MAIL__TEAM_DOMAINS": "example.com",
            "QMAIL_SECURITY__SECRET_KEY": "bench",
        }
    )
    return dataclasses.replace(settings, root=str(folder))


def fresh_postgres(url: str) -> str:
    """A database of its own for the run, so that the test suite's is left alone."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {BENCH_DATABASE}"))
    admin.dispose()
    return make_url(url).set(database=BENCH_DATABASE).render_as_string(hide_password=False)


def corpus(count: int) -> list[bytes]:
    """``count`` mails: new tasks, and every other one answering the one before it."""
    mails = []
    raws = fixtures()
    for n in range(count):
        raw = re.sub(
            rb"(?im)^(message-id|in-reply-to|references):.*\r?\n(?:[ \t].*\r?\n)*",
            b"",
            raws[n % len(raws)],
        )
        headers = f"Message-ID: <bench-{n}@bench.invalid>\r\n"
        if n % 2:
            headers += f"In-Reply-To: <bench-{n - 1}@bench.invalid>\r\n"
        mails.append(headers.encode() + raw)
    return mails


def prepare(settings: Settings, count: int, team: int) -> None:
    context = open_context(settings)
    now = datetime.now(UTC)
    with session_scope(context.engine) as session:
        for n in range(team):
            get_person(session, Address(f"member{n}@example.com", f"Member {n}"), now)
        kept = [
            store.Spooled(
                raw, f"bench-{n}@bench.invalid", "bench@acme.test", ("tasks@example.com",), now
            )
            for n, raw in enumerate(corpus(count))
        ]
        store.save_raws(session, kept)
    context.engine.dispose()


def file_all(context: Context) -> int:
    """``roles.file_pending``; before issue 10 (for a profile of the old code, run with
    PYTHONPATH at an older checkout) the sweep of pending mail did the same, a mail per
    transaction."""
    if hasattr(roles, "file_pending"):
        return int(roles.file_pending(context))
    later = datetime.now(UTC) + timedelta(hours=1)  # the old sweep took mail 2 minutes old
    return int(roles.sweep_pending(context, later))


def work(settings: Settings) -> int:
    context = open_context(settings, create=False)
    try:
        return file_all(context)
    finally:
        context.engine.dispose()


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the ``--code`` or ``--workers``
    processes): on a shared machine it tells the cost of a mail better than the clock."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--team", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--database", default="", help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--profile", action="store_true", help="profile one in-process worker")
    parser.add_argument(
        "--code", default="", help="file with the qmail package of this folder (an old checkout)"
    )
    parser.add_argument("--file-only", default="", help=argparse.SUPPRESS)  # (for --code)
    args = parser.parse_args()
    if args.file_only:
        settings = settings_for(args.file_only, Path(tempfile.mkdtemp()))
        print(work(settings))
        return

    with tempfile.TemporaryDirectory(prefix="qmail-process-") as folder:
        run(args, Path(folder))


def run(args: argparse.Namespace, folder: Path) -> None:
    """Keep the mails in a fresh database (a SQLite file in ``folder``), file them, and
    print the figures."""
    database = fresh_postgres(args.database) if args.database else ""
    settings = settings_for(database, folder)
    prepare(settings, args.count, args.team)

    statements = 0
    start = time.perf_counter()
    cpu_start = cpu_seconds()
    if args.code:  # another checkout's worker, in a process of its own
        url = database or f"sqlite:///{folder}/bench.db"
        command = [sys.executable, __file__, "--file-only", url]
        subprocess.run(command, env={**os.environ, "PYTHONPATH": args.code}, check=True)
        elapsed = time.perf_counter() - start
    elif args.workers == 1:
        context = open_context(settings, create=False)

        def count(*_: object) -> None:
            nonlocal statements
            statements += 1

        def traced(sql: str) -> None:  # SQLite's own count: what runs on the driver's
            if not sql.startswith("--"):  # cursor (``db.Prepared``) too; not triggers
                count()

        if args.database:  # PostgreSQL: what SQLAlchemy runs (not ``db.Prepared``)
            event.listen(context.engine, "before_cursor_execute", count)
        else:
            event.listen(
                context.engine, "connect", lambda dbapi, _: dbapi.set_trace_callback(traced)
            )
            context.engine.dispose()  # (new connections, traced)
        profile = cProfile.Profile() if args.profile else None
        if profile:
            profile.enable()
        file_all(context)
        if profile:
            profile.disable()
        elapsed = time.perf_counter() - start
        context.engine.dispose()
    else:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            pool.map(work, [settings] * args.workers)
        elapsed = time.perf_counter() - start

    cpu = cpu_seconds() - cpu_start
    context = open_context(settings, create=False)
    with Session(context.engine) as session:
        states = Counter(
            dict(
                session.exec(
                    select(models.RawMail.state, func.count()).group_by(models.RawMail.state)
                ).all()
            )
        )
        outbox = session.exec(select(func.count()).select_from(models.Outbox)).one()
        outbox_bytes = bytes_written(session)
    context.engine.dispose()
    name = "PostgreSQL" if args.database else "SQLite"
    print(f"process: {args.count} mails, team of {args.team}, {args.workers} worker(s), {name}")
    print(f"  throughput   {args.count / elapsed:8.1f} mails/s ({elapsed:.1f} s)")
    print(f"  worker CPU   {cpu / args.count * 1000:8.2f} ms per mail (user + system)")
    if statements:
        what = "through SQLAlchemy" if args.database else "as SQLite ran them"
        print(f"  statements   {statements / args.count:8.1f} per mail ({what})")
    print(f"  outbox rows  {outbox / args.count:8.1f} per mail")
    print(f"  outbox bytes {outbox_bytes / args.count:8.0f} per mail (mail, text, stencils)")
    print(f"  states       {dict(sorted(states.items()))}")
    if args.profile and profile:
        stats = pstats.Stats(profile).sort_stats("cumulative")
        stats.print_stats(35)
        stats.print_callees("notify_message|_file|apply_route|_personal")
        print_by_library(stats)


# What the outbox keeps of its mail: whole rows (``raw``, ``text``), and since issue 10
# notifications' stencils once and each recipient's values (``personal``).
OUTBOX_BYTES = {
    "outbox": ("raw", "text", "personal"),
    "outboxstencil": ("head", "text", "html", "files"),
}


def bytes_written(session: Session) -> int:
    """The bytes of mail the outbox holds (as a checkout without stencils has it, too)."""
    connection = session.connection()
    found = inspect(connection)
    postgres = connection.dialect.name == "postgresql"
    size = "octet_length({})" if postgres else "length(CAST({} AS BLOB))"
    total = 0
    for table, columns in OUTBOX_BYTES.items():
        if table not in found.get_table_names():
            continue
        present = {column["name"] for column in found.get_columns(table)}
        summed = " + ".join(f"coalesce({size.format(c)}, 0)" for c in columns if c in present)
        query = f"SELECT coalesce(sum({summed}), 0) FROM {table}"
        total += int(connection.execute(text(query)).scalar_one())
    return total


def library_of(filename: str) -> str:
    """Who a profiled function belongs to: a qmail module, a library, or the stdlib's
    ``email``, ``sqlite3`` and the rest."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins"
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    if "qmail" in parts:
        return "/".join(parts[parts.index("qmail") :]).removesuffix(".py")
    if "email" in parts:
        return "email (stdlib)"
    return "stdlib, other"


def print_by_library(stats: pstats.Stats) -> None:
    """The worker's own time (``tottime``) by library and by qmail module."""
    own: Counter[str] = Counter()
    for (filename, _, name), row in stats.stats.items():  # type: ignore[attr-defined]
        library = library_of(filename)
        if library == "builtins" and "sqlite3" in name:
            library = "sqlite3"
        own[library] += row[2]
    total = sum(own.values())
    print("own time by library / qmail module:")
    for library, seconds in own.most_common(25):
        print(f"  {seconds / total:6.1%}  {seconds:6.2f} s  {library}")


if __name__ == "__main__":
    main()
