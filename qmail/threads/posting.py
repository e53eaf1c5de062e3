"""Posting: a routed mail, a page's form or an API call becomes a message in a branch.

Functions take the ``Session`` first and never commit: the caller owns the transaction
(one per inbound message, one per request).  The same statements run on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from qmail import models
from qmail.config import Settings
from qmail.core.mail import Address, Content, Ignore, Mail, NewTask, Reply, Trimmed
from qmail.core.secrets import scrub_secrets
from qmail.outbound.outbox import new_message_id
from qmail.people import Team, get_person, is_ours
from qmail.threads.branches import add_copied, team_branch
from qmail.threads.commands import apply_commands
from qmail.threads.tasks import add_member, create_task, record_event, touch


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
        apply_commands(session, task, author, content.commands, settings, now)
    refused_commands: tuple[str, ...] = ()
    if powers and branch.hidden and content.commands:
        refused_commands = tuple(f"#{c.name} {c.argument}".strip() for c in content.commands)
    refused: tuple[tuple[str, str], ...] = ()
    if powers:
        refused = add_copied(session, branch, author, copied(mail, author, settings), settings, now)
    text = content.text_for(run_commands)
    message_id = None
    if text or not run_commands:  # a mail of commands alone posts no empty message
        message = _add_message(
            session, task, branch, author, mail, content.trimmed, text, raw_mail, now
        )
        message_id = message.id
    if run_commands:
        task.updated_at = now  # tags and status are the task's, seen by all its readers
    touch(task, branch, now)
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
        task, branch = create_task(session, route, author, settings, now)
        return task, branch, author
    branch = session.get(models.Branch, route.branch_id)
    if branch is None:
        raise LookupError(f"branch {route.branch_id} does not exist")
    task = session.get(models.Task, branch.task_id)
    assert task is not None
    if route.via == "private" and not branch.hidden:
        branch = team_branch(session, task, author, team, now)
    # (privately from a hidden branch's notification: that branch, it is the team's already)
    if branch.hidden and not team.includes(author):  # routing holds these: a bug if seen
        raise PermissionError(f"{author.email} may not post to a hidden branch")
    add_member(session, branch.id, author.id, now)
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
    record_event(session, task, "message", author, now, branch.id, str(message.id))
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
    add_member(session, branch.id, author.id, now)
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
    record_event(session, task, "message", author, now, branch.id, str(message.id))
    touch(task, branch, now)
    return message
