"""What adding a message's pairs to the address book costs (``acquaintances.note_message``).

On a ``bench/scale.py`` database (SQLite file or PostgreSQL schema), in one transaction
that is rolled back: finds a busy branch (six members or more), posts ``--count`` new
messages there one by one, and times the note of each.  The first runs show what a
statement costs planned afresh; on PostgreSQL, from about the twelfth, psycopg has
prepared it and the server uses its generic plan.  Run with ``PYTHONPATH`` at another
checkout to time its statement.  Prints figures; asserts nothing.

    .venv/bin/python bench/note_cost.py sqlite:////tmp/qmail-scale/100000.db
    .venv/bin/python bench/note_cost.py \\
        "postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dscale_100000"
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import create_engine, insert, text

from qmail import models
from qmail.threads import acquaintances

BUSY_BRANCH = """SELECT b.id, b.task_id FROM branch b JOIN branchmember m ON m.branch_id = b.id
GROUP BY b.id, b.task_id HAVING count(*) >= 6 ORDER BY b.id DESC LIMIT 1"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="a bench/scale.py database")
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    engine = create_engine(args.url)
    with engine.connect() as connection:
        branch_id, task_id = connection.execute(text(BUSY_BRANCH)).one()
        author = connection.execute(
            text("SELECT person_id FROM branchmember WHERE branch_id = :b LIMIT 1"),
            {"b": branch_id},
        ).scalar_one()
        times = []
        note = acquaintances._NOTE_MESSAGE  # (a Prepared statement now; text before)
        note = getattr(note, "statement", note)
        for _ in range(args.count):
            message_id = connection.execute(
                insert(models.Message).returning(models.Message.id),  # type: ignore[arg-type]
                {
                    "task_id": task_id,
                    "branch_id": branch_id,
                    "author_id": author,
                    "text": "A new message",
                    "quoted": "",
                    "full_text": "A new message",
                    "subject": "",
                    "references": "",
                    "message_id": f"note-cost-{uuid.uuid4().hex}@bench.invalid",
                    "sent_at": datetime.now(UTC),
                },
            ).scalar_one()
            started = time.perf_counter()
            connection.execute(note, {"message_id": message_id})
            times.append((time.perf_counter() - started) * 1000)
        connection.rollback()
    print(f"note_message, {args.count} messages in branch {branch_id} (ms each, in order):")
    print("  " + " ".join(f"{ms:.2f}" for ms in times))


if __name__ == "__main__":
    main()
