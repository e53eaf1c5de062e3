"""What inbound mail leaves in the database before it is filed: the raw bytes (kept once
per Message-ID, for replay), held and quarantined mail, and the facts routing needs.
Filing a routed mail into a thread is ``qmail.threads.posting``.

Functions take the ``Session`` first and never commit: the caller owns the transaction
(one per inbound message).  The same statements run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from qmail import models
from qmail.config import Settings
from qmail.core.mail import (
    BranchFacts,
    Envelope,
    Hold,
    Known,
    Mail,
    Recipient,
    ReplyTarget,
)
from qmail.core.parse import read_message_id
from qmail.core.storable import storable_text
from qmail.people import Team, on_team
from qmail.threads.branches import find_team_branch
from qmail.threads.tasks import main_branch

# --- raw mail ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Spooled:
    """One raw mail to keep: its bytes and its envelope, as the SMTP session gave them."""

    raw: bytes
    message_id: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    received_at: datetime

    @classmethod
    def of(cls, raw: bytes, envelope: Envelope, now: datetime) -> Spooled:
        """``raw`` as it came in with ``envelope``, named by its Message-ID."""
        return cls(raw, read_message_id(raw), envelope.mail_from, envelope.rcpt_tos, now)


@dataclass(frozen=True)
class Kept:
    """Where a spooled mail is: its row, and whether this delivery stored it (not a copy)."""

    raw_mail_id: int
    is_new: bool
    state: str


def save_raws(session: Session, mails: Sequence[Spooled]) -> list[Kept]:
    """Store each mail once per Message-ID, in order; several in one transaction.

    A Message-ID already stored (a sender retrying, the same mail delivered to two of our
    addresses, two processes receiving it at once) keeps the first copy: ``is_new`` is
    false and ``state`` tells what became of it.  ``INSERT … ON CONFLICT DO NOTHING`` on
    both databases, so a race with another process needs no retry.
    """
    kept: list[Kept] = []
    table = models.RawMail.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    for mail in mails:
        values = {
            "message_id": mail.message_id,
            "raw": mail.raw,
            "mail_from": storable_text(mail.mail_from)[:998],  # a NUL from MAIL FROM, say
            "rcpt_tos": json.dumps([storable_text(rcpt) for rcpt in mail.rcpt_tos]),
            "state": "pending",
            "received_at": mail.received_at,
        }
        insert = _insert(connection.dialect.name, table).values(**values)
        inserted = connection.execute(
            insert.on_conflict_do_nothing(index_elements=["message_id"]).returning(table.c.id)
        ).scalar()
        if inserted is not None:
            kept.append(Kept(inserted, True, "pending"))
            continue
        raw_mail_id, state = connection.execute(
            select(models.RawMail.id, models.RawMail.state).where(
                models.RawMail.message_id == mail.message_id
            )
        ).one()
        kept.append(Kept(raw_mail_id, False, state))
    return kept


def _insert(dialect: str, table: Table) -> Any:
    return postgresql_insert(table) if dialect == "postgresql" else sqlite_insert(table)


def save_raw(
    session: Session,
    raw: bytes,
    message_id: str,
    mail_from: str,
    rcpt_tos: tuple[str, ...],
    now: datetime,
) -> Kept:
    """``save_raws`` for one mail."""
    (kept,) = save_raws(session, [Spooled(raw, message_id, mail_from, rcpt_tos, now)])
    return kept


def claim(session: Session, raw_mail_id: int) -> bool:
    """Take one pending raw mail for this transaction; ``False`` if it is not there to take."""
    return claim_pending(session, 1, [raw_mail_id]) == [raw_mail_id]


def claim_pending(session: Session, limit: int, among: Sequence[int] | None = None) -> list[int]:
    """Take up to ``limit`` pending raw mails, oldest first (only ``among`` these), for
    this transaction.

    The first statement of a processing transaction: the mails move to ``processing``,
    and until that transaction ends nobody else takes them.  If it rolls back (a crash,
    an outage), they are ``pending`` again.  On PostgreSQL rows another worker holds are
    skipped (``SKIP LOCKED``), so any number of workers share the queue; on SQLite the
    claim waits for the one writer and then sees what that writer did.  So a mail is filed
    exactly once, however many workers look at it.
    """
    taken = (
        select(models.RawMail.id)
        .where(models.RawMail.state == "pending")
        .order_by(col(models.RawMail.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if among is not None:
        taken = taken.where(col(models.RawMail.id).in_(among))
    result = session.connection().execute(
        update(models.RawMail)
        .where(col(models.RawMail.id).in_(taken.scalar_subquery()))
        .values(state="processing")
        .returning(col(models.RawMail.id))
    )
    return sorted(raw_mail_id for raw_mail_id in result.scalars() if raw_mail_id is not None)


def quarantine(session: Session, raw_mail_id: int, reason: str, now: datetime) -> None:
    """Keep a mail that failed to process, with the reason, for ``qmail quarantine retry``."""
    raw_mail = session.get(models.RawMail, raw_mail_id)
    assert raw_mail is not None
    raw_mail.state = "quarantined"
    session.add(models.Quarantine(raw_mail_id=raw_mail_id, reason=reason, created_at=now))


def hold(session: Session, raw_mail: models.RawMail, held: Hold, now: datetime) -> None:
    """Keep a mail whose sender may not post where it went, and show it to the team.

    It is listed by ``qmail quarantine list`` with the reason, and, when the discussion it
    went to is known, noted on that branch (an event only its team members see).
    """
    raw_mail.state = "held"
    assert raw_mail.id is not None
    session.add(
        models.Quarantine(raw_mail_id=raw_mail.id, reason=f"held: {held.reason}", created_at=now)
    )
    branch = session.get(models.Branch, held.branch_id) if held.branch_id is not None else None
    if branch is not None:
        session.add(
            models.Event(
                task_id=branch.task_id,
                branch_id=branch.id,
                kind="held",
                detail=held.reason,
                raw_mail_id=raw_mail.id,
                created_at=now,
            )
        )


# --- what routing needs to know ---------------------------------------------------------


def known_for(
    session: Session,
    mail: Mail,
    recipients: tuple[Recipient, ...],
    number: int | None,
    settings: Settings,
    sender_check: str = "none",
) -> Known:
    """The facts ``route_mail`` needs about this mail's thread, reply addresses and sender."""
    targets = [recipient for recipient in recipients if isinstance(recipient, ReplyTarget)]
    by_branch, team_branch_of, people = _reply_address_facts(session, targets)
    sender = mail.sender.email if mail.sender is not None else ""
    sender_on_team = bool(sender) and on_team(session, Team.of(settings), sender)
    domain = settings.mail.domain.lower()
    return Known(
        _threads_answered(session, mail),
        _task_named(session, number),
        frozenset({sender} if sender_on_team else ()),
        own_domain=domain,
        own_addresses=frozenset(own_addresses(settings)),
        loop_marker=domain,
        by_branch=by_branch,
        team_branch_of=team_branch_of,
        people=people,
        sender_check=sender_check,
        intake=settings.mail.intake_addresses[0],
    )


