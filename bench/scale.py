"""Pages at scale: page latency with 16 connections at 10 k, 100 k and 1 M stored messages.

For each size, builds (or reuses) a database of that many messages (``bench/scale_data.py``),
serves the real web app with uvicorn (``--workers`` processes) and requests each page over
``--connections`` keep-alive connections at once, as a team member and as a client: the
inbox and its 21st page, the inbox filtered (by a tag, ``assignee=mine``, a company, open
tasks, and tag with status; each with its rows' unread marks, against half of the newest
1,000 tasks marked read), a task page, the API's task list and one task, search (the page
and the API), contacts (the first page, and a teammate's contact page) and activity (all,
and filtered by kind, task and company).
Prints p50 / p99 with all connections and p50 with one alone, per page and size.  With
``--ingest N`` it also times the processing of N mails (``pipeline.accept``) into a copy
of each SQLite database, after ``INGEST_WARMUP`` mails not counted (as the pages' warm-up
requests: the fresh copy's first mails read their index pages from the disk), and prints
the mean of those first mails apart.  Prints figures; asserts nothing.

    .venv/bin/python bench/scale.py --sizes 10000,100000,1000000
    .venv/bin/python bench/scale.py --sizes 10000 --database postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench import scale_data

CACHE = Path(os.environ.get("QMAIL_SCALE_CACHE", "/tmp/qmail-scale"))
SECRET = "bench-secret-key-not-for-production"


def app() -> Any:
    """The app for uvicorn's ``--factory``: settings from the ``QMAIL_*`` environment."""
    from qmail.config import load
    from qmail.db import create_db_engine
    from qmail.web.app import create_app

    settings = load()
    return create_app(settings, create_db_engine(settings))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_for(size: int, database: str | None) -> str:
    """The URL of the cached database of ``size`` messages: a file, or a schema."""
    if not database:
        CACHE.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{CACHE}/{size}.db"
    separator = "&" if "?" in database else "?"
    return f"{database}{separator}options=-csearch_path%3Dscale_{size}"


def ensure_built(size: int, database: str | None, rebuild: bool) -> str:
    """Build the database of ``size`` messages unless a complete one is cached."""
    from qmail.db import migrate

    url = database_for(size, database)
    if database:
        admin = create_engine(database)
        with admin.begin() as connection:
            if rebuild:
                connection.execute(text(f"DROP SCHEMA IF EXISTS scale_{size} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS scale_{size}"))
        admin.dispose()
    elif rebuild:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{CACHE}/{size}.db{suffix}").unlink(missing_ok=True)
    engine = engine_for(url)
    try:
        migrate(engine)  # a cached database gets the newest schema (and its backfills)
        if scale_data.is_built(engine):
            print(f"{size:,} messages: reusing {url}", file=sys.stderr)
            return url
        print(f"{size:,} messages: building {url}", file=sys.stderr)
        started = time.perf_counter()
        scale_data.build(engine, size)
        scale_data.mark_built(engine)
        print(f"  built in {time.perf_counter() - started:,.0f} s", file=sys.stderr)
    finally:
        engine.dispose()
    return url


def engine_for(url: str) -> Engine:
    from qmail.config import load
    from qmail.db import create_db_engine

    return create_db_engine(load(env={"QMAIL_DATABASE__URL": url}))


@dataclass
class Visitor:
    """Who requests the pages: a bearer token and what they may look at."""

    name: str
    token: str
    tasks: list[int]
    inbox_cursor: str | None  # the 21st page of their inbox, if they have one
    teammate: str  # a team member in their address book
    company: str  # the domain of the busy client's company


