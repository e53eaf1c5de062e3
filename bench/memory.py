"""Memory per large mail: how many times its own size one mail costs on its way in.

A mail of ``--sizes`` MB (10^6 bytes each: a short text and one attachment that takes the
rest, base64-encoded, as mail programs send it; ``--textual`` makes it a CSV file, which
is scrubbed of our tokens, instead of random bytes) goes through

- ``process``: ``pipeline.accept`` in a fresh Python process that already holds the raw
  bytes (parse, scrub, route, trim, store the raw mail and the attachment); and
- ``smtp`` (with ``--smtp``): the real ``qmail smtp`` server, sent by ``smtplib``.

For each it prints the peak resident memory above what the process held just before the
mail (``VmHWM`` after resetting it through ``/proc/PID/clear_refs``), that peak as a
multiple of the mail's size, and, for ``process``, the peak of Python's own allocations
(``tracemalloc``, a separate run: it slows everything down).  Prints figures; asserts
nothing.  Mails are generated once and cached in ``--cache``.

    .venv/bin/python bench/memory.py                        # 1, 10, 25 MB on SQLite
    .venv/bin/python bench/memory.py --sizes 25 --textual --smtp
    .venv/bin/python bench/memory.py --database postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import json
import os
import random
import smtplib
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ingest import free_port, wait_for_port  # the same helpers as the other benches

ROOT = Path(__file__).resolve().parents[1]
# The qmail of this checkout, whatever the virtualenv has installed.
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
MB = 1_000_000
SENDER = "ann@client.test"
INTAKE = "tasks@localhost"


# --- the mail -----------------------------------------------------------------------------


def make_mail(size: int, textual: bool) -> bytes:
    """A mail of about ``size`` bytes with CRLF line ends: a text and one attachment."""
    mail = EmailMessage()
    mail["From"] = f"Ann <{SENDER}>"
    mail["To"] = INTAKE
    mail["Subject"] = f"The {size // MB} MB export"
    mail["Message-ID"] = f"<memory-{size}-{textual}@client.test>"
    mail.set_content("Hello,\n\nthe export you asked for is attached.\n\nAnn\n")
    room = max(size - 1500, 1000) * 57 // 78  # base64: 57 bytes per 78-byte line
    if textual:
        rows = random.Random(size)
        lines = (
            f"{n},{rows.randrange(10**9)},item {n % 997},{rows.random():.6f}\n" for n in range(room)
        )
        content = "".join(lines)[:room].encode()
        mail.add_attachment(
            content, maintype="text", subtype="csv", filename="export.csv", cte="base64"
        )
    else:
        content = random.Random(size).randbytes(room)
        mail.add_attachment(content, maintype="application", subtype="pdf", filename="export.pdf")
    return bytes(mail).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def cached_mail(cache: Path, size_mb: float, textual: bool) -> Path:
    path = cache / f"mail-{size_mb:g}MB{'-csv' if textual else ''}.eml"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make_mail(int(size_mb * MB), textual))
    return path


def small_mail(n: int) -> bytes:
    return (
        f"From: Ann <{SENDER}>\r\nTo: {INTAKE}\r\nSubject: warm-up {n}\r\n"
        f"Message-ID: <warm-{n}-{uuid.uuid4().hex}@client.test>\r\n\r\nJust warming up.\r\n"
    ).encode()


# --- reading a process's memory ------------------------------------------------------------


def status_kib(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int | str) -> int:
    """Reset the process's peak RSS to its current RSS; returns that RSS in KiB."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return status_kib(pid, "VmRSS")


# --- one mail through pipeline.accept, in a child process -----------------------------------


def child(path: Path, database: str, traced: bool) -> None:
    """Runs in a fresh process: prints one JSON line of what the mail cost."""
    from datetime import UTC, datetime

    from qmail.config import load
    from qmail.context import open_context
    from qmail.core.mail import Envelope
    from qmail.inbound import pipeline

    folder = Path(tempfile.mkdtemp(prefix="qmail-memory-"))
    settings = load(
        env={
            "QMAIL_DATABASE__URL": database or f"sqlite:///{folder}/memory.db",
            "QMAIL_SECURITY__SECRET_KEY": "bench",
        }
    )
    context = open_context(settings)
    envelope = Envelope(SENDER, (INTAKE,))
    for n in range(3):  # everything imported, connected and cached before measuring
        pipeline.accept(small_mail(n), envelope, context, datetime.now(UTC))
    raw = path.read_bytes()
    if traced:
        tracemalloc.start()
    before = reset_peak("self")
    start = time.perf_counter()
    outcome = pipeline.accept(raw, envelope, context, datetime.now(UTC))
    elapsed = time.perf_counter() - start
    peak = status_kib("self", "VmHWM")
    traced_peak = tracemalloc.get_traced_memory()[1] if traced else 0
    print(
        json.dumps(
            {
                "state": outcome.state,
                "rss_kib": peak - before,
                "traced": traced_peak,
                "seconds": elapsed,
            }
        )
    )
    context.engine.dispose()


