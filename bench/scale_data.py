"""Databases of 10 k / 100 k / 1 M stored messages for ``bench/scale.py``, built fast.

The schema comes from ``qmail.db.migrate`` (so indexes, full-text tables and triggers are
the real ones); the rows are bulk-inserted straight into the tables, never through the
pipeline: executemany on SQLite, COPY on PostgreSQL.  The shape is that of a busy
tracker: a team of 5 (every one of them on every new task, as ``mail.triage`` does by
default), one client per 100 messages spread over companies (a few on webmail), tasks of
1 to 40 messages from the client, a colleague and the team, a hidden team branch on one
task in ten, tags, closed tasks, events for everything.  Text is drawn from a Zipf
vocabulary, so some words are in half the messages and most are rare.  Raw mails and
attachments are not generated: no page reads them.

A built database is kept (``/tmp/qmail-scale/<n>.db``, or the schema ``scale_<n>`` on
PostgreSQL) and reused by the next run: a ``Counter`` row named ``bench_built`` marks it
complete.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

TEAM_DOMAIN = "team.test"
TEAM = ["alice", "bob", "chloe", "dmitri", "esther"]
START = datetime(2022, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)
TAGS = [f"tag{i}" for i in range(40)]
WEBMAIL = ["gmail.com", "yahoo.com", "outlook.com"]
# The most frequent words, then made-up ones (see ``vocabulary``).
COMMON_TEXT = """the to and of a in is for that you it on we this be with have are please can
as at will not our your if from but by all an or do so there would me know any was thanks
invoice order account report meeting update 问题 café déjà"""
COMMON = COMMON_TEXT.split()


def vocabulary(rng: random.Random, size: int = 30_000) -> list[str]:
    """Common words first, then made-up words of 2 to 4 syllables (so ranks are stable)."""
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    words = list(dict.fromkeys(COMMON))
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


@dataclass
class Shape:
    """The generator's state: ids handed out so far and the rows of the current batch."""

    messages: int
    rng: random.Random = field(default_factory=lambda: random.Random(10))
    words: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    clients: list[tuple[int, list[int]]] = field(default_factory=list)  # company -> people
    ids: dict[str, int] = field(default_factory=dict)
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def next_id(self, table: str) -> int:
        self.ids[table] = self.ids.get(table, 0) + 1
        return self.ids[table]

    def add(self, table: str, *row: Any) -> None:
        self.rows.setdefault(table, []).append(row)

    def prose(self, low: int, high: int) -> str:
        count = self.rng.randint(low, high)
        chosen = self.rng.choices(self.words, cum_weights=self.weights, k=count)
        lines = [" ".join(chosen[i : i + 12]) for i in range(0, count, 12)]
        return "\n".join(lines).capitalize()


COLUMNS = {
    "person": ("id", "email", "name", "role", "created_at"),
    "tag": ("id", "name"),
    "task": (
        "id", "number", "title", "status", "created_by_id", "assignee_id", "created_at",
        "updated_at",
    ),
    "branch": ("id", "task_id", "hidden", "parent_id", "forked_from_id", "created_at"),
    "branchmember": ("branch_id", "person_id", "added_at"),
    "message": (
        "id", "task_id", "branch_id", "author_id", "text", "quoted", "full_text", "subject",
        "message_id", "in_reply_to", "references", "source", "sent_at",
    ),
    "tasktag": ("task_id", "tag_id"),
    "event": ("id", "task_id", "branch_id", "person_id", "kind", "detail", "created_at"),
}  # fmt: skip