def _threads_answered(session: Session, mail: Mail) -> dict[str, BranchFacts]:
    """The branch of each stored message this mail's In-Reply-To and References name:
    mail we received, and the notifications we sent (one Message-ID per recipient)."""
    ids = [i for i in (mail.in_reply_to, *mail.references) if i]
    if not ids:
        return {}
    received = select(models.Message.message_id, models.Message.branch_id).where(
        col(models.Message.message_id).in_(ids)
    )
    sent = select(models.Outbox.message_id, models.Outbox.branch_id).where(
        col(models.Outbox.message_id).in_(ids), col(models.Outbox.branch_id).is_not(None)
    )
    rows = [*session.exec(received).all(), *session.exec(sent).all()]
    facts = branch_facts(session, {branch_id for _, branch_id in rows if branch_id})
    return {message_id: facts[branch_id] for message_id, branch_id in rows if branch_id}


def _task_named(session: Session, number: int | None) -> dict[int, BranchFacts]:
    """The main branch of the task a ``[#N]`` subject names, if it exists."""
    if number is None:
        return {}
    task = session.exec(select(models.Task).where(models.Task.number == number)).first()
    if task is None:
        return {}
    main = main_branch(session, task.id)
    assert main.id is not None
    return {number: branch_facts(session, {main.id})[main.id]}


def _reply_address_facts(
    session: Session, targets: list[ReplyTarget]
) -> tuple[dict[int, BranchFacts], dict[int, BranchFacts], dict[int, str]]:
    """The branches and people reply addresses name; for private ones, the team branch."""
    people: dict[int, str] = {}
    branch_ids: set[int] = set()
    team_branches: dict[int, int] = {}  # task id -> its team branch's id
    for target in targets:
        person = session.get(models.Person, target.person_id)
        if person is not None:
            people[target.person_id] = person.email
        branch = session.get(models.Branch, target.branch_id)
        if branch is None or branch.id is None:
            continue
        branch_ids.add(branch.id)
        if target.private and not branch.hidden:
            found = find_team_branch(session, branch.task_id)
            if found is not None and found.id is not None:
                team_branches[branch.task_id] = found.id
    facts = branch_facts(session, branch_ids | set(team_branches.values()))
    by_branch = {branch_id: facts[branch_id] for branch_id in branch_ids}
    team_branch_of = {task_id: facts[branch_id] for task_id, branch_id in team_branches.items()}
    return by_branch, team_branch_of, people


def sent_texts(session: Session, mail: Mail) -> list[str]:
    """The bodies of our notifications this mail answers (each went to one person only)."""
    ids = [i for i in (mail.in_reply_to, *mail.references) if i]
    if not ids:
        return []
    return list(
        session.exec(select(models.Outbox.text).where(col(models.Outbox.message_id).in_(ids))).all()
    )


def own_addresses(settings: Settings) -> tuple[str, ...]:
    """The addresses our own mail comes from (besides ``reply+TOKEN``)."""
    domain = settings.mail.domain.lower()
    return (*settings.mail.intake_addresses, f"noreply@{domain}", f"bounces@{domain}")


def branch_facts(session: Session, branch_ids: set[int]) -> dict[int, BranchFacts]:
    """What routing needs to know of each of these branches, in two queries."""
    if not branch_ids:
        return {}
    members: dict[int, set[str]] = {branch_id: set() for branch_id in branch_ids}
    for branch_id, email in session.exec(
        select(models.BranchMember.branch_id, models.Person.email)
        .join(models.Person, col(models.Person.id) == models.BranchMember.person_id)
        .where(col(models.BranchMember.branch_id).in_(branch_ids))
    ):
        members[branch_id].add(email)
    branches = session.exec(select(models.Branch).where(col(models.Branch.id).in_(branch_ids)))
    return {
        branch.id: BranchFacts(
            branch.id, branch.task_id, branch.hidden, frozenset(members[branch.id])
        )
        for branch in branches
        if branch.id is not None
    }
