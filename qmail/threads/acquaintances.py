"""Acquaintances: what two people share, kept up to date as messages and members come.

The address book (``queries.contacts``) shows, for each contact, the number of tasks in
which the two talked in a branch they are both members of, and the first and last
message there.  Counted from the branches at each request, that grows with the database
for two people who share nearly every task (two team members: 0.4 s at 1 M messages).
So the figures are kept in ``acquaintance``, one row per ordered pair of people, written
in the same transaction as what changes them:

- a message (``note_message``, one statement, from ``posting.post_message``),
- a member joining a branch that already has messages (``note_member``, from
  ``tasks.add_member``),
- a member leaving one (``recount``: their pairs are counted again from the branches).

Each row holds the figures twice: over all the branches the two share, and over the
visible ones only (``open_*``: hidden branches left out).  Which one a reader gets is
decided when the book is read, by their role at that moment (``access``: a team member
sees the hidden branches they belong to, anyone else never does), so a role change needs
no rewrite.  ``recount`` with no people, as migration 0011 does, counts every pair again.

Dialect-neutral SQL (``INSERT … ON CONFLICT DO UPDATE`` with ``excluded``, SQLite 3.24+
and PostgreSQL 9.5+); times are copied from ``message.sent_at`` inside the database, never
passed in, so they keep its stored form.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, text
from sqlmodel import Session

from qmail.db import Prepared

# Whether ``a`` and ``b`` talked in another branch of the task of branch ``br``, in any
# branch or in a visible one: then this branch adds no task to their count.
_SHARED_ELSEWHERE = """EXISTS (
    SELECT 1 FROM branch o
    JOIN branchmember x ON x.branch_id = o.id AND x.person_id = {a}
    JOIN branchmember y ON y.branch_id = o.id AND y.person_id = {b}
    WHERE o.task_id = br.task_id AND o.id <> br.id {visible}
      AND EXISTS (SELECT 1 FROM message n WHERE n.branch_id = o.id)
)"""

# Add a row's figures to what a pair has: tasks add up, the first is the earlier, the
# last the later (a NULL ``open_*`` time is no time: the other one stands).
_MERGE = """
ON CONFLICT (person_id, other_id) DO UPDATE SET
    tasks = acquaintance.tasks + excluded.tasks,
    first_seen = CASE WHEN excluded.first_seen < acquaintance.first_seen
        THEN excluded.first_seen ELSE acquaintance.first_seen END,
    last_seen = CASE WHEN excluded.last_seen > acquaintance.last_seen
        THEN excluded.last_seen ELSE acquaintance.last_seen END,
    open_tasks = acquaintance.open_tasks + excluded.open_tasks,
    open_first_seen = CASE
        WHEN acquaintance.open_first_seen IS NULL OR excluded.open_first_seen
            < acquaintance.open_first_seen
        THEN excluded.open_first_seen ELSE acquaintance.open_first_seen END,
    open_last_seen = CASE
        WHEN acquaintance.open_last_seen IS NULL OR excluded.open_last_seen
            > acquaintance.open_last_seen
        THEN excluded.open_last_seen ELSE acquaintance.open_last_seen END
"""

_COLUMNS = """INSERT INTO acquaintance (person_id, other_id, tasks, first_seen, last_seen,
    open_tasks, open_first_seen, open_last_seen)"""

# Every ordered pair of the members of the branch of message ``:message_id``, merged in.
_PAIRS_OF_MESSAGE = f"""FROM message m
JOIN branch br ON br.id = m.branch_id
JOIN branchmember a ON a.branch_id = m.branch_id
JOIN branchmember b ON b.branch_id = m.branch_id AND b.person_id <> a.person_id
WHERE m.id = :message_id
{_MERGE}"""


def _elsewhere(a: str, b: str, visible: bool) -> str:
    return _SHARED_ELSEWHERE.format(a=a, b=b, visible="AND NOT o.hidden" if visible else "")


# A new message: every ordered pair of the branch's members has talked there now.  The
# task is new to a pair unless another of its messages in a branch they share exists.
# Worked out in steps, each materialized (SQLite 3.35+, PostgreSQL 12+), so that every
# database reads it the one cheap way, from the message, whatever its statistics say: the
# message and its branch (``this``); the task's branches with another message
# (``talked``, a few); the pairs of their members, and whether one of those branches is
# visible (``shared``).  Planned as one statement with a correlated test a pair, it cost
# PostgreSQL 2.5 ms of planning a mail, and on a young database (before its first
# ANALYZE) a plan that read every branch of each team member: 10 ms a mail.  The pairs
# are written in order, so that two workers take their rows' locks in the same order.
_NOTE_MESSAGE = Prepared(
    text(
        f"""WITH this AS MATERIALIZED (
    SELECT m.id, m.sent_at, br.id AS branch_id, br.task_id, br.hidden
    FROM message m JOIN branch br ON br.id = m.branch_id
    WHERE m.id = :message_id
), talked AS MATERIALIZED (
    SELECT o.id, o.hidden FROM this JOIN branch o ON o.task_id = this.task_id
    WHERE EXISTS (SELECT 1 FROM message n WHERE n.branch_id = o.id AND n.id <> this.id)
), shared AS MATERIALIZED (
    SELECT x.person_id AS p, y.person_id AS q,
        max(CASE WHEN t.hidden THEN 0 ELSE 1 END) AS visible
    FROM talked t  -- (the unary +: SQLite reads the few branches first, not every member)
    JOIN branchmember x ON x.branch_id = +t.id
    JOIN branchmember y ON y.branch_id = +t.id AND y.person_id <> x.person_id
    GROUP BY x.person_id, y.person_id
)
{_COLUMNS}
SELECT a.person_id, b.person_id,
    CASE WHEN s.p IS NULL THEN 1 ELSE 0 END,
    this.sent_at, this.sent_at,
    CASE WHEN this.hidden OR s.visible = 1 THEN 0 ELSE 1 END,
    CASE WHEN this.hidden THEN NULL ELSE this.sent_at END,
    CASE WHEN this.hidden THEN NULL ELSE this.sent_at END