def people(shape: Shape) -> None:
    """The team, then companies of 2 to 12 clients (Zipf-sized), and some webmail users."""
    for name in TEAM:
        shape.add(
            "person", shape.next_id("person"), f"{name}@{TEAM_DOMAIN}", name.title(), None, START
        )
    wanted = max(50, shape.messages // 100)
    company = 0
    while shape.ids["person"] < wanted:
        company += 1
        domain = f"{shape.words[1000 + company]}{company}.example"
        if company % 10 == 0:
            domain = WEBMAIL[company % 3]
        members = []
        for _ in range(shape.rng.randint(2, 12)):
            person_id = shape.next_id("person")
            local = f"{shape.words[5000 + person_id % 20000]}.{person_id}"
            shape.add("person", person_id, f"{local}@{domain}", f"Client {person_id}", None, START)
            members.append(person_id)
        shape.clients.append((company, members))
    for tag_id, name in enumerate(TAGS, 1):
        shape.add("tag", tag_id, name)


def task(shape: Shape, number: int, created: datetime) -> int:
    """One task with its branches, members, messages, tags and events; its message count."""
    rng = shape.rng
    _, members = shape.clients[min(int(rng.paretovariate(1.2)) - 1, len(shape.clients) - 1)]
    members = members if rng.random() < 0.5 else shape.clients[rng.randrange(len(shape.clients))][1]
    opener = rng.choice(members)
    colleague = rng.choice(members) if rng.random() < 0.25 else None
    team = list(range(1, len(TEAM) + 1))
    title = shape.prose(3, 8).replace("\n", " ")
    task_id = shape.next_id("task")
    main = shape.next_id("branch")
    shape.add("branch", main, task_id, False, None, None, created)
    readers = [opener, *team] + ([colleague] if colleague and colleague != opener else [])
    for person_id in readers:
        shape.add("branchmember", main, person_id, created)
    event(shape, task_id, main, opener, "task_created", title, created)
    count = min(40, 1 + int(rng.expovariate(1 / 5)))
    when, updated, first = created, created, None
    for i in range(count):
        author = opener if i == 0 else rng.choice([*team, opener, colleague or opener])
        message_id = message(shape, task_id, main, author, title, when, i)
        first = first or message_id
        updated = when
        when += timedelta(minutes=rng.randint(5, 3000))
    if rng.random() < 0.1:
        count += hidden(shape, task_id, main, title, created, first or 0)
    for tag_id in rng.sample(range(1, len(TAGS) + 1), rng.choice([0, 0, 1, 1, 2, 3])):
        shape.add("tasktag", task_id, tag_id)
        event(shape, task_id, None, rng.choice(team), "tag", TAGS[tag_id - 1], created)
    status = "closed" if rng.random() < 0.7 else "open"
    if status == "closed":
        event(shape, task_id, None, rng.choice(team), "close", "", updated)
    assignee = rng.choice([None, *team])
    shape.add("task", task_id, number, title, status, opener, assignee, created, updated)
    return count


def hidden(shape: Shape, task_id: int, main: int, title: str, when: datetime, about: int) -> int:
    """A hidden team branch of 2 or 3 team members with 1 to 4 messages."""
    rng = shape.rng
    branch_id = shape.next_id("branch")
    forked = about if rng.random() < 0.5 else None
    shape.add("branch", branch_id, task_id, True, main, forked, when)
    members = rng.sample(range(1, len(TEAM) + 1), rng.randint(2, 3))
    for person_id in members:
        shape.add("branchmember", branch_id, person_id, when)
    detail = str(about) if forked else "team"
    event(shape, task_id, branch_id, members[0], "branch_opened", detail, when)
    count = rng.randint(1, 4)
    for i in range(count):
        when += timedelta(minutes=rng.randint(1, 600))
        message(shape, task_id, branch_id, rng.choice(members), title, when, i)
    return count


def message(
    shape: Shape, task_id: int, branch_id: int, author: int, title: str, when: datetime, i: int
) -> int:
    message_id = shape.next_id("message")
    body = shape.prose(15, 90)
    quoted = "" if i == 0 else "> " + shape.prose(5, 20).replace("\n", "\n> ")
    subject = title if i == 0 else f"Re: {title}"
    full = f"{body}\n\n{quoted}" if quoted else body
    shape.add(
        "message", message_id, task_id, branch_id, author, body, quoted, full, subject,
        f"<m{message_id}@bench.invalid>", "", "", "email", when,
    )  # fmt: skip
    event(shape, task_id, branch_id, author, "message", str(message_id), when)
    return message_id


def event(
    shape: Shape,
    task_id: int,
    branch_id: int | None,
    person_id: int,
    kind: str,
    detail: str,
    when: datetime,
) -> None:
    shape.add("event", shape.next_id("event"), task_id, branch_id, person_id, kind, detail, when)


def batches(messages: int) -> Iterator[Shape]:
    """The whole database in batches of about 20,000 messages (people first)."""
    rng = random.Random(10)
    words = vocabulary(rng)
    weights, total = [], 0.0
    for rank in range(len(words)):
        total += 1 / (rank + 1) ** 1.05
        weights.append(total)
    shape = Shape(messages, rng, words, weights)
    people(shape)
    done, number = 0, 0
    while done < messages:
        number += 1
        created = START + SPAN * (min(done, messages) / messages)
        done += task(shape, number, created)
        if len(shape.rows.get("message", ())) >= 20_000 or done >= messages:
            yield shape
            shape.rows = {}


def build(engine: Engine, messages: int) -> None:
    """Fill an empty, migrated database with ``messages`` messages (and print progress)."""
    started = time.perf_counter()
    writer = _sqlite_writer if engine.dialect.name == "sqlite" else _postgres_writer
    done = 0
    with writer(engine) as write:
        for shape in batches(messages):
            for table in COLUMNS:
                rows = shape.rows.get(table)
                if rows:
                    write(table, rows)
            done = shape.ids.get("message", 0)
            rate = done / (time.perf_counter() - started)
            print(f"\r  {done:>9,} messages ({rate:,.0f}/s)", end="", file=sys.stderr)
        write("counter", [("task", shape.ids["task"])], upsert=True)
    print(file=sys.stderr)
    count_acquaintances(engine)


def count_acquaintances(engine: Engine) -> None:
    """The address book's kept figures (``acquaintance``), counted from the rows written
    (the pipeline keeps them as it posts; the rows here bypass it)."""
    from sqlmodel import Session

    from qmail.threads.acquaintances import recount

    with Session(engine) as session:
        recount(session)
        session.commit()


class _sqlite_writer:
    """executemany on the raw sqlite3 connection, one transaction per batch."""

    def __init__(self, engine: Engine) -> None:
        self.raw = engine.raw_connection()

    def __enter__(self) -> Any:
        self.raw.execute("PRAGMA synchronous=OFF")
        return self.write

    def write(self, table: str, rows: list[tuple[Any, ...]], upsert: bool = False) -> None:
        if upsert:
            self.raw.execute(
                "UPDATE counter SET value = ? WHERE name = ?", (rows[0][1], rows[0][0])
            )
            self.raw.commit()
            return
        columns = COLUMNS[table]
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        converted = [tuple(_sqlite_value(v) for v in row) for row in rows]
        self.raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", converted)
        self.raw.commit()

    def __exit__(self, *exc: object) -> None:
        self.raw.execute("PRAGMA synchronous=NORMAL")
        self.raw.close()


def _sqlite_value(value: Any) -> Any:
    """What SQLAlchemy's DateTime stores on SQLite: naive UTC text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


class _postgres_writer:
    """COPY on the raw psycopg connection, one transaction per batch."""

    def __init__(self, engine: Engine) -> None:
        self.raw = engine.raw_connection()

    def __enter__(self) -> Any:
        return self.write

    def write(self, table: str, rows: list[tuple[Any, ...]], upsert: bool = False) -> None:
        cursor = self.raw.cursor()
        if upsert:
            cursor.execute(
                "UPDATE counter SET value = %s WHERE name = %s", (rows[0][1], rows[0][0])
            )
        else:
            names = ", ".join(f'"{c}"' for c in COLUMNS[table])
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        self.raw.commit()

    def __exit__(self, *exc: object) -> None:
        self.raw.close()


def mark_built(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO counter (name, value) VALUES ('bench_built', 1)"))
        if engine.dialect.name == "postgresql":
            for table in (*COLUMNS, "counter"):
                connection.execute(text(f"ANALYZE {table}"))
            for table in (table for table, columns in COLUMNS.items() if "id" in columns):
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
            # task numbers come from their own sequence (migration 0007)
            connection.execute(text("SELECT setval('task_number', (SELECT max(number) FROM task))"))


def is_built(engine: Engine) -> bool:
    with engine.connect() as connection:
        try:
            found = connection.execute(
                text("SELECT value FROM counter WHERE name = 'bench_built'")
            ).first()
        except Exception:
            return False
    return found is not None