def visitors(url: str) -> list[Visitor]:
    """A team member (on every task) and a busy client, each with a token."""
    try:
        from qmail.queries.paging import key_cursor
    except ImportError:  # measuring the code before keyset paging
        key_cursor = None  # type: ignore[assignment]
    from sqlmodel import Session, select

    from qmail import models
    from qmail.auth.api_tokens import create_api_token

    engine = engine_for(url)
    found = []
    with Session(engine) as session:
        alice = session.exec(select(models.Person).where(models.Person.id == 1)).one()
        # a busy client, as busy at every size: in the most tasks, up to 200
        client = session.execute(
            text(
                "SELECT person_id FROM branchmember WHERE person_id > 5 GROUP BY person_id"
                " HAVING count(*) <= 200 ORDER BY count(*) DESC LIMIT 1"
            )
        ).one()[0]
        client_person = session.get(models.Person, client)
        assert client_person is not None
        for name, person in (("team", alice), ("client", client_person)):
            token = create_api_token(session, person)
            rows = session.execute(
                text(
                    "SELECT DISTINCT t.number, t.updated_at, t.id FROM task t"
                    " JOIN branch b ON b.task_id = t.id JOIN branchmember m ON m.branch_id = b.id"
                    " WHERE m.person_id = :p AND NOT b.hidden"
                    " ORDER BY t.updated_at DESC, t.id DESC"
                ),
                {"p": person.id},
            ).all()
            read_half(session, person.id, [row[2] for row in rows[:1000:2]])
            cursor = None
            if len(rows) > 1000 and key_cursor is not None:
                task = session.get(models.Task, rows[999][2])
                assert task is not None and task.id is not None
                cursor = key_cursor(task.updated_at, task.id)
            numbers = [row[0] for row in rows]
            random.Random(1).shuffle(numbers)
            company = client_person.email.rpartition("@")[2]
            found.append(Visitor(name, token, numbers[:500], cursor, "bob@team.test", company))
        session.commit()
    engine.dispose()
    return found


def read_half(session: Any, person_id: int | None, task_ids: list[int]) -> None:
    """Mark these tasks read up to their newest message (the inbox's unread marks then
    compare against something), if the schema knows what was read (migration 0009)."""
    if not task_ids or "taskread" not in inspect(session.get_bind()).get_table_names():
        return
    session.execute(
        text(
            "INSERT INTO taskread (person_id, task_id, message_id, read_at)"
            " SELECT :p, task_id, max(id), :now FROM message"
            f" WHERE task_id IN ({', '.join(str(int(i)) for i in task_ids)})"
            " GROUP BY task_id ON CONFLICT DO NOTHING"
        ),
        {"p": person_id, "now": scale_data.START + scale_data.SPAN},
    )


def search_terms() -> list[str]:
    """Words by frequency: in about half the messages, in some, in few; and two words."""
    words = scale_data.vocabulary(random.Random(10))
    return [words[0], words[60], words[3000], words[20000], f"{words[60]} {words[400]}"]


def pages(visitor: Visitor, terms: list[str], rng: random.Random) -> dict[str, list[str]]:
    """For each page: the paths to request (varied, so no single row stays cached)."""
    from qmail.core.companies import company_for

    tasks = visitor.tasks or [1]
    count = 200
    picks = [rng.choice(tasks) for _ in range(count)]
    tags = random.Random(4)  # apart from rng: the other pages' paths stay as they were
    found = {
        "inbox": ["/"] * count,
        "inbox p21": [f"/?cursor={visitor.inbox_cursor}"] * count,
        "inbox tag": [f"/?tag={tags.choice(scale_data.TAGS)}" for _ in range(count)],
        "inbox mine": ["/?assignee=mine"] * count,
        "inbox company": [f"/?company={visitor.company}"] * count,
        "inbox open": ["/?status=open"] * count,
        "inbox tag+open": [
            f"/?tag={tags.choice(scale_data.TAGS)}&status=open" for _ in range(count)
        ],
        "task page": [f"/tasks/{n}" for n in picks],
        "api list": ["/api/tasks?limit=50"] * count,
        "api task": [f"/api/tasks/{n}" for n in picks],
        "search page": [f"/search?q={rng.choice(terms).replace(' ', '+')}" for _ in range(count)],
        "api search": [
            f"/api/tasks?limit=20&q={rng.choice(terms).replace(' ', '+')}" for _ in range(count)
        ],
        "contacts": ["/contacts"] * count,
        "api contacts": ["/api/contacts"] * count,
        "teammate": [f"/contacts/{visitor.teammate}"] * count,
        "activity": ["/activity"] * count,
        "activity messages": ["/activity?kind=messages"] * count,
        "activity status": ["/activity?kind=status"] * count,
        "activity task": [f"/activity?task={n}" for n in picks],
        "activity company": [f"/activity?company={visitor.company}"] * count,
    }
    if company_for(f"someone@{visitor.company}") is None:  # webmail: no company to filter by
        del found["activity company"]
    if visitor.inbox_cursor is None:
        del found["inbox p21"]
    if visitor.name != "team":  # a client may not filter by tag, and nothing is assigned to them
        for page in ("inbox tag", "inbox mine", "inbox tag+open"):
            del found[page]
    return found