FROM this
JOIN branchmember a ON a.branch_id = this.branch_id
JOIN branchmember b ON b.branch_id = this.branch_id AND b.person_id <> a.person_id
LEFT JOIN shared s ON s.p = a.person_id AND s.q = b.person_id
WHERE 1 = 1
ORDER BY a.person_id, b.person_id
{_MERGE}"""
    )
)

# The first message of a task: no pair can have talked in another of its branches (both
# EXISTS above are false), so every pair of the branch's members gains the task.
_NOTE_FIRST_MESSAGE = Prepared(
    text(
        f"""{_COLUMNS}
SELECT a.person_id, b.person_id, 1, m.sent_at, m.sent_at,
    CASE WHEN br.hidden THEN 0 ELSE 1 END,
    CASE WHEN br.hidden THEN NULL ELSE m.sent_at END,
    CASE WHEN br.hidden THEN NULL ELSE m.sent_at END
{_PAIRS_OF_MESSAGE}"""
    )
)

# A new member of a branch with messages: they and each other member now share what was
# said there.  The task is new to a pair unless they talked in another of its branches.
_NOTE_MEMBER = Prepared(
    text(
        f"""{_COLUMNS}
SELECT pair.p, pair.q,
    CASE WHEN {_elsewhere("pair.p", "pair.q", False)} THEN 0 ELSE 1 END,
    said.first_at, said.last_at,
    CASE WHEN br.hidden OR {_elsewhere("pair.p", "pair.q", True)}
        THEN 0 ELSE 1 END,
    CASE WHEN br.hidden THEN NULL ELSE said.first_at END,
    CASE WHEN br.hidden THEN NULL ELSE said.last_at END
FROM (
    SELECT CAST(:person_id AS INTEGER) AS p, person_id AS q FROM branchmember
    WHERE branch_id = :branch_id AND person_id <> :person_id
    UNION ALL
    SELECT person_id, CAST(:person_id AS INTEGER) FROM branchmember
    WHERE branch_id = :branch_id AND person_id <> :person_id
) pair
JOIN branch br ON br.id = :branch_id
JOIN (
    SELECT min(sent_at) AS first_at, max(sent_at) AS last_at FROM message
    WHERE branch_id = :branch_id
) said ON said.first_at IS NOT NULL
WHERE 1 = 1
{_MERGE}"""
    )
)

# Every pair's figures counted from the branches ({pairs}: which pairs).
_COUNT = """{columns}
SELECT a.person_id, b.person_id,
    count(DISTINCT br.task_id), min(said.first_at), max(said.last_at),
    count(DISTINCT CASE WHEN NOT br.hidden THEN br.task_id END),
    min(CASE WHEN NOT br.hidden THEN said.first_at END),
    max(CASE WHEN NOT br.hidden THEN said.last_at END)
FROM branchmember a
JOIN branchmember b ON b.branch_id = a.branch_id AND b.person_id <> a.person_id
JOIN branch br ON br.id = a.branch_id
JOIN (
    SELECT branch_id, min(sent_at) AS first_at, max(sent_at) AS last_at
    FROM message GROUP BY branch_id
) said ON said.branch_id = a.branch_id
WHERE {pairs}
GROUP BY a.person_id, b.person_id"""

_COUNT_ALL = text(_COUNT.format(columns=_COLUMNS, pairs="1 = 1"))
_COUNT_PAIRS = text(
    _COUNT.format(
        columns=_COLUMNS,
        pairs="((a.person_id = :person_id AND b.person_id IN :others)"
        " OR (b.person_id = :person_id AND a.person_id IN :others))",
    )
).bindparams(bindparam("others", expanding=True))
_FORGET_PAIRS = text(
    "DELETE FROM acquaintance WHERE (person_id = :person_id AND other_id IN :others)"
    " OR (other_id = :person_id AND person_id IN :others)"
).bindparams(bindparam("others", expanding=True))


def note_message(session: Session, message_id: int, first: bool = False) -> None:
    """The pairs of the message's branch have talked (call after inserting it); ``first``:
    it is the first message of its task.  On the driver's cursor (``db.Prepared``)."""
    statement = _NOTE_FIRST_MESSAGE if first else _NOTE_MESSAGE
    statement.run(session, {"message_id": message_id}).close()


def note_member(session: Session, branch_id: int, person_id: int) -> None:
    """The person just joined the branch: they share its messages with its members."""
    _NOTE_MEMBER.run(session, {"branch_id": branch_id, "person_id": person_id}).close()


def recount(session: Session, person_id: int | None = None, others: Iterable[int] = ()) -> None:
    """Count the pairs of ``person_id`` with each of ``others`` (both ways) again from the
    branches, e.g. after one left a branch; with no person, every pair of the database.

    For two team members this reads nearly every branch (a second at 1 M messages): for
    what is rare, such as removing a participant, never for what every mail does.
    """
    connection = session.connection()
    if person_id is None:
        connection.execute(text("DELETE FROM acquaintance"))
        connection.execute(_COUNT_ALL)
        return
    ids = sorted(set(others) - {person_id})
    if ids:
        values = {"person_id": person_id, "others": ids}
        connection.execute(_FORGET_PAIRS, values)
        connection.execute(_COUNT_PAIRS, values)
