"""The store stage: raw mail, and applying a route: messages into task threads.

Functions take the ``Session`` first and never commit: the caller owns the transaction
(one per inbound message).  The same statements run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from qmail import models, threads
from qmail.config import Settings
from qmail.core.mail import (
    Address,
    BranchFacts,
    Content,
    Hold,
    Ignore,
    Known,
    Mail,
    NewTask,
    Recipient,
    Reply,
    ReplyTarget,
    Trimmed,
)
from qmail.core.secrets import scrub_secrets
from qmail.outbox import new_message_id
from qmail.people import Team, get_person, is_ours, on_team
from qmail.threads import find_team_branch, main_branch
from qmail.tokens import LinkTokens, ReplyTokens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Store:
    """What the pipeline needs from the outside world: the database and the settings."""

    engine: Engine
    settings: Settings
    tokens: ReplyTokens
    links: LinkTokens


@dataclass(frozen=True)
class Posted:
    """What ``apply_route`` did: the task and, when a message was posted, the message.

    ``refused``: (address, why) copied in but not added; ``refused_commands``: command
    lines not carried out because the mail went to a hidden branch.  The author is told.
    """

    task_number: int | None
    message_id: int | None = None
    refused: tuple[tuple[str, str], ...] = ()
    refused_commands: tuple[str, ...] = ()


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


def hold(session: Session, raw_mail: models.RawMail, held: Hold, now: datetime) -> None:
    """Keep a mail whose sender may not post where it went, and show it to the team.

    It is listed by ``qmail quarantine list`` with the reason, and, when the discussion it
    went to is known, noted on that branch (an event only its team members see).
    """
    raw_mail.state = "held"
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
    ids = [i for i in (mail.in_reply_to, *mail.references) if i]
    by_message_id: dict[str, BranchFacts] = {}
    if ids:
        # Mail we received, and the notifications we sent (one Message-ID per recipient).
        rows = [
            *session.exec(
                select(models.Message.message_id, models.Message.branch_id).where(
                    col(models.Message.message_id).in_(ids)
                )
            ).all(),
            *session.exec(
                select(models.Outbox.message_id, models.Outbox.branch_id).where(
                    col(models.Outbox.message_id).in_(ids),
                    col(models.Outbox.branch_id).is_not(None),
                )
            ).all(),
        ]
        for message_id, branch_id in rows:
            assert branch_id is not None
            by_message_id[message_id] = branch_facts(session, branch_id)
    by_number: dict[int, BranchFacts] = {}
    if number is not None:
        task = session.exec(select(models.Task).where(models.Task.number == number)).first()
        if task is not None:
            by_number[number] = branch_facts(session, main_branch(session, task.id).id)
    targets = [recipient for recipient in recipients if isinstance(recipient, ReplyTarget)]
    by_branch, team_branch_of, people = _reply_address_facts(session, targets)
    sender = mail.sender.email if mail.sender is not None else ""
    sender_on_team = bool(sender) and on_team(session, Team.of(settings), sender)
    domain = settings.mail.domain.lower()
    return Known(
        by_message_id,
        by_number,
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


def _reply_address_facts(
    session: Session, targets: list[ReplyTarget]
) -> tuple[dict[int, BranchFacts], dict[int, BranchFacts], dict[int, str]]:
    """The branches and people reply addresses name; for private ones, the team branch."""
    by_branch: dict[int, BranchFacts] = {}
    team_branch_of: dict[int, BranchFacts] = {}
    people: dict[int, str] = {}
    for target in targets:
        branch = session.get(models.Branch, target.branch_id)
        person = session.get(models.Person, target.person_id)
        if person is not None:
            people[target.person_id] = person.email
        if branch is None or branch.id is None:
            continue
        by_branch[branch.id] = branch_facts(session, branch.id)
        if target.private and not branch.hidden:
            found = find_team_branch(session, branch.task_id)
            if found is not None and found.id is not None:
                team_branch_of[branch.task_id] = branch_facts(session, found.id)
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


def branch_facts(session: Session, branch_id: int) -> BranchFacts:
    branch = session.get(models.Branch, branch_id)
    assert branch is not None
    emails = session.exec(
        select(models.Person.email)
        .join(models.BranchMember, col(models.BranchMember.person_id) == models.Person.id)
        .where(models.BranchMember.branch_id == branch_id)
    ).all()
    return BranchFacts(branch.id, branch.task_id, branch.hidden, frozenset(emails))


# --- applying a route -------------------------------------------------------------------


def apply_route(
    session: Session,
    route: NewTask | Reply | Ignore,
    mail: Mail,
    content: Content,
    raw_mail: models.RawMail,
    settings: Settings,
    now: datetime,
) -> Posted:
    """Write what routing decided: a new task, a message in a branch, or an event.

    A team member's powers (commands, copying people in) need a mail proven to be
    theirs (``route.proven``).  Commands change what the client sees (tags, status,
    assignee), so they are carried out only in the main discussion: sent into a hidden
    branch, they are left in the text and reported back to the author.
    """
    if isinstance(route, Ignore):
        return _record_ignored(session, route, raw_mail, now)
    team = Team.of(settings)
    task, branch, author = _thread_for(session, route, mail, team, settings, now)
    powers = route.proven and team.includes(author)
    run_commands = powers and not branch.hidden and bool(content.commands)
    if run_commands:
        threads.apply_commands(session, task, author, content.commands, settings, now)
    refused_commands: tuple[str, ...] = ()
    if powers and branch.hidden and content.commands:
        refused_commands = tuple(f"#{c.name} {c.argument}".strip() for c in content.commands)
    refused: tuple[tuple[str, str], ...] = ()
    if powers:
        refused = threads.add_copied(
            session, branch, author, copied(mail, author, settings), settings, now
        )
    text = content.text_for(run_commands)
    message_id = None
    if text or not run_commands:  # a mail of commands alone posts no empty message
        message = _add_message(
            session, task, branch, author, mail, content.trimmed, text, raw_mail, now
        )
        message_id = message.id
    if run_commands:
        task.updated_at = now  # tags and status are the task's, seen by all its readers
    threads.touch(task, branch, now)
    raw_mail.state = "done"
    return Posted(task.number, message_id, refused, refused_commands)


def copied(mail: Mail, author: models.Person, settings: Settings) -> list[Address]:
    """The people a mail was also sent to, apart from us and the author."""
    return [
        address
        for address in (*mail.to, *mail.cc)
        if not is_ours(address.email, settings) and address.email != author.email
    ]


def _thread_for(
    session: Session,
    route: NewTask | Reply,
    mail: Mail,
    team: Team,
    settings: Settings,
    now: datetime,
) -> tuple[models.Task, models.Branch, models.Person]:
    """The task, branch and author (the sender) a route names; a new task is created here."""
    sender = mail.sender or Address(f"unknown@{settings.mail.domain}")
    author = get_person(session, sender, now)
    if isinstance(route, NewTask):
        task, branch = threads.create_task(session, route, author, settings, now)
        return task, branch, author
    branch = session.get(models.Branch, route.branch_id)
    if branch is None:
        raise LookupError(f"branch {route.branch_id} does not exist")
    task = session.get(models.Task, branch.task_id)
    assert task is not None
    if route.via == "private" and not branch.hidden:
        branch = threads.team_branch(session, task, author, team, now)
    # (privately from a hidden branch's notification: that branch, it is the team's already)
    if branch.hidden and not team.includes(author):  # routing holds these: a bug if seen
        raise PermissionError(f"{author.email} may not post to a hidden branch")
    threads.add_member(session, branch.id, author.id, now)
    return task, branch, author


def _add_message(
    session: Session,
    task: models.Task,
    branch: models.Branch,
    author: models.Person,
    mail: Mail,
    trimmed: Trimmed,
    text: str,
    raw_mail: models.RawMail,
    now: datetime,
) -> models.Message:
    message = models.Message(
        task_id=task.id,
        branch_id=branch.id,
        author_id=author.id,
        text=text,
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
    threads.record_event(session, task, "message", author, now, branch.id, str(message.id))
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


def post_from_web(
    session: Session,
    task: models.Task,
    branch: models.Branch,
    author: models.Person,
    text: str,
    source: str,
    settings: Settings,
    now: datetime,
) -> models.Message:
    """A message written in the web UI or through the API, as ``author``.

    The caller has checked that ``author`` may see ``branch`` (``permissions``); posting
    makes them a member, so they are told about what follows.  A sign-in link or reply
    address pasted into the text is replaced, as in mail: it was made for one person.
    """
    assert branch.id is not None and author.id is not None
    text = scrub_secrets(text)
    threads.add_member(session, branch.id, author.id, now)
    message = models.Message(
        task_id=task.id,
        branch_id=branch.id,
        author_id=author.id,
        text=text,
        full_text=text,
        subject=task.title,
        message_id=new_message_id(settings.mail.domain),
        source=source,
        sent_at=now,
    )
    session.add(message)
    session.flush()
    threads.record_event(session, task, "message", author, now, branch.id, str(message.id))
    threads.touch(task, branch, now)
    return message
