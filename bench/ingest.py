"""Ingest end to end: real mails through the real SMTP server, filed by the worker.

Starts ``qmail serve`` (SMTP server, worker and web app in one process, as ``make run``
does) as a subprocess on free loopback ports against a fresh database, sends ``--count``
mails with smtplib from ``--clients`` threads (new tasks, replies by token-less
In-Reply-To, and the reply fixtures of every mail client) and prints the SMTP rate and
latency per mail (from MAIL FROM to the 250, which comes once the raw mail is committed),
how long until the worker had filed them all, and the server's peak memory.  Prints
figures; asserts nothing.

    .venv/bin/python bench/ingest.py --count 2000 --clients 4
    .venv/bin/python bench/ingest.py --database postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

MAIL_DIR = Path(__file__).parents[1] / "tests" / "mail"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fixtures() -> list[bytes]:
    """The corpus, as mail programs sent it: not the templates of ``tests/leak.py`` (with
    ``{{MARKER}}`` placeholders, encoded only once the markers are filled)."""
    raws = (path.read_bytes() for path in sorted(MAIL_DIR.glob("*.eml")))
    return [raw for raw in raws if b"{{" not in raw]


def unique(raw: bytes, n: int) -> bytes:
    """The fixture with a fresh Message-ID, so that each send is a new mail."""
    header = f"Message-ID: <bench-{n}-{time.time_ns()}@bench.invalid>".encode()
    raw = re.sub(rb"(?im)^message-id:.*\r?\n", b"", raw, count=1)
    return header + b"\r\n" + raw


def send_all(port: int, mails: list[bytes], latencies: list[float], refused: list[int]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        for raw in mails:
            start = time.perf_counter()
            try:
                client.sendmail("bench@acme.test", ["tasks@localhost"], raw)
            except smtplib.SMTPDataError as error:  # the corpus holds deliberately broken mail
                refused.append(error.smtp_code)
            latencies.append(time.perf_counter() - start)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def start_servers(count: int, database: str, folder: Path) -> list[tuple[int, subprocess.Popen]]:
    """``count`` ``qmail serve`` processes on free ports, all on one database."""
    servers = []
    for _ in range(count):
        port = free_port()
        env = {
            **os.environ,
            "QMAIL_SMTP__PORT": str(port),
            "QMAIL_WEB__PORT": str(free_port()),
            "QMAIL_DATABASE__URL": database or f"sqlite:///{folder}/bench.db",
            "QMAIL_SECURITY__SECRET_KEY": "bench",
        }
        command = [sys.executable, "-m", "qmail", "serve"]
        process = subprocess.Popen(
            command, env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        servers.append((port, process))
        wait_for_port(port)  # one at a time: the first one creates the schema
    return servers


def wait_filed(url: str) -> None:
    """Until the worker has filed every kept mail."""
    engine = create_engine(url)
    waiting = text("SELECT count(*) FROM rawmail WHERE state IN ('pending', 'processing')")
    try:
        while True:
            with engine.connect() as connection:
                if connection.execute(waiting).scalar() == 0:
                    return
            time.sleep(0.05)
    finally:
        engine.dispose()


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing listens on port {port}: qmail did not start") from None
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--servers", type=int, default=1, help="qmail serve processes")
    parser.add_argument("--database", default="")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="qmail-bench-"))
    servers = start_servers(args.servers, args.database, folder)
    try:
        corpus = fixtures()
        mails = [unique(corpus[n % len(corpus)], n) for n in range(args.count)]
        shares = [mails[i :: args.clients] for i in range(args.clients)]
        latencies: list[float] = []
        refused: list[int] = []
        threads = [
            threading.Thread(
                target=send_all,
                args=(servers[i % len(servers)][0], share, latencies, refused),
            )
            for i, share in enumerate(shares)
        ]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        wait_filed(args.database or f"sqlite:///{folder}/bench.db")
        filed = time.perf_counter() - start
        rss = sum(peak_rss_kib(process.pid) for _, process in servers)
    finally:
        for _, process in servers:
            process.send_signal(signal.SIGTERM)
        for _, process in servers:
            process.wait(30)

    latencies.sort()
    database = "PostgreSQL" if args.database else "SQLite"
    print(
        f"ingest: {args.count} mails, {args.clients} SMTP clients, "
        f"{args.servers} qmail serve, {database}"
    )
    codes = ", ".join(f"{refused.count(code)} x {code}" for code in sorted(set(refused)))
    print(f"  refused      {len(refused):8d} ({codes or 'none'})")
    print(f"  SMTP rate    {args.count / elapsed:8.1f} mails/s ({elapsed:.1f} s)")
    print(f"  all filed    {args.count / filed:8.1f} mails/s ({filed:.1f} s)")
    print(f"  latency p50  {statistics.median(latencies) * 1000:8.1f} ms")
    print(f"  latency p95  {latencies[int(len(latencies) * 0.95)] * 1000:8.1f} ms")
    print(f"  latency max  {latencies[-1] * 1000:8.1f} ms")
    print(f"  servers' peak RSS {rss / 1024:6.1f} MiB (sum)")


if __name__ == "__main__":
    main()
