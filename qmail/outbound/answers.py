"""What the author of a mail is told back: the acknowledgement of a new task and the
report of what was not done.

Both are queued in the transaction that posted the message, like its notifications
(``qmail.outbound.notifications``, whose ``after_post`` calls them), and both are composed
as pure values (``qmail.core.compose``): a mail that cannot be built is queued ``failed``
with the reason and holds nothing up.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from qmail import models
from qmail.core.compose import (
    Acknowledgement,
    Refusal,
    Refused,
    acknowledgement_bodies,
    acknowledgement_head,
    compose_refusal,
)
from qmail.core.headers import msg_id
from qmail.core.mail import Address
from qmail.core.stencil import Personal, acknowledgement_block, fill, make_stencil
from qmail.db import Prepared
from qmail.outbound.outbox import enqueue_composed, new_message_id, not_composed, outbox_row
from qmail.outbound.outgoing import WRITE_OUTBOX, Outgoing

_ACKNOWLEDGED = Prepared(  # an acknowledgement since ``:since``
    select(models.Outbox.id).where(
        models.Outbox.kind == "ack",
        models.Outbox.recipient == bindparam("recipient"),
        col(models.Outbox.created_at) > bindparam("since"),
    )
)


def acknowledge(session: Session, out: Outgoing, message: models.Message, now: datetime) -> None:
    """Tell an external sender who opened a task its number (RFC 3834: once a day at most).

    Composed like a notification (``qmail.core.stencil``): the headers through the
    standard library, the bodies encoded directly; a mail that cannot be built is
    queued ``failed`` with the reason.
    """
    author = session.get(models.Person, message.author_id)
    task = session.get(models.Task, message.task_id)
    assert author is not None and task is not None and author.id is not None
    if out.team.includes(author) or not out.settings.mail.acknowledge:
        return
    if _ACKNOWLEDGED.read(session, {"recipient": author.email, "since": now - timedelta(days=1)}):
        return
    domain = out.settings.mail.domain
    ack = Acknowledgement(
        number=task.number,
        title=task.title,
        recipient=Address(author.email, author.name),
        reply_address=out.reply_address(message.branch_id, author.id),
        magic_link=out.magic_link(author, task),
        message_id=new_message_id(domain),
        in_reply_to=message.message_id,
        domain=domain,
        team_name=out.settings.mail.team_name,
        loop_marker=domain,
        date=now,
    )
    personal = Personal(
        recipient=ack.recipient,
        reply_address=ack.reply_address,
        private_address=None,
        magic_link=ack.magic_link,
        unsubscribe_url="",
        message_id=ack.message_id,
        in_reply_to=msg_id(ack.in_reply_to, domain)[1:-1],  # as ``set_thread`` writes it
        references=(),
    )
    ids = (task.id, message.branch_id, message.id)
    row = outbox_row("ack", author, ack.message_id, now, *ids)
    try:
        text, html = acknowledgement_bodies(ack, out.env)
        head = acknowledgement_block(ack) or acknowledgement_head(ack)
        row["raw"], row["text"] = fill(make_stencil(head, text, html), personal)
    except Exception as error:  # composing is pure: this one mail cannot be built
        row["state"], row["last_error"] = (
            "failed",
            not_composed(error, ack.message_id, author.email),
        )
    WRITE_OUTBOX.run_many(session, [row])


def report_refused(
    session: Session,
    out: Outgoing,
    message: models.Message,
    refused: tuple[tuple[str, str], ...],
    refused_commands: tuple[str, ...],
    now: datetime,
) -> None:
    """Tell a team member what of their mail to a hidden branch was not done: copied
    addresses not added, commands not carried out."""
    author = session.get(models.Person, message.author_id)
    task = session.get(models.Task, message.task_id)
    assert author is not None and task is not None and author.id is not None
    domain = out.settings.mail.domain
    refusal = Refusal(
        number=task.number,
        title=task.title,
        recipient=Address(author.email, author.name),
        refused=tuple(Refused(email, reason) for email, reason in refused),
        commands=refused_commands,
        reply_address=out.reply_address(message.branch_id, author.id),
        message_id=new_message_id(domain),
        in_reply_to=message.message_id,
        domain=domain,
        team_name=out.settings.mail.team_name,
        loop_marker=domain,
    )
    compose = functools.partial(compose_refusal, refusal, out.env)
    ids = (task.id, message.branch_id, message.id)
    enqueue_composed(session, compose, refusal.message_id, "refusal", author, now, *ids)