def run_child(path: Path, database: str, traced: bool) -> dict:
    command = [sys.executable, __file__, "--child", str(path), "--database", database]
    command += ["--traced"] if traced else []
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=ENV)
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- one mail through the real SMTP server ---------------------------------------------------


def through_smtp(path: Path, database: str) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="qmail-memory-smtp-"))
    port = free_port()
    env = {
        **ENV,
        "QMAIL_SMTP__PORT": str(port),
        "QMAIL_DATABASE__URL": database or f"sqlite:///{folder}/memory.db",
        "QMAIL_SECURITY__SECRET_KEY": "bench",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "qmail", "smtp"],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        raw = path.read_bytes()
        with smtplib.SMTP("127.0.0.1", port, timeout=300) as client:
            for n in range(3):
                client.sendmail(SENDER, [INTAKE], small_mail(n))
            before = reset_peak(server.pid)
            start = time.perf_counter()
            client.sendmail(SENDER, [INTAKE], raw)
            elapsed = time.perf_counter() - start
        peak = status_kib(server.pid, "VmHWM") - before
        return {"rss_kib": peak, "seconds": elapsed, "state": stored_state(env, raw)}
    finally:
        server.terminate()
        server.wait(30)


def stored_state(env: dict[str, str], raw: bytes) -> str:
    """The state of the raw mail in the database (``pending`` until a worker takes it)."""
    from sqlalchemy import create_engine, text

    from qmail.core.parse import read_message_id

    url = env["QMAIL_DATABASE__URL"]
    engine = create_engine(url)
    with engine.connect() as connection:
        state = connection.execute(
            text("SELECT state FROM rawmail WHERE message_id = :id"),
            {"id": read_message_id(raw)},
        ).scalar()
    engine.dispose()
    return str(state)


# --- PostgreSQL: a schema of its own ---------------------------------------------------------


def fresh_schema(database: str) -> tuple[str, str]:
    from sqlalchemy import create_engine, text

    schema = f"bench_memory_{uuid.uuid4().hex[:8]}"
    with create_engine(database).begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in database else "?"
    return schema, f"{database}{separator}options=-csearch_path%3D{schema}"


def drop_schema(database: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    with create_engine(database).begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def fresh(database: str, run: Callable[[str], dict]) -> dict:
    """``run`` on an empty database: SQLite makes its own, PostgreSQL gets a new schema."""
    if not database:
        return run("")
    schema, url = fresh_schema(database)
    try:
        return run(url)
    finally:
        drop_schema(database, schema)


def measure(way: str, path: Path, database: str) -> dict:
    """What one mail cost on one way in, each run on an empty database."""
    if way == "smtp":
        return fresh(database, lambda url: through_smtp(path, url))
    found = fresh(database, lambda url: run_child(path, url, traced=False))
    traced = fresh(database, lambda url: run_child(path, url, traced=True))
    assert found["state"] == traced["state"] == "done", (found, traced)
    return {**found, "traced": traced["traced"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,25", help="MB, comma-separated")
    parser.add_argument("--textual", action="store_true", help="a CSV attachment")
    parser.add_argument("--smtp", action="store_true", help="also through qmail smtp")
    parser.add_argument("--database", default="", help="default: a fresh SQLite file")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/qmail-bench-memory"))
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.database, args.traced)
        return
    print(f"{'size':>6} {'path':<8} {'peak RSS':>10} {'x size':>7} {'tracemalloc':>12}", end="")
    print(f" {'time':>7}  state")
    for size_mb in (float(size) for size in args.sizes.split(",")):
        path = cached_mail(args.cache, size_mb, args.textual)
        size = path.stat().st_size
        paths = ["process", "smtp"] if args.smtp else ["process"]
        for way in paths:
            found = measure(way, path, args.database)
            rss = found["rss_kib"] * 1024
            traced = f"{found.get('traced', 0) / 2**20:9.1f} MiB" if found.get("traced") else ""
            print(
                f"{size / MB:5.1f}M {way:<8} {rss / 2**20:6.1f} MiB {rss / size:6.1f}x "
                f"{traced:>12} {found['seconds']:6.2f}s  {found['state']}"
            )


if __name__ == "__main__":
    main()
