"""The store stage: raw mail, people, tasks, branches and messages in the database.

Functions take the ``Session`` first and never commit: the caller owns the transaction
(one per inbound message).  The same statements run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from qmail import models
from qmail.config import Settings
from qmail.core.addresses import split_address
from qmail.core.mail import (
    Address,
    BranchFacts,
    Ignore,
    Known,
    Mail,
    NewTask,
    Reply,
    Trimmed,
)
from qmail.tokens import ReplyTokens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Store:
    """What the pipeline needs from the outside world: the database and the settings."""

    engine: Engine
    settings: Settings
    tokens: ReplyTokens


@dataclass(frozen=True)
class Posted:
    """What ``apply_route`` did: the task and, when a message was posted, the message."""

    task_number: int | None
    message_id: int | None = None


# --- raw mail ---------------------------------------------------------------------------


def save_raw(
    session: Session,
    raw: bytes,
    message_id: str,
    mail_from: str,
    rcpt_tos: tuple[str, ...],
    now: datetime,
) -> tuple[models.RawMail, bool]:
    """Store the raw bytes once per Message-ID; ``(row, False)`` for a duplicate."""
    existing = session.exec(
        select(models.RawMail).where(models.RawMail.message_id == message_id)
    ).first()
    if existing is not None:
        return existing, False
    row = models.RawMail(
        message_id=message_id,
        raw=raw,
        mail_from=mail_from,
        rcpt_tos=json.dumps(list(rcpt_tos)),
        received_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # the same mail, delivered at the same moment by another process
        existing = session.exec(
            select(models.RawMail).where(models.RawMail.message_id == message_id)
        ).one()
        return existing, False
    return row, True


def quarantine(session: Session, raw_mail_id: int, reason: str, now: datetime) -> None:
    """Keep a mail that failed to process, with the reason, for ``qmail quarantine retry``."""
    raw_mail = session.get(models.RawMail, raw_mail_id)
    assert raw_mail is not None
    raw_mail.state = "quarantined"
    session.add(models.Quarantine(raw_mail_id=raw_mail_id, reason=reason, created_at=now))


# --- people -----------------------------------------------------------------------------


def is_team_address(email: str, settings: Settings) -> bool:
    return split_address(email)[1] in settings.mail.team_domains


def get_person(
    session: Session, address: Address, settings: Settings, now: datetime
) -> models.Person:
    """The person with this address, created on first sight; a missing name is filled in."""
    email = address.email.lower()
    person = session.exec(select(models.Person).where(models.Person.email == email)).first()
    if person is None:
        person = models.Person(
            email=email,
            name=address.name,
            is_team=is_team_address(email, settings),
            created_at=now,
        )
        session.add(person)
        session.flush()
    elif address.name and not person.name:
        person.name = address.name
    return person


def _is_ours(email: str, settings: Settings) -> bool:
    return split_address(email)[1] == settings.mail.domain.lower()


# --- what routing needs to know ---------------------------------------------------------


def known_for(session: Session, mail: Mail, number: int | None, settings: Settings) -> Known:
    """The facts ``route_mail`` needs about this mail's thread, sender and subject."""
    ids = [i for i in (mail.in_reply_to, *mail.references) if i]
    by_message_id: dict[str, BranchFacts] = {}
    if ids:
        rows = session.exec(
            select(models.Message.message_id, models.Message.branch_id).where(
                col(models.Message.message_id).in_(ids)
            )
        ).all()
        for message_id, branch_id in rows:
            by_message_id[message_id] = branch_facts(session, branch_id)
    by_number: dict[int, BranchFacts] = {}
    if number is not None:
        task = session.exec(select(models.Task).where(models.Task.number == number)).first()
        if task is not None:
            by_number[number] = branch_facts(session, main_branch(session, task.id).id)
    team = set()
    if mail.sender is not None:
        person = session.exec(
            select(models.Person).where(models.Person.email == mail.sender.email)
        ).first()
        if (person and person.is_team) or is_team_address(mail.sender.email, settings):
            team.add(mail.sender.email)
    return Known(by_message_id, by_number, frozenset(team))


def branch_facts(session: Session, branch_id: int) -> BranchFacts:
    branch = session.get(models.Branch, branch_id)
    assert branch is not None
    emails = session.exec(
        select(models.Person.email)
        .join(models.BranchMember, col(models.BranchMember.person_id) == models.Person.id)
        .where(models.BranchMember.branch_id == branch_id)
    ).all()
    return BranchFacts(branch.id, branch.task_id, branch.hidden, frozenset(emails))


def main_branch(session: Session, task_id: int | None) -> models.Branch:
    branch = session.exec(
        select(models.Branch)
        .where(models.Branch.task_id == task_id, col(models.Branch.hidden).is_(False))
        .order_by(col(models.Branch.id))
    ).first()
    assert branch is not None, f"task {task_id} has no main branch"
    return branch


# --- applying a route -------------------------------------------------------------------


def next_task_number(session: Session) -> int:
    """The next human task number; the row lock serializes concurrent writers."""
    result = session.execute(
        update(models.Counter)
        .where(col(models.Counter.name) == "task")
        .values(value=models.Counter.value + 1)
        .returning(models.Counter.value)
    )
    return int(result.scalar_one())


def add_member(session: Session, branch_id: int, person_id: int, now: datetime) -> None:
    if session.get(models.BranchMember, (branch_id, person_id)) is None:
        session.add(models.BranchMember(branch_id=branch_id, person_id=person_id, added_at=now))