async def fetch(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, token: str
) -> int:
    """One GET over a keep-alive connection; the status (the body is read and dropped)."""
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def load(ports: list[int], paths: list[str], token: str, connections: int) -> list[float]:
    """Request ``paths`` over ``connections`` connections at once, spread over the servers
    on ``ports`` as a load balancer would; the latencies."""
    queue = list(reversed(paths))
    latencies: list[float] = []
    failures: list[str] = []

    async def connection(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            path = queue.pop()
            started = time.perf_counter()
            status = await fetch(reader, writer, path, token)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                failures.append(f"{status} {path}")
        writer.close()

    await asyncio.gather(*(connection(ports[i % len(ports)]) for i in range(connections)))
    if failures:
        print(f"  {len(failures)} failures, e.g. {failures[0]}", file=sys.stderr)
    return latencies


def serve(url: str, workers: int) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    """``workers`` uvicorn processes with the real app, each on its own port (as behind a
    load balancer); waits until they answer.

    Not ``uvicorn --workers``: its processes inherit the listening socket in a way that
    leaves TCP_NODELAY unset on the connections, and every keep-alive response then waits
    40 ms for a delayed ACK.
    """
    env = {
        **os.environ,
        "QMAIL_DATABASE__URL": url,
        "QMAIL_MAIL__TEAM_DOMAINS": scale_data.TEAM_DOMAIN,
        "QMAIL_SECURITY__SECRET_KEY": SECRET,
        "PYTHONPATH": str(Path(__file__).parents[1]),
    }
    servers, ports = [], []
    for _ in range(workers):
        port = free_port()
        command = [
            sys.executable, "-m", "uvicorn", "--factory", "bench.scale:app", "--port", str(port),
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        servers.append(subprocess.Popen(command, env=env, start_new_session=True))
        ports.append(port)
    deadline = time.monotonic() + 60
    for port in ports:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    stop(servers)
                    raise SystemExit("uvicorn did not start") from None
                time.sleep(0.2)
    return servers, ports


def stop(servers: list[subprocess.Popen[bytes]]) -> None:
    for server in servers:
        os.killpg(server.pid, signal.SIGTERM)
    for server in servers:
        server.wait(timeout=30)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(url: str, args: argparse.Namespace) -> dict[tuple[str, str], tuple[float, ...]]:
    """p50 and p99 with ``--connections`` at once, and p50 alone, in ms, for every page."""
    results = {}
    servers, ports = serve(url, args.workers)
    try:
        for visitor in visitors(url):
            for page, paths in pages(visitor, search_terms(), random.Random(2)).items():
                if args.pages and not any(page.startswith(p) for p in args.pages.split(",")):
                    continue
                paths = paths[: args.requests]
                if args.warmup:
                    warm = paths[: args.warmup]
                    asyncio.run(load(ports, warm, visitor.token, args.connections))
                latencies = asyncio.run(load(ports, paths, visitor.token, args.connections))
                alone = asyncio.run(load(ports, paths[: args.alone], visitor.token, 1))
                figures = (
                    1000 * statistics.median(latencies),
                    1000 * percentile(latencies, 0.99),
                    1000 * statistics.median(alone),
                )
                results[(visitor.name, page)] = figures
                print(
                    f"  {visitor.name:7} {page:13} p50 {figures[0]:7.1f} ms"
                    f"  p99 {figures[1]:7.1f} ms  alone p50 {figures[2]:6.1f} ms",
                    file=sys.stderr,
                )
    finally:
        stop(servers)
    return results


INGEST_WARMUP = 50


def ingest(url: str, count: int) -> tuple[float, float, float]:
    """Mean and p99 ms per mail for ``count`` mails through ``pipeline.accept`` into a copy
    of the database, after ``INGEST_WARMUP`` mails (their mean is the third figure): new
    tasks from existing clients (the team of 5 is told), and replies to existing messages
    (In-Reply-To)."""
    from email.message import EmailMessage

    from qmail.config import load
    from qmail.context import open_context
    from qmail.core.mail import Envelope
    from qmail.inbound import pipeline

    copy = copy_of(url)
    env = {
        "QMAIL_DATABASE__URL": copy,
        "QMAIL_MAIL__TEAM_DOMAINS": scale_data.TEAM_DOMAIN,
        "QMAIL_SECURITY__SECRET_KEY": SECRET,
    }
    context = open_context(load(env=env))
    rng = random.Random(3)
    with context.engine.connect() as connection:
        clients = [row[0] for row in connection.execute(text("SELECT email FROM person"))][5:]
        last = connection.execute(text("SELECT max(id) FROM message")).scalar_one()
    timings = []
    for n in range(INGEST_WARMUP + count):
        mail = EmailMessage()
        sender = rng.choice(clients)
        mail["From"], mail["To"] = sender, "tasks@localhost"
        mail["Subject"] = f"Bench question {n} about order {rng.randint(1, 10**6)}"
        mail["Message-ID"] = f"<ingest-{n}-{time.time_ns()}@bench.invalid>"
        if n % 2:
            mail["In-Reply-To"] = f"<m{rng.randint(1, last)}@bench.invalid>"
        mail.set_content("Hello,\n\nplease have a look at this.\n\nThanks\n")
        envelope = Envelope(sender, ("tasks@localhost",))
        started = time.perf_counter()
        pipeline.accept(mail.as_bytes(), envelope, context, scale_data.START + scale_data.SPAN)
        timings.append(1000 * (time.perf_counter() - started))
    context.engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(copy.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    counted, first = timings[INGEST_WARMUP:], timings[:INGEST_WARMUP]
    return statistics.mean(counted), percentile(counted, 0.99), statistics.mean(first)


def copy_of(url: str) -> str:
    source = url.removeprefix("sqlite:///")
    target = f"{source}.copy"
    shutil.copyfile(source, target)
    return f"sqlite:///{target}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--database", help="a PostgreSQL URL (default: SQLite files in /tmp)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="web server processes")
    parser.add_argument("--requests", type=int, default=200, help="per page and visitor")
    parser.add_argument("--warmup", type=int, default=40, help="requests first, not counted")
    parser.add_argument("--alone", type=int, default=50, help="requests on one connection")
    parser.add_argument("--ingest", type=int, default=0, help="mails to time (SQLite only)")
    parser.add_argument("--rebuild", action="store_true", help="build even if cached")
    parser.add_argument("--pages", help="only the pages whose names start so, e.g. 'inbox'")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    table: dict[int, dict[tuple[str, str], tuple[float, ...]]] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        url = ensure_built(size, args.database, args.rebuild)
        if args.build_only:
            continue
        table[size] = measure(url, args)
        if args.ingest and not args.database:
            mean, p99, first = ingest(url, args.ingest)
            label = f"{args.ingest} mails: mean / p99 / the first {INGEST_WARMUP}'s mean"
            table[size][("ingest", label)] = (mean, p99, first)
            print(
                f"  ingest: {mean:.1f} ms per mail, p99 {p99:.1f} ms"
                f" (the first {INGEST_WARMUP}: {first:.1f} ms)",
                file=sys.stderr,
            )
    report(table)


def report(table: dict[int, dict[tuple[str, str], tuple[float, ...]]]) -> None:
    if not table:
        return
    sizes = list(table)
    head = " | ".join(f"{s:,}: p50 / p99 / alone" for s in sizes)
    print(f"| visitor | page | {head} |")
    print("| --- | --- | " + " | ".join("---:" for _ in sizes) + " |")
    for key in table[sizes[-1]]:
        cells = [
            " / ".join(f"{x:.1f}" for x in table[s][key]) if key in table[s] else "-" for s in sizes
        ]
        print(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
