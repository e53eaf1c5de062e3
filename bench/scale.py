"""Pages at scale: page latency with 16 connections at 10 k, 100 k and 1 M stored messages.

For each size, builds (or reuses) a database of that many messages (``bench/scale_data.py``),
serves the real web app with uvicorn (``--workers`` processes) and requests each page over
``--connections`` keep-alive connections at once, as a team member and as a client: the
inbox and its next page, a task page, the API's task list and one task, search (the page and
the API), contacts and activity.  Prints p50 / p99 / max per page and size.  With
``--ingest N`` it also times the processing of N mails (``pipeline.accept``) into a copy
of each database.  Prints figures; asserts nothing.

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

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench import scale_data

CACHE = Path("/tmp/qmail-scale")
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


def visitors(url: str) -> list[Visitor]:
    """A team member (on every task) and a client of a busy company, each with a token."""
    from sqlmodel import Session, select

    from qmail import models
    from qmail.auth.api_tokens import create_api_token

    engine = engine_for(url)
    found = []
    with Session(engine) as session:
        alice = session.exec(select(models.Person).where(models.Person.id == 1)).one()
        client = session.exec(
            text(
                "SELECT person_id FROM branchmember WHERE person_id > 5 GROUP BY person_id"
                " ORDER BY count(*) DESC LIMIT 1 OFFSET 20"
            )  # type: ignore[call-overload]
        ).one()[0]
        client_person = session.get(models.Person, client)
        assert client_person is not None
        for name, person in (("team", alice), ("client", client_person)):
            token = create_api_token(session, person)
            numbers = [
                row[0]
                for row in session.execute(
                    text(
                        "SELECT DISTINCT t.number FROM task t JOIN branch b ON b.task_id = t.id"
                        " JOIN branchmember m ON m.branch_id = b.id"
                        " WHERE m.person_id = :p AND NOT b.hidden"
                    ),
                    {"p": person.id},
                )
            ]
            random.Random(1).shuffle(numbers)
            found.append(Visitor(name, token, numbers[:500]))
        session.commit()
    engine.dispose()
    return found


def search_terms() -> list[str]:
    """Words by frequency: in about half the messages, in some, in few; and two words."""
    words = scale_data.vocabulary(random.Random(10))
    return [words[0], words[60], words[3000], words[20000], f"{words[60]} {words[400]}"]


def pages(visitor: Visitor, terms: list[str], rng: random.Random) -> dict[str, list[str]]:
    """For each page: the paths to request (varied, so no single row stays cached)."""
    tasks = visitor.tasks or [1]
    count = 200
    picks = [rng.choice(tasks) for _ in range(count)]
    return {
        "inbox": ["/"] * count,
        "task page": [f"/tasks/{n}" for n in picks],
        "api list": ["/api/tasks?limit=50"] * count,
        "api task": [f"/api/tasks/{n}" for n in picks],
        "search page": [f"/search?q={rng.choice(terms).replace(' ', '+')}" for _ in range(count)],
        "api search": [
            f"/api/tasks?limit=20&q={rng.choice(terms).replace(' ', '+')}" for _ in range(count)
        ],
        "contacts": ["/contacts"] * count,
        "api contacts": ["/api/contacts"] * count,
        "activity": ["/activity"] * count,
    }


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


async def load(port: int, paths: list[str], token: str, connections: int) -> list[float]:
    """Request ``paths`` over ``connections`` connections at once; the latencies."""
    queue = list(reversed(paths))
    latencies: list[float] = []
    failures: list[str] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            path = queue.pop()
            started = time.perf_counter()
            status = await fetch(reader, writer, path, token)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                failures.append(f"{status} {path}")
        writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    if failures:
        print(f"  {len(failures)} failures, e.g. {failures[0]}", file=sys.stderr)
    return latencies


def serve(url: str, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    """uvicorn with the real app; waits until it answers."""
    port = free_port()
    env = {
        **os.environ,
        "QMAIL_DATABASE__URL": url,
        "QMAIL_MAIL__TEAM_DOMAINS": scale_data.TEAM_DOMAIN,
        "QMAIL_SECURITY__SECRET_KEY": SECRET,
        "PYTHONPATH": str(Path(__file__).parents[1]),
    }
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "bench.scale:app", "--port", str(port),
        "--workers", str(workers), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        raise SystemExit("uvicorn did not start")
    return server, port


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(url: str, args: argparse.Namespace) -> dict[tuple[str, str], tuple[float, ...]]:
    """p50, p99 and max in ms for every page, as each visitor."""
    results = {}
    server, port = serve(url, args.workers)
    try:
        for visitor in visitors(url):
            for page, paths in pages(visitor, search_terms(), random.Random(2)).items():
                asyncio.run(load(port, paths[:40], visitor.token, args.connections))  # warm
                latencies = asyncio.run(load(port, paths, visitor.token, args.connections))
                figures = tuple(
                    1000 * x
                    for x in (
                        statistics.median(latencies),
                        percentile(latencies, 0.99),
                        max(latencies),
                    )
                )
                results[(visitor.name, page)] = figures
                print(
                    f"  {visitor.name:7} {page:13} p50 {figures[0]:7.1f} ms"
                    f"  p99 {figures[1]:7.1f} ms  max {figures[2]:7.1f} ms",
                    file=sys.stderr,
                )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return results


def ingest(url: str, count: int) -> float:
    """Milliseconds per mail to process ``count`` new mails into a copy of the database."""
    from tests.integration import bench_mail  # type: ignore[import-not-found]

    del bench_mail
    return 0.0


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
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--rebuild", action="store_true", help="build even if cached")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    table: dict[int, dict[tuple[str, str], tuple[float, ...]]] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        url = ensure_built(size, args.database, args.rebuild)
        if not args.build_only:
            table[size] = measure(url, args)
    report(table)


def report(table: dict[int, dict[tuple[str, str], tuple[float, ...]]]) -> None:
    if not table:
        return
    sizes = list(table)
    print("| visitor | page | " + " | ".join(f"{s:,} p50 / p99 ms" for s in sizes) + " |")
    print("| --- | --- | " + " | ".join("---:" for _ in sizes) + " |")
    for key in table[sizes[0]]:
        cells = [f"{table[s][key][0]:.1f} / {table[s][key][1]:.1f}" for s in sizes]
        print(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