def tag_task(session: Session, task_id: int, names: tuple[str, ...]) -> None:
    for name in names:
        tag = session.exec(select(models.Tag).where(models.Tag.name == name)).first()
        if tag is None:
            tag = models.Tag(name=name)
            session.add(tag)
            session.flush()
        if session.get(models.TaskTag, (task_id, tag.id)) is None:
            session.add(models.TaskTag(task_id=task_id, tag_id=tag.id))


def create_task(
    session: Session, route: NewTask, author: models.Person, settings: Settings, now: datetime
) -> tuple[models.Task, models.Branch]:
    """A new task with its main branch; the author and the triage team take part."""
    task = models.Task(
        number=next_task_number(session),
        title=route.title,
        created_by_id=author.id,
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    session.flush()
    branch = models.Branch(task_id=task.id, hidden=False, created_at=now)
    session.add(branch)
    session.flush()
    tag_task(session, task.id, route.tags)
    add_member(session, branch.id, author.id, now)
    for person in triage_team(session, settings, now):
        add_member(session, branch.id, person.id, now)
    session.add(
        models.Event(
            task_id=task.id,
            branch_id=branch.id,
            person_id=author.id,
            kind="task_created",
            detail=task.title,
            created_at=now,
        )
    )
    return task, branch


def triage_team(session: Session, settings: Settings, now: datetime) -> list[models.Person]:
    """``mail.triage``, or when it is empty every team member qmail knows."""
    if settings.mail.triage:
        return [
            get_person(session, Address(email), settings, now) for email in settings.mail.triage
        ]
    return list(session.exec(select(models.Person).where(col(models.Person.is_team))).all())


def apply_route(
    session: Session,
    route: NewTask | Reply | Ignore,
    mail: Mail,
    trimmed: Trimmed,
    raw_mail: models.RawMail,
    settings: Settings,
    now: datetime,
) -> Posted:
    """Write what routing decided: a new task, a message in a branch, or an event."""
    for address in (*mail.to, *mail.cc):
        if not _is_ours(address.email, settings):
            get_person(session, address, settings, now)
    if isinstance(route, Ignore):
        return _record_ignored(session, route, raw_mail, now)
    sender = mail.sender or Address(f"unknown@{settings.mail.domain}")
    if isinstance(route, NewTask):
        author = get_person(session, sender, settings, now)
        task, branch = create_task(session, route, author, settings, now)
    else:
        branch = session.get(models.Branch, route.branch_id)
        if branch is None:
            raise LookupError(f"branch {route.branch_id} does not exist")
        task = session.get(models.Task, branch.task_id)
        assert task is not None
        if route.author_id is not None:
            author = session.get(models.Person, route.author_id)
            if author is None:
                raise LookupError(f"person {route.author_id} does not exist")
        else:
            author = get_person(session, sender, settings, now)
        if route.via == "private":
            branch = team_branch(session, task, author, now)
        add_member(session, branch.id, author.id, now)
        task.updated_at = now
    message = _add_message(session, task, branch, author, mail, trimmed, raw_mail, now)
    raw_mail.state = "done"
    return Posted(task.number, message.id)


def team_branch(
    session: Session, task: models.Task, author: models.Person, now: datetime
) -> models.Branch:
    """The task's hidden team branch, opened on first use; only team members may."""
    if not author.is_team:
        raise PermissionError(f"{author.email} is not a team member")
    branch = session.exec(
        select(models.Branch)
        .where(models.Branch.task_id == task.id, col(models.Branch.hidden).is_(True))
        .order_by(col(models.Branch.id))
    ).first()
    if branch is None:
        parent = main_branch(session, task.id)
        branch = models.Branch(task_id=task.id, hidden=True, parent_id=parent.id, created_at=now)
        session.add(branch)
        session.flush()
        session.add(
            models.Event(
                task_id=task.id,
                branch_id=branch.id,
                person_id=author.id,
                kind="branch_opened",
                created_at=now,
            )
        )
    return branch


def _add_message(
    session: Session,
    task: models.Task,
    branch: models.Branch,
    author: models.Person,
    mail: Mail,
    trimmed: Trimmed,
    raw_mail: models.RawMail,
    now: datetime,
) -> models.Message:
    message = models.Message(
        task_id=task.id,
        branch_id=branch.id,
        author_id=author.id,
        text=trimmed.text,
        quoted=trimmed.quoted,
        full_text=mail.text,
        subject=mail.subject,
        message_id=mail.message_id,
        in_reply_to=mail.in_reply_to or "",
        references=" ".join(mail.references),
        source="email",
        raw_mail_id=raw_mail.id,
        sent_at=mail.date or now,
    )
    session.add(message)
    session.flush()
    for attachment in mail.attachments:
        session.add(
            models.Attachment(
                message_id=message.id,
                filename=attachment.filename,
                content_type=attachment.content_type,
                size=attachment.size,
                content_id=attachment.content_id,
                inline=attachment.inline,
                content=attachment.content,
            )
        )
    session.add(
        models.Event(
            task_id=task.id,
            branch_id=branch.id,
            person_id=author.id,
            kind="message",
            detail=str(message.id),
            created_at=now,
        )
    )
    return message


def _record_ignored(
    session: Session, route: Ignore, raw_mail: models.RawMail, now: datetime
) -> Posted:
    raw_mail.state = "ignored"
    task_number = None
    task_id = None
    if route.branch_id is not None:
        branch = session.get(models.Branch, route.branch_id)
        task = session.get(models.Task, branch.task_id) if branch else None
        if task is not None:
            task_id, task_number = task.id, task.number
    session.add(
        models.Event(
            task_id=task_id,
            branch_id=route.branch_id,
            kind="ignored",
            detail=route.reason,
            raw_mail_id=raw_mail.id,
            created_at=now,
        )
    )
    return Posted(task_number)
