"""SMTP acceptance: ``qmail smtp`` against a bare aiosmtpd server, side by side.

Each round runs Postfix's ``smtp-source`` (``-s 8 -m 2000 -l 4096`` by default, from
``-f client@acme.test -t tasks@bench.test``; one connection per mail, as smtp-source
does without ``-d``) first against a bare aiosmtpd server (a subprocess whose handler
accepts every recipient and discards every mail, with qmail's server options), then
against ``qmail smtp`` (a subprocess of this checkout, on a fresh database: a temporary
SQLite file, or a fresh schema in ``--database``'s PostgreSQL; a team of ``--team``
members, so that a new task has people to notify).  Rounds alternate, bare then qmail,
so that the machine's other work weighs on both alike.  Each run prints mails/s measured
around smtp-source (wall clock of the whole run, process start included), and each round
the ratio qmail/bare.

Latency.  smtp-source prints no timings, and timing its process per message (``-m 1``)
would measure process starts.  So after each smtp-source run a second client, in this
process (asyncio, aiosmtplib), sends ``--latency-messages`` mails of the same shape
(smtp-source's four header fields and ``-l`` bytes of body) over the same number of
concurrent sessions, one connection per mail, and times each mail from ``MAIL FROM`` to
the ``250`` after its data: p50 and p99 of those, and that client's own rate.  It is a
closed loop, each session sending its next mail when the last is answered, so it
measures latency at the server's saturated rate with ``-s`` mails in flight, the
condition the smtp-source figure describes.  Its connection set-up and ``QUIT`` are left
out of the latency, as are the costs of the Python client itself, which are the same for
both servers.

Stored, then processed.  After a qmail run the bench counts the raw mails by state.
Today qmail processes a mail inside the SMTP transaction, so none is left pending; once
``qmail smtp`` answers ``250`` as soon as the raw mail is stored and a worker files it,
``--worker`` starts ``qmail worker`` on that database after the SMTP runs and reports how
long it takes until no raw mail is ``pending`` or ``processing`` (a backlog still there
after ``--worker-timeout`` seconds is reported as such).

    .venv/bin/python bench/smtp.py                      # SQLite, 3 rounds
    .venv/bin/python bench/smtp.py --rounds 5 -m 1000 --worker
    .venv/bin/python bench/smtp.py --database postgresql+psycopg://postgres@127.0.0.1/test

Prints figures; asserts nothing.  Needs ``smtp-source`` (Debian's ``postfix`` package).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
from sqlalchemy import create_engine, text

ROOT = Path(__file__).parents[1]
DOMAIN = "bench.test"
SENDER = "client@acme.test"
RECIPIENT = f"tasks@{DOMAIN}"
UNFINISHED = ("pending", "processing")


@dataclass
class Run:
    server: str
    mails: int
    seconds: float
    latencies: list[float]
    latency_seconds: float

    @property
    def rate(self) -> float:
        return self.mails / self.seconds

    def latency(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000

    def line(self) -> str:
        client_rate = len(self.latencies) / self.latency_seconds
        return (
            f"{self.server:5} {self.rate:8.1f} mails/s ({self.mails} in {self.seconds:.1f} s)"
            f"   latency p50 {self.latency(0.5):7.1f} ms  p99 {self.latency(0.99):7.1f} ms"
            f"  ({len(self.latencies)} mails, {client_rate:.1f}/s)"
        )


# --- the servers ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server on port {port} did not start") from None
            time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serve_bare(port: int) -> None:
    """The bare server: aiosmtpd with qmail's options, every mail accepted and discarded."""
    from aiosmtpd.smtp import SMTP

    class Discard:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 Recipient OK"

        async def handle_DATA(self, server, session, envelope) -> str:
            return "250 2.0.0 Message accepted"

    def protocol() -> SMTP:
        return SMTP(
            Discard(),
            data_size_limit=26_214_400,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=DOMAIN,
            ident="bare ESMTP",
        )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        server = await loop.create_server(protocol, "127.0.0.1", port)
        await stopped.wait()
        server.close()

    asyncio.run(main())


