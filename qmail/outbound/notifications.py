"""The notify stage: who is told about a posted message, and what each of them gets.

Called in the transaction that posted the message, so the message and its notifications
commit together (the worker in ``qmail.outbound.delivery`` delivers them later).  Each recipient
gets their own mail: their own signed reply address, their own Message-ID, their own
magic link.  A mail that cannot be composed for one of them (an address the standard
library will not write) is queued ``failed`` with the reason; it never holds up the post or
the others' mail.  Confidentiality rests on one rule, enforced here and again in the query:
a notification goes only to the readers of the message's branch
(``access.branch_readers``: its members, and on a hidden branch only its team
members); quoted context comes from the same branch only.  Beyond those readers, team
members who chose all mail hear of every public branch, and those who chose the daily
digest get no mail per message (``told_of``).  ``after_post`` also queues what the
author is told back (``qmail.outbound.answers``).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, bindparam, func, or_
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import branch_readers
from qmail.config import Settings
from qmail.context import Context
from qmail.core.compose import (
    AttachmentNote,
    Notification,
    notification_bodies,
    notification_head,
)
from qmail.core.mail import Address
from qmail.core.stencil import (
    PLACEHOLDERS,
    File,
    Personal,
    Stencil,
    fill,
    fill_head,
    make_stencil,
    notification_block,
    personal_json,
)
from qmail.db import Prepared
from qmail.outbound import answers
from qmail.outbound.outbox import (
    new_message_id,
    not_composed,
    outbox_row,
)
from qmail.outbound.outgoing import WRITE_OUTBOX, Outgoing, write_stencil
from qmail.outbound.preferences import ALL, DIGEST
from qmail.people import Someone, Team

CONTEXT_LINES = 10
THREAD_DEPTH = 10  # earlier notifications named in References
# A message's files travel with its notifications up to this total (decoded; base64 makes
# it about 14 MB, which relays and mailboxes take); beyond, the mail names them only and
# the reader opens them in qmail.
CARRIED_FILES_LIMIT = 10 * 1024 * 1024


def root_id(task: models.Task, domain: str) -> str:
    """A Message-ID every notification of a task names first, so clients keep one thread."""
    return f"task-{task.number}@{domain}"


def notify_message(
    session: Session, out: Outgoing, message: models.Message, now: datetime, opens: bool = False
) -> int:
    """Queue a notification of ``message`` to every other member of its branch.

    The mail is composed once for the team and once for everybody else
    (``qmail.core.stencil``) and kept once (``OutboxStencil``); each recipient's outbox
    row holds only their own values, to fill it in when it is sent (their header block
    is written here once, so a copy that cannot be written fails now, with the reason).
    The outbox rows go in with one statement.  ``opens``: the message opened its task, so
    there is no thread to read yet (no earlier message, no earlier notification).
    """
    branch = session.get(models.Branch, message.branch_id)
    task = session.get(models.Task, message.task_id)
    author = session.get(models.Person, message.author_id)
    assert branch is not None and task is not None and author is not None
    session.flush()  # (read in Core: a name or choice changed in this transaction counts)
    recipients = [
        _Recipient(*row)
        for row in _recipients(branch.hidden, out.team).read(
            session, {"branch_id": branch.id, "author_id": author.id, "task_id": task.id}
        )
    ]
    if not recipients:
        return 0
    facts = _task_facts(session, task, branch, message, opens)
    person_ids = [person.id for person in recipients if person.id]
    earlier = {} if opens else _earlier_ids(session, task, person_ids)
    stencils: dict[bool, tuple[Stencil, int]] = {}  # (and the id it is kept under)
    files: tuple[File, ...] | None = None  # read once, for the first stencil
    rows = []
    drawn = os.urandom(32 * len(recipients))  # each one's link nonce and Message-ID
    for n, person in enumerate(recipients):
        assert person.id is not None
        on_team = out.team.includes(person)
        thread = earlier.get(person.id, [])
        personal = _personal(out, facts, person, on_team, thread, drawn[32 * n : 32 * n + 32])
        ids = (task.id, branch.id, message.id)
        row = outbox_row("notification", person, personal.message_id, now, *ids)
        try:
            if on_team not in stencils:
                files = facts.files(session) if files is None else files
                made = _kept_stencil(session, facts, author, on_team, out, now, stencils, files)
                stencils[on_team] = made
            stencil, row["stencil_id"] = stencils[on_team]
            fill_head(stencil, personal)  # (raises when this copy cannot be written)
            row["personal"] = personal_json(personal)
        except Exception as error:  # composing is pure: this one mail cannot be built
            row["state"], row["last_error"], row["stencil_id"] = (
                "failed",
                not_composed(error, personal.message_id, person.email),
                None,
            )
        rows.append(row)
    WRITE_OUTBOX.run_many(session, rows)
    return len(recipients)


class _Recipient(NamedTuple):
    id: int
    email: str
    name: str
    role: str | None


@functools.lru_cache(maxsize=16)
def _recipients(hidden: bool, team: Team) -> Prepared:
    """Who is told of a message by ``:author_id`` in branch ``:branch_id`` of task
    ``:task_id``: ``told_of``, but the author and those who muted the task.  Built once
    for public and for hidden branches (and each team), executed with the ids."""
    muted = select(models.Mute.person_id).where(models.Mute.task_id == bindparam("task_id"))
    return Prepared(
        select(models.Person.id, models.Person.email, models.Person.name, models.Person.role)
        .where(
            told_of(bindparam("branch_id"), hidden, team),
            models.Person.id != bindparam("author_id"),
            col(models.Person.id).not_in(muted),
        )
        .order_by(col(models.Person.id))
    )


def told_of(branch_id: Any, hidden: bool, team: Team) -> ColumnElement[bool]:
    """A condition on ``Person``: who is mailed about a message in branch ``branch_id``
    (an id or a bound parameter; ``hidden``: the branch is hidden), by choice.

    The branch's readers, and on a public branch also the team members who chose all
    mail; never those who chose the daily digest (``qmail.outbound.preferences``).
    """
    readers = branch_readers(branch_id, hidden, team)
    if not hidden:
        readers = or_(readers, and_(col(models.Person.notifications) == ALL, team.condition()))
    return and_(readers, col(models.Person.notifications) != DIGEST)


@dataclass(frozen=True)
class _Facts:
    task: models.Task
    branch: models.Branch
    message: models.Message
    tags: tuple[str, ...]
    context: str
    attachments: tuple[AttachmentNote, ...]
    opening_id: str

    def files(self, session: Session) -> tuple[File, ...]:
        """The message's files to carry, read when a stencil needs them: none when they
        are more than ``CARRIED_FILES_LIMIT`` together."""
        total = sum(note.size for note in self.attachments)
        if not self.attachments or total > CARRIED_FILES_LIMIT:
            return ()
        rows = session.exec(
            select(
                models.Attachment.filename,
                models.Attachment.content_type,
                models.Attachment.content,
            )
            .where(
                models.Attachment.message_id == self.message.id,
                col(models.Attachment.inline).is_(False),
            )
            .order_by(col(models.Attachment.id))
        ).all()
        return tuple(File(*row) for row in rows)


# The reads of every notification, built once and executed with their values on the
# driver's cursor (``db.Prepared``: their columns are numbers and text).
_TAGS = Prepared(
    select(models.Tag.name)
    .join(models.TaskTag, col(models.TaskTag.tag_id) == models.Tag.id)
    .where(models.TaskTag.task_id == bindparam("task_id"))
    .order_by(col(models.Tag.name))
)
_FILES_NOTED = Prepared(
    select(models.Attachment.filename, models.Attachment.content_type, models.Attachment.size)
    .where(
        models.Attachment.message_id == bindparam("message_id"),
        col(models.Attachment.inline).is_(False),
    )
    .order_by(col(models.Attachment.id))
)
_PREVIOUS_TEXT = Prepared(  # the message before, in the same branch
    select(models.Message.text)
    .where(
        models.Message.branch_id == bindparam("branch_id"),
        col(models.Message.id) < bindparam("message_id"),
    )
    .order_by(col(models.Message.id).desc())
    .limit(1)
)
_OPENING_ID = Prepared(
    select(models.Message.message_id)
    .where(models.Message.task_id == bindparam("task_id"))
    .order_by(col(models.Message.id))
    .limit(1)
)
_RECENT = (  # the notifications of a task to some people, numbered newest first for each
    select(
        col(models.Outbox.person_id).label("person_id"),
        col(models.Outbox.message_id).label("message_id"),
        col(models.Outbox.id).label("id"),
        func.row_number()
        .over(partition_by=col(models.Outbox.person_id), order_by=col(models.Outbox.id).desc())
        .label("recency"),
    )
    .where(
        models.Outbox.task_id == bindparam("task_id"),
        col(models.Outbox.person_id).in_(bindparam("person_ids", expanding=True)),
    )
    .subquery()
)
_EARLIER_IDS = Prepared(
    select(_RECENT.c.person_id, _RECENT.c.message_id)
    .where(_RECENT.c.recency <= THREAD_DEPTH)
    .order_by(_RECENT.c.id)
)


def _task_facts(
    session: Session,
    task: models.Task,
    branch: models.Branch,
    message: models.Message,
    opens: bool,
) -> _Facts:
    """What every copy says besides the message: tags, the context quoted, the files.

    A message that opened its task has no earlier message to quote and is the opening
    itself: only its tags and files are read.
    """
    # In Core: everything read here was written in Core (no unit of work to flush first).
    tags = [name for (name,) in _TAGS.read(session, {"task_id": task.id})]
    attachments = _FILES_NOTED.read(session, {"message_id": message.id})
    previous: str | None = None
    opening: str | None = message.message_id
    if not opens:
        found = _PREVIOUS_TEXT.read(session, {"branch_id": branch.id, "message_id": message.id})
        previous = found[0][0] if found else None
        first = _OPENING_ID.read(session, {"task_id": task.id})
        opening = first[0][0] if first else None
    return _Facts(
        task,
        branch,
        message,
        tuple(tags),
        "\n".join((previous or "").splitlines()[:CONTEXT_LINES]),
        tuple(AttachmentNote(*row) for row in attachments),
        opening or "",
    )


def _kept_stencil(
    session: Session,
    facts: _Facts,
    author: models.Person,
    on_team: bool,
    out: Outgoing,
    now: datetime,
    kept: dict[bool, tuple[Stencil, int]],
    files: tuple[File, ...],
) -> tuple[Stencil, int]:
    """``_stencil``, kept in the outbox (``OutboxStencil``): the stencil and its id.

    Filled in once with the placeholders, so that a body that cannot be written fails
    here (then every copy's would).  The second stencil of a message names the first
    one's files (the same files) rather than keeping them again.
    """
    made = {team: stencil for team, (stencil, _) in kept.items()}
    stencil = _stencil(facts, author, on_team, out, now, made, files)
    fill(stencil, PLACEHOLDERS)
    first = next(iter(kept.values()), None)
    files_from = first[1] if first is not None and stencil.files else None
    return stencil, write_stencil(session, stencil, files_from)


def _stencil(
    facts: _Facts,
    author: models.Person,
    on_team: bool,
    out: Outgoing,
    now: datetime,
    made: dict[bool, Stencil],
    files: tuple[File, ...],
) -> Stencil:
    """The stencil for the team or for everybody else; the header block of one ``made``
    already serves the other (only the bodies differ), and both carry the same ``files``.
    The block is written directly when its values are plain (``stencil.notification_block``)."""
    notification = _notification(facts, author, on_team, out.settings, now)
    text, html = notification_bodies(notification, out.env)
    if made:
        head: EmailMessage | bytes = next(iter(made.values())).fields
    else:
        head = notification_block(notification) or notification_head(notification)
    return make_stencil(head, text, html, files)


def _notification(
    facts: _Facts, author: models.Person, on_team: bool, settings: Settings, now: datetime
) -> Notification:
    """The notification of ``facts.message``, with placeholders for each recipient's own."""
    task, branch = facts.task, facts.branch
    domain = settings.mail.domain
    return Notification(
        number=task.number,
        title=task.title,
        status=task.status,
        tags=facts.tags,
        hidden=branch.hidden,
        author=Address(author.email, author.name or author.email),
        text=facts.message.text,
        context=facts.context,
        recipient=PLACEHOLDERS.recipient,
        recipient_is_team=on_team,
        reply_address=PLACEHOLDERS.reply_address,
        private_address=PLACEHOLDERS.private_address if on_team else None,
        magic_link=PLACEHOLDERS.magic_link,
        unsubscribe_url=PLACEHOLDERS.unsubscribe_url,
        message_id=PLACEHOLDERS.message_id,
        in_reply_to=None,
        references=(),
        domain=domain,
        team_name=settings.mail.team_name,
        loop_marker=domain,
        attachments=facts.attachments,
        date=now,
    )


def _personal(
    out: Outgoing,
    facts: _Facts,
    person: Someone,
    on_team: bool,
    earlier: list[str],
    drawn: bytes,
) -> Personal:
    """One recipient's own values: signed addresses and links, ids, their thread so far;
    ``drawn``: 32 random bytes, the sign-in link's nonce and the Message-ID's."""
    task, branch = facts.task, facts.branch
    assert task.id is not None and branch.id is not None and person.id is not None
    domain = out.settings.mail.domain
    return Personal(
        recipient=Address(person.email, person.name),
        reply_address=out.reply_address(branch.id, person.id),
        private_address=out.reply_address(branch.id, person.id, True) if on_team else None,
        magic_link=out.magic_link(person, task, drawn[:16]),
        unsubscribe_url=out.unsubscribe_url(task.id, person.id),
        message_id=new_message_id(domain, drawn[16:]),
        in_reply_to=earlier[-1] if earlier else (facts.opening_id or root_id(task, domain)),
        references=tuple(
            dict.fromkeys(i for i in (root_id(task, domain), facts.opening_id, *earlier) if i)
        ),
    )


def _earlier_ids(
    session: Session, task: models.Task, person_ids: list[int]
) -> dict[int, list[str]]:
    """Message-IDs of the last notifications each person got about this task, oldest first."""
    rows = _EARLIER_IDS.read(session, {"task_id": task.id, "person_ids": person_ids})
    earlier: dict[int, list[str]] = {}
    for person_id, message_id in rows:
        earlier.setdefault(person_id, []).append(message_id)
    return earlier


def after_post(
    session: Session,
    context: Context,
    message: models.Message | None,
    new_task: bool,
    now: datetime,
    refused: tuple[tuple[str, str], ...] = (),
    refused_commands: tuple[str, ...] = (),
) -> None:
    """Everything a posted message sets off by mail, queued in the posting transaction.

    ``message`` is the row just posted (as ``posting.post_message`` returned it, so it
    is not read again); ``new_task``: it opened its task.  ``refused`` (addresses not
    added) and ``refused_commands`` (commands not carried out) are reported back to the
    message's author.
    """
    if message is None:
        return
    out = Outgoing.for_store(context)
    notify_message(session, out, message, now, opens=new_task)
    if new_task:
        answers.acknowledge(session, out, message, now)
    if refused or refused_commands:
        answers.report_refused(session, out, message, refused, refused_commands, now)
