"""Posting: a routed mail, a page's form or an API call becomes a message in a branch.

Functions take the ``Session`` first and never commit: the caller owns the transaction
(one per inbound message, one per request).  The same statements run on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select
from sqlmodel import Session, col

from qmail import db, models
from qmail.config import Settings
from qmail.context import Context
from qmail.core.mail import Address, Attachment, Content, Ignore, Mail, NewTask, Reply
from qmail.core.secrets import scrub_secrets
from qmail.outbound import notifications
from qmail.outbound.outbox import new_message_id
from qmail.people import LOOK_UP, Team, get_person, is_ours
from qmail.threads import acquaintances
from qmail.threads.branches import add_copied, team_branch
from qmail.threads.commands import apply_commands
from qmail.threads.tasks import WRITE_EVENT, add_member, create_task, record_event, touch

WRITE_MESSAGE = insert(models.Message)  # (built once: see ``tasks.WRITE_EVENT``)
MESSAGE_COLUMNS = (
    "task_id",
    "branch_id",
    "author_id",
    "text",
    "quoted",
    "full_text",
    "subject",
    "message_id",
    "in_reply_to",
    "references",
    "source",
    "raw_mail_id",
    "sent_at",
)
_POST = db.Prepared(WRITE_MESSAGE.returning(col(models.Message.id)), MESSAGE_COLUMNS)


@dataclass(frozen=True)
class Incoming:
    """A mail ready to be filed: parsed and scrubbed, its ``content`` trimmed, and the id
    of the raw mail it came from."""

    mail: Mail
    content: Content
    raw_mail_id: int | None
    # The sender's row as routing found it (``None``: nobody), or ``people.LOOK_UP``.
    sender: models.Person | None = LOOK_UP


@dataclass(frozen=True)
class Posted:
    """What ``apply_route`` did: the task and, when a message was posted, the message.

    ``refused``: (address, why) copied in but not added; ``refused_commands``: command
    lines not carried out because the mail went to a hidden branch.  The author is told.
    """

    task_number: int | None
    message: models.Message | None = None
    refused: tuple[tuple[str, str], ...] = ()
    refused_commands: tuple[str, ...] = ()
    # The rows written, held so that the session's (weak) identity map keeps them and
    # the notify stage, in the same transaction, reads them without querying again.
    rows: tuple[object, ...] = ()

    @property
    def message_id(self) -> int | None:
        return self.message.id if self.message else None


def apply_route(
    session: Session,
    route: NewTask | Reply | Ignore,
    incoming: Incoming,
    settings: Settings,
    now: datetime,
) -> Posted:
    """Write what routing decided: a new task, a message in a branch, or an event."""
    if isinstance(route, Ignore):
        return _record_ignored(session, route, incoming.raw_mail_id, now)
    mail, content = incoming.mail, incoming.content
    team = Team.of(settings)
    task, branch, author = _thread_for(session, route, incoming, team, settings, now)
    reopen_for_client(session, task, branch, author, team, now)
    powers = route.proven and team.includes(author)
    ran, refused, refused_commands = _use_powers(
        session, task, branch, author, mail, content, powers, settings, now
    )
    text = content.text_for(ran)
    message = None
    if text or not ran:  # a mail of commands alone posts no empty message
        message = post_message(
            session,
            task,
            branch,
            author,
            text,
            settings,
            now,
            mail=mail,
            content=content,
            raw_mail_id=incoming.raw_mail_id,
            member=True,  # (``_thread_for`` made the author one)
            first=isinstance(route, NewTask),
        )
    touch(session, task, branch, now)
    rows = (task, branch, author)
    return Posted(task.number, message, refused, refused_commands, rows)


def _use_powers(
    session: Session,
    task: models.Task,
    branch: models.Branch,
    author: models.Person,
    mail: Mail,
    content: Content,
    powers: bool,
    settings: Settings,
    now: datetime,
) -> tuple[bool, tuple[tuple[str, str], ...], tuple[str, ...]]:
    """A team member's powers, for a mail proven to be theirs: commands and copying in.

    Commands change what the client sees (tags, status, assignee), so they are carried out
    only in the main discussion: sent into a hidden branch, they are left in the text and
    reported back.  Returns (commands ran, addresses refused, commands refused).
    """
    if not powers:
        return False, (), ()
    ran, refused_commands = False, tuple[str, ...]()
    if content.commands and branch.hidden:
        refused_commands = tuple(f"#{c.name} {c.argument}".strip() for c in content.commands)
    elif content.commands:
        apply_commands(session, task, author, content.commands, settings, now)
        task.updated_at = now  # tags and status are the task's, seen by all its readers
        ran = True
    refused = add_copied(session, branch, author, copied(mail, author, settings), settings, now)
    return ran, refused, refused_commands


def reopen_for_client(
    session: Session,
    task: models.Task,
    branch: models.Branch,
    author: models.Person,
    team: Team,
    now: datetime,
) -> None:
    """A client writing to a closed task reopens it: they are waiting for an answer.

    A team member's reply (a last word, a thank-you) leaves it closed; they reopen with
    ``#reopen`` if they mean to.  Only the public discussion counts (a client never
    writes anywhere else).
    """
    if task.status == "closed" and not branch.hidden and not team.includes(author):
        task.status = "open"
        record_event(session, task, "reopen", author, now, branch.id, "by replying")


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
    incoming: Incoming,
    team: Team,
    settings: Settings,
    now: datetime,
) -> tuple[models.Task, models.Branch, models.Person]:
    """The task, branch and author (the sender) a route names; a new task is created here."""
    if incoming.mail.sender is None:
        author = get_person(session, Address(f"unknown@{settings.mail.domain}"), now)
    else:  # (routing looked the sender up: a new address is not looked up again)
        author = get_person(session, incoming.mail.sender, now, incoming.sender)
    if isinstance(route, NewTask):
        task, branch = create_task(session, route, author, settings, now)
        return task, branch, author
    named, thread = _thread(session, route.branch_id)
    if route.via == "private" and not named.hidden:
        named = team_branch(session, thread, author, team, now)
    # (privately from a hidden branch's notification: that branch, it is the team's already)
    if named.hidden and not team.includes(author):  # routing holds these: a bug if seen
        raise PermissionError(f"{author.email} may not post to a hidden branch")
    assert named.id is not None and author.id is not None
    add_member(session, named.id, author.id, now)
    return thread, named, author


def _thread(session: Session, branch_id: int) -> tuple[models.Branch, models.Task]:
    """The branch and its task, read in one statement on the driver's cursor and held by
    the session (``db.held``: the objects it holds already, if it does)."""
    rows = _THREAD.read(session, {"branch_id": branch_id})
    if not rows:
        raise LookupError(f"branch {branch_id} does not exist")
    branch = dict(zip(_BRANCH_FIELDS, rows[0][: len(_BRANCH_FIELDS)], strict=True))
    task = dict(zip(_TASK_FIELDS, rows[0][len(_BRANCH_FIELDS) :], strict=True))
    return db.held(session, models.Branch, branch), db.held(session, models.Task, task)


_BRANCHES: Any = models.Branch.__table__  # type: ignore[attr-defined]
_TASKS: Any = models.Task.__table__  # type: ignore[attr-defined]
_BRANCH_FIELDS = tuple(column.key for column in _BRANCHES.columns)
_TASK_FIELDS = tuple(column.key for column in _TASKS.columns)
_THREAD = db.Prepared(
    select(*_BRANCHES.columns, *_TASKS.columns)
    .join_from(_BRANCHES, _TASKS, _TASKS.c.id == _BRANCHES.c.task_id)
    .where(_BRANCHES.c.id == bindparam("branch_id"))
)


def post_message(
    session: Session,
    task: models.Task,
    branch: models.Branch,
    author: models.Person,
    text: str,
    settings: Settings,
    now: datetime,
    *,
    source: str = "email",
    mail: Mail | None = None,
    content: Content | None = None,
    raw_mail_id: int | None = None,
    files: tuple[Attachment, ...] = (),
    member: bool = False,
    first: bool = False,
) -> models.Message:
    """The one way a message is written, from mail, a page or the API, as ``author``.

    The caller has checked that ``author`` may post to ``branch`` (routing for mail,
    ``access`` for the web); posting makes them a member, so they are told about what
    follows.  A sign-in link or reply address in the text is replaced, whatever its way
    in: it was made for one person.  ``mail`` (with its trimmed ``content``) gives what
    only mail has: the quoted part, threading headers, attachments; ``files`` are those
    of a message from the web.  ``member``: the caller made the author a member already;
    ``first``: the task was created for this message (it has no other).
    """
    assert task.id is not None and branch.id is not None and author.id is not None
    text = scrub_secrets(text)
    if not member:
        add_member(session, branch.id, author.id, now)
    values: dict[str, Any] = {
        "task_id": task.id,
        "branch_id": branch.id,
        "author_id": author.id,
        "text": text,
        "quoted": content.trimmed.quoted if content else "",
        "full_text": mail.text if mail else text,
        "subject": mail.subject if mail else task.title,
        "message_id": mail.message_id if mail else new_message_id(settings.mail.domain),
        "in_reply_to": (mail.in_reply_to or "") if mail else "",
        "references": " ".join(mail.references) if mail else "",
        "source": source,
        "raw_mail_id": raw_mail_id,
        "sent_at": (mail.date or now) if mail else now,
    }
    # On the driver's cursor, and the object built from what was written: nothing reads
    # it back.
    written = _POST.run(session, values)
    (message_id,) = written.fetchone()
    written.close()
    message: models.Message = db.built(models.Message, {"id": message_id, **values})
    for attachment in mail.attachments if mail else files:
        add_attachment(session, message_id, attachment)
    acquaintances.note_message(session, message_id, first)  # the address book's figures
    record_event(session, task, "message", author, now, branch.id, str(message_id))
    touch(session, task, branch, now)
    return message


def add_attachment(session: Session, message_id: int, attachment: Attachment) -> None:
    """Store one file of a message.

    On SQLite the row is inserted with room for the file, which is then written into it
    in place (``db.write_blob``): bound to the INSERT, a 20 MB file would be copied twice
    more inside SQLite.
    """
    in_place = bool(attachment.content) and db.is_sqlite(session)
    row = session.connection().execute(
        insert(models.Attachment).values(
            message_id=message_id,
            filename=attachment.filename,
            content_type=attachment.content_type,
            size=attachment.size,
            content_id=attachment.content_id,
            inline=attachment.inline,
            content=func.zeroblob(attachment.size) if in_place else attachment.content,
        )
    )
    if in_place:
        assert row.inserted_primary_key is not None
        (attachment_id,) = row.inserted_primary_key
        table = models.Attachment.__table__.name  # type: ignore[attr-defined]
        db.write_blob(session, table, "content", attachment_id, attachment.content)


def post_and_notify(
    session: Session,
    context: Context,
    task: models.Task,
    branch: models.Branch,
    author: models.Person,
    text: str,
    source: str,
    now: datetime,
    files: tuple[Attachment, ...] = (),
) -> models.Message:
    """Post from a page or the API and queue the mail to the branch's other readers
    (``files`` go with it).  A client's post reopens a closed task, as their mail does."""
    settings = context.settings
    reopen_for_client(session, task, branch, author, Team.of(settings), now)
    message = post_message(
        session, task, branch, author, text, settings, now, source=source, files=files
    )
    notifications.after_post(session, context, message, False, now)
    return message


def _record_ignored(
    session: Session, route: Ignore, raw_mail_id: int | None, now: datetime
) -> Posted:
    task_number = None
    task_id = None
    if route.branch_id is not None:
        branch = session.get(models.Branch, route.branch_id)
        task = session.get(models.Task, branch.task_id) if branch else None
        if task is not None:
            task_id, task_number = task.id, task.number
    session.connection().execute(
        WRITE_EVENT,
        {
            "task_id": task_id,
            "branch_id": route.branch_id,
            "person_id": None,
            "kind": "ignored",
            "detail": route.reason,
            "raw_mail_id": raw_mail_id,
            "created_at": now,
        },
    )
    return Posted(task_number)
