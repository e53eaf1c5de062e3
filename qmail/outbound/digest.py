"""The daily digest: one mail a day, instead of a mail per message, for those who chose it.

The worker (``qmail.roles.digester``) calls ``send_digests`` now and then.  A person's
digest is due a day after their last one (or after they chose it).  It lists what they
would have been told of by notifications in the meantime, under the same rules: the
messages of the branches they are a member of and may read (``access.branch_visible``:
a hidden branch only for its team members), not their own, not of the tasks they muted;
no tags (``qmail.core.digest``).

Exactly once, even with several workers on one database: a worker claims a person's
digest with one ``UPDATE … WHERE`` the digest is still due, and queues the mail in that
same transaction; a second worker's ``UPDATE`` finds it no longer due (PostgreSQL
re-reads the row once the first commits), so it queues nothing.  A day with no news
moves the period on and sends nothing.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from itertools import groupby

from sqlalchemy import ColumnElement, and_, func, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import Reader, branch_visible, reader_of
from qmail.context import Context
from qmail.core.digest import Digest, DigestLine, DigestTask, compose_digest, first_line
from qmail.core.mail import Address
from qmail.db import session_scope
from qmail.outbound.outbox import enqueue_composed, new_message_id
from qmail.outbound.outgoing import Outgoing
from qmail.outbound.preferences import DIGEST

log = logging.getLogger(__name__)
EVERY = timedelta(days=1)
PER_TASK = 10  # messages listed per task; the rest are counted
BATCH = 200  # people looked at per call


def send_digests(context: Context, now: datetime) -> int:
    """Queue every digest due at ``now``, each in its own transaction; how many were queued."""
    with Session(context.engine) as session:
        due = session.exec(
            select(models.Person.id, models.Person.digest_after_id)
            .where(_due(now))
            .order_by(col(models.Person.id))
            .limit(BATCH)
        ).all()
    return sum(_send_one(context, person_id, after, now) for person_id, after in due if person_id)


def _due(now: datetime) -> ColumnElement[bool]:
    sent_at = col(models.Person.digest_sent_at)
    return and_(
        col(models.Person.notifications) == DIGEST,
        or_(sent_at.is_(None), sent_at <= now - EVERY),
    )


def _send_one(context: Context, person_id: int, after: int | None, now: datetime) -> bool:
    """Claim one person's digest and queue it; False when another worker took it or there
    is no news.  ``after`` was read before the claim: a claim that succeeds proves that
    nobody moved it since."""
    newest = select(func.coalesce(func.max(col(models.Message.id)), 0)).scalar_subquery()
    with session_scope(context.engine) as session:
        # One statement, the write first: on SQLite a read before it could leave this
        # transaction on a snapshot another worker has written past.
        claimed = session.execute(
            update(models.Person)
            .where(col(models.Person.id) == person_id, _due(now))
            .values(digest_sent_at=now, digest_after_id=newest)
            .returning(col(models.Person.digest_after_id))
        ).first()
        person = session.get(models.Person, person_id) if claimed else None
        if person is None or claimed is None or after is None:
            return False
        upto = claimed[0]
        out = Outgoing.for_store(context)
        tasks = _news(session, out, reader_of(person, out.team), after, upto)
        if not tasks:
            return False
        domain = out.settings.mail.domain
        digest = Digest(
            recipient=Address(person.email, person.name),
            tasks=tasks,
            settings_url=f"{out.settings.web.base_url}/settings",
            message_id=new_message_id(domain),
            domain=domain,
            team_name=out.settings.mail.team_name,
            loop_marker=domain,
        )
        compose = functools.partial(compose_digest, digest, out.env)
        enqueue_composed(session, compose, digest.message_id, "digest", person, now)
    log.info("digest of %s task(s) queued for %s", len(tasks), person.email)
    return True


def _news(
    session: Session, out: Outgoing, reader: Reader, after: int, upto: int
) -> tuple[DigestTask, ...]:
    """The tasks with messages in ``(after, upto]`` that ``reader`` would have been told of."""
    author = aliased(models.Person)
    mine = select(col(models.BranchMember.branch_id)).where(
        col(models.BranchMember.person_id) == reader.id
    )
    muted = select(col(models.Mute.task_id)).where(col(models.Mute.person_id) == reader.id)
    rows = session.execute(
        select(models.Task, author.name, author.email, models.Message.text)
        .join(models.Branch, col(models.Branch.id) == models.Message.branch_id)
        .join(models.Task, col(models.Task.id) == models.Message.task_id)
        .join(author, col(author.id) == models.Message.author_id)
        .where(
            col(models.Message.id) > after,
            col(models.Message.id) <= upto,
            col(models.Message.author_id) != reader.id,
            col(models.Branch.id).in_(mine),
            branch_visible(reader),
            col(models.Task.id).not_in(muted),
        )
        .order_by(col(models.Task.number), col(models.Message.id))
    ).all()
    tasks = []
    for task, group in groupby(rows, key=lambda row: row[0]):
        lines = [DigestLine(name or email, first_line(text)) for _, name, email, text in group]
        link = out.magic_link(reader.person, task)
        tasks.append(
            DigestTask(
                task.number,
                task.title,
                link,
                tuple(lines[:PER_TASK]),
                max(0, len(lines) - PER_TASK),
            )
        )
    return tuple(tasks)
