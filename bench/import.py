"""Import speed: ``qmail import mbox`` on a generated mailbox of N messages.

Generates an mbox of ``--count`` messages (cached in ``--cache``; written as it is made,
never held whole): new tasks from a few hundred clients at a few dozen companies, and
replies to them by the clients, each with In-Reply-To and References and
the quoted history a mail program adds; about 3 KB a message, one in a hundred a few
minutes out of date order.  Then runs ``qmail import mbox`` on it as a subprocess
against a fresh database and prints mails per second, the command's peak RSS, how long
reading the mailbox alone takes (and the peak RSS of a process that only reads it), and
what that rate would make of 1 M messages.  Prints figures; asserts nothing.

    .venv/bin/python bench/import.py --count 10000
    .venv/bin/python bench/import.py --count 1000000 --read-only
    .venv/bin/python bench/import.py --count 100000 --database postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # the qmail of this checkout
START = 1_700_000_000  # 2023-11-14
# fmt: off
WORDS = [
    "invoice", "order", "delivery", "account", "password", "printer", "laptop", "network",
    "office", "contract", "meeting", "report", "please", "could", "you", "check", "the",
    "attached", "again", "thanks", "regards", "urgent", "tomorrow", "monday", "payment",
    "missing", "line", "item", "customer", "server", "backup", "access", "new", "team",
]
# fmt: on


# --- the mailbox ------------------------------------------------------------------------


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randrange(6, 16))]
    return " ".join(words).capitalize() + "."


def paragraphs(rng: random.Random, count: int) -> list[str]:
    return [" ".join(sentence(rng) for _ in range(rng.randrange(2, 5))) for _ in range(count)]


def write_message(out: BinaryIO, rng: random.Random, number: int, threads: list[dict]) -> None:
    """One message, new task or reply, appended to the mbox ``out``."""
    moment = START + number * 30 + (rng.randrange(-600, 0) if rng.random() < 0.01 else 0)
    date = format_datetime(datetime.fromtimestamp(moment, UTC))
    message_id = f"m{number}.{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}@mail.test"
    if threads and rng.random() < 0.6:  # a reply
        thread = rng.choice(threads[-2000:])
        sender = thread["client"]  # (the team's own replies, unproven, would be held)
        subject = f"Re: {thread['subject']}"
        references = " ".join(f"<{one}>" for one in thread["ids"][-10:])
        headers = f"In-Reply-To: <{thread['ids'][-1]}>\nReferences: {references}\n"
        text = paragraphs(rng, rng.randrange(1, 3))
        quoted = [f"> {line}" for line in thread["last"]]
        body = "\n\n".join(text) + f"\n\nBest regards,\n{sender.split('@')[0]}\n\n"
        body += f"On {date}, {thread['client']} wrote:\n" + "\n".join(quoted) + "\n"
        thread["ids"].append(message_id)
        thread["last"] = text
    else:  # a new task
        company = rng.randrange(40)
        client = f"client{rng.randrange(400)}@company{company}.test"
        subject = f"{sentence(rng)[:-1]} #{number}"
        text = paragraphs(rng, rng.randrange(2, 6))
        body = "\n\n".join(text) + f"\n\nThanks,\n{client.split('@')[0]}\n"
        headers = ""
        sender = client
        threads.append({"client": client, "subject": subject, "ids": [message_id], "last": text})
    out.write(
        (
            f"From {sender} {time.asctime(time.gmtime(moment))}\n"
            f"From: {sender}\nTo: tasks@localhost\nSubject: {subject}\nDate: {date}\n"
            f"Message-ID: <{message_id}>\n{headers}MIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=utf-8\n\n{escape(body)}\n"
        ).encode()
    )


def escape(body: str) -> str:
    """mboxo: a body line starting with ``From `` is written as ``>From ``."""
    return "\n".join(">" + line if line.startswith("From ") else line for line in body.split("\n"))


def cached_mbox(cache: Path, count: int) -> Path:
    """The mailbox of ``count`` messages, made by a process of its own: a child's peak RSS
    starts from its parent's, and making it holds every thread's last words."""
    path = cache / f"import-{count}.mbox"
    if not path.exists():
        command = [sys.executable, __file__, "--make", str(count), "--cache", str(cache)]
        subprocess.run(command, check=True)
    return path


def make_mbox(cache: Path, count: int) -> None:
    path = cache / f"import-{count}.mbox"
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    rng, threads = random.Random(count), []
    with partial.open("wb", buffering=1 << 20) as out:
        for number in range(count):
            write_message(out, rng, number, threads)
    partial.rename(path)


# --- the import -------------------------------------------------------------------------


def run_import(path: Path, database: str) -> tuple[float, int, str]:
    """Seconds, peak RSS in KiB and the command's last line, for one import."""
    folder = Path(tempfile.mkdtemp(prefix="qmail-bench-import-"))
    env = {
        **ENV,
        "QMAIL_DATABASE__URL": database or f"sqlite:///{folder}/import.db",
        "QMAIL_MAIL__TEAM_DOMAINS": "example.com",
        "QMAIL_SECURITY__SECRET_KEY": "bench",
    }
    command = [sys.executable, "-m", "qmail", "import", "mbox", str(path)]
    subprocess.run([sys.executable, "-m", "qmail", "init"], env=env, cwd=folder, check=True)
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"qmail import failed: {status}")
    return elapsed, usage.ru_maxrss, output.strip().splitlines()[-1]


def reading(path: Path) -> tuple[float, int]:
    """How long reading the mailbox alone takes (both passes, every message), and the
    peak RSS in KiB of the process that reads it."""
    code = (
        "import sys, time; from pathlib import Path; "
        "from qmail.inbound.mailboxes import read_mailbox; t = time.perf_counter(); "
        "n = sum(1 for _ in read_mailbox('mbox', Path(sys.argv[1]))); "
        "print(time.perf_counter() - t)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], env=ENV, stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit("reading the mailbox failed")
    return float(output), usage.ru_maxrss


def fresh(database: str) -> tuple[str, Callable[[], None]]:
    """An empty PostgreSQL schema for one run (SQLite: each run has its own file)."""
    if not database:
        return "", lambda: None
    from sqlalchemy import create_engine, text

    schema = f"bench_import_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))

    separator = "&" if "?" in database else "?"
    return f"{database}{separator}options=-csearch_path%3D{schema}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", default="10000", help="messages; comma-separated for more")
    parser.add_argument("--database", default="", help="default: a fresh SQLite file")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/qmail-bench-import"))
    parser.add_argument("--read-only", action="store_true", help="only read the mailbox")
    parser.add_argument("--make", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make_mbox(args.cache, args.make)
        return
    for count in (int(one) for one in args.count.split(",")):
        started = time.perf_counter()
        path = cached_mbox(args.cache, count)
        made = time.perf_counter() - started
        size = path.stat().st_size / 1e6
        read, read_kib = reading(path)
        print(
            f"{count} messages ({size:.0f} MB, made in {made:.0f} s): reading alone "
            f"{read:.1f} s ({count / read:.0f} mails/s), peak RSS {read_kib / 1024:.0f} MiB"
        )
        if args.read_only:
            continue
        database, drop = fresh(args.database)
        try:
            elapsed, peak_kib, summary = run_import(path, database)
        finally:
            drop()
        rate = count / elapsed
        print(
            f"  import: {elapsed:.0f} s, {rate:.0f} mails/s, peak RSS {peak_kib / 1024:.0f} MiB; "
            f"1 M at this rate: {1_000_000 / rate / 60:.0f} min\n  {summary}"
        )


if __name__ == "__main__":
    main()