@contextlib.contextmanager
def bare_server(folder: Path) -> Iterator[int]:
    port = free_port()
    command = [sys.executable, __file__, "--serve-bare", str(port)]
    with (folder / "bare.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process)
        yield port
    finally:
        stop(process)


@contextlib.contextmanager
def fresh_database(url: str, folder: Path) -> Iterator[str]:
    """A temporary SQLite file, or a fresh schema in the PostgreSQL database ``url``."""
    if not url:
        yield f"sqlite:///{folder}/qmail-{uuid.uuid4().hex[:8]}.db"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
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


def write_config(folder: Path, database: str, port: int) -> Path:
    path = folder / "qmail.toml"
    path.write_text(
        f'[mail]\ndomain = "{DOMAIN}"\nteam_domains = ["{DOMAIN}"]\n'
        f'[smtp]\nport = {port}\n[database]\nurl = "{database}"\n'
        '[security]\nsecret_key = "bench-secret-not-for-production"\n'
    )
    return path


def qmail(config: Path, *args: str, log: Path | None = None) -> subprocess.Popen:
    """``qmail ARGS`` of this checkout (not whatever qmail the venv has installed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    output = log.open("ab") if log is not None else subprocess.DEVNULL
    command = [sys.executable, "-m", "qmail", *args, "--config", str(config)]
    return subprocess.Popen(command, cwd=config.parent, env=env, stdout=output, stderr=output)


@contextlib.contextmanager
def qmail_server(folder: Path, database: str, team: int) -> Iterator[int]:
    port = free_port()
    config = write_config(folder, database, port)
    for n in range(team):
        if qmail(config, "person", "add", f"member{n}@{DOMAIN}", "--team").wait() != 0:
            raise SystemExit("qmail person add failed")
    process = qmail(config, "smtp", log=folder / "qmail-smtp.log")
    try:
        wait_for_port(port, process)
        yield port
    finally:
        stop(process)


# --- the clients ------------------------------------------------------------------------


def smtp_source(port: int, args: argparse.Namespace) -> float:
    """Run smtp-source against ``port``; the seconds it took."""
    command = [
        "smtp-source",
        *("-s", str(args.sessions), "-m", str(args.messages), "-l", str(args.length)),
        *("-f", SENDER, "-t", RECIPIENT),
        *(["-d"] if args.keep_connection else []),
        f"127.0.0.1:{port}",
    ]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"smtp-source failed ({result.returncode}): {result.stderr.strip()}")
    return seconds


def sample_mail(n: int, length: int) -> bytes:
    """A mail shaped like smtp-source's: its four header fields and ``length`` bytes of body."""
    header = (
        f"From: <{SENDER}>\r\nTo: <{RECIPIENT}>\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        f"Message-Id: <latency.{n}.{time.time_ns()}@bench.invalid>\r\n\r\n"
    )
    line = b"X" * 78 + b"\r\n"
    body = (line * (length // len(line) + 1))[:length]
    return header.encode() + body + b"\r\n"


async def send_timed(port: int, count: int, sessions: int, length: int) -> list[float]:
    """Send ``count`` mails over ``sessions`` concurrent sessions; each one's latency."""
    latencies: list[float] = []
    numbers = iter(range(count))

    async def session() -> None:
        for n in numbers:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=120)
            await client.connect()
            raw = sample_mail(n, length)
            start = time.perf_counter()
            await client.sendmail(SENDER, [RECIPIENT], raw)
            latencies.append(time.perf_counter() - start)
            await client.quit()

    await asyncio.gather(*(session() for _ in range(sessions)))
    return latencies


def measure(server: str, port: int, args: argparse.Namespace) -> Run:
    seconds = smtp_source(port, args)
    start = time.perf_counter()
    latencies = asyncio.run(send_timed(port, args.latency_messages, args.sessions, args.length))
    return Run(server, args.messages, seconds, latencies, time.perf_counter() - start)


# --- the backlog ------------------------------------------------------------------------


def raw_mail_states(database: str) -> dict[str, int]:
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT state, COUNT(*) FROM rawmail GROUP BY state"))
            return {state: count for state, count in rows}
    finally:
        engine.dispose()


def drain(folder: Path, database: str, timeout: float) -> str:
    """Run ``qmail worker`` until no raw mail is pending; what it did, in words."""
    before = raw_mail_states(database)
    backlog = sum(before.get(state, 0) for state in UNFINISHED)
    if not backlog:
        return "nothing pending after SMTP (processed within the SMTP transaction)"
    worker = qmail(folder / "qmail.toml", "worker", log=folder / "qmail-worker.log")
    start = time.perf_counter()
    try:
        while True:
            states = raw_mail_states(database)
            left = sum(states.get(state, 0) for state in UNFINISHED)
            seconds = time.perf_counter() - start
            if not left:
                rate = backlog / seconds
                return f"worker filed {backlog} mails in {seconds:.1f} s, {rate:.1f}/s" + (
                    f" (its start included); {states}"
                )
            if seconds > timeout:
                return f"worker left {left} of {backlog} unprocessed after {timeout:.0f} s"
            time.sleep(0.2)
    finally:
        stop(worker)


# --- the rounds -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="bare + qmail pairs (default 3)")
    parser.add_argument("-s", "--sessions", type=int, default=8, help="smtp-source -s")
    parser.add_argument("-m", "--messages", type=int, default=2000, help="smtp-source -m")
    parser.add_argument("-l", "--length", type=int, default=4096, help="smtp-source -l")
    parser.add_argument(
        "-d", "--keep-connection", action="store_true", help="smtp-source -d: reuse sessions"
    )
    parser.add_argument("--latency-messages", type=int, default=1000)
    parser.add_argument("--database", default="", help="PostgreSQL URL (default: SQLite)")
    parser.add_argument("--team", type=int, default=5, help="team members to notify")
    parser.add_argument("--worker", action="store_true", help="then time qmail worker")
    parser.add_argument("--worker-timeout", type=float, default=600)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    if shutil.which("smtp-source") is None:
        raise SystemExit("smtp-source not found: apt-get install postfix")

    folder = Path(tempfile.mkdtemp(prefix="qmail-bench-smtp-"))
    print(
        f"smtp-source -s {args.sessions} -m {args.messages} -l {args.length}"
        f"{' -d' if args.keep_connection else ''}; latency client {args.latency_messages}"
        f" mails; qmail on {'PostgreSQL' if args.database else 'SQLite'}, team of {args.team}"
    )
    ratios, runs = [], []
    for round_number in range(1, args.rounds + 1):
        with bare_server(folder) as port:
            bare = measure("bare", port, args)
        print(f"round {round_number}  {bare.line()}", flush=True)
        with fresh_database(args.database, folder) as database:
            with qmail_server(folder, database, args.team) as port:
                mine = measure("qmail", port, args)
            print(f"round {round_number}  {mine.line()}", flush=True)
            states = raw_mail_states(database)
            print(f"          raw mails by state after SMTP: {states}")
            if args.worker:
                print(f"          {drain(folder, database, args.worker_timeout)}", flush=True)
        ratios.append(mine.rate / bare.rate)
        runs.append((bare, mine))
        print(f"          ratio qmail/bare {ratios[-1]:.3f}", flush=True)
    print(
        f"median ratio qmail/bare {statistics.median(ratios):.3f} over {args.rounds} rounds;"
        f" p99 qmail {statistics.median(mine.latency(0.99) for _, mine in runs):.1f} ms,"
        f" bare {statistics.median(bare.latency(0.99) for bare, _ in runs):.1f} ms (medians)"
    )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
