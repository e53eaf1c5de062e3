"""Messages from the public contact form: kept until their address is confirmed, then filed
as the mail they stand for.

``submit`` keeps a checked message (``IntakeSubmission``) and queues the one mail an
unconfirmed address ever gets from us, the fixed confirmation request; at most
``intake.per_address_per_hour`` per address, ``intake.per_ip_per_hour`` per client IP and
``intake.per_hour`` in all, counted in the database, so every web process shares the
count.  ``confirm`` files the message through ``pipeline.accept`` as a mail from the
visitor to the first intake address, so the task opens exactly as if they had mailed it
(the contact, the acknowledgement, the team's notifications).  The mail's Message-ID is
fixed per submission: two confirmations, even at the same moment in two processes, file
it once.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from functools import cache
from typing import Any

from jinja2 import Environment
from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from qmail import models
from qmail.auth.signed import IntakeTokens
from qmail.config import IntakeSettings
from qmail.context import Context
from qmail.core.compose import IntakeRequest, compose_intake_request, mail_environment
from qmail.core.intake import IntakeForm, intake_mail, intake_message_id
from qmail.core.mail import Address, Envelope
from qmail.db import session_scope
from qmail.inbound.pipeline import accept
from qmail.outbound.outbox import enqueue, new_message_id
from qmail.resources import templates_dir

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=1)  # the rate limits count submissions this recent
SUBJECT_QUOTED = 60  # characters of the visitor's subject the confirmation request repeats


@dataclass(frozen=True)
class Limited:
    """Too many submissions lately: from this address, this IP, or everyone."""

    reason: str


def submit(
    session: Session,
    context: Context,
    tokens: IntakeTokens,
    form: IntakeForm,
    ip: str,
    now: datetime,
) -> Limited | None:
    """Keep ``form`` and queue its confirmation request, within the limits; commit."""
    intake = context.settings.intake
    limited = _limited(session, intake, form.email, ip, now - WINDOW)
    if limited is not None:
        return limited
    _forget_expired(session, now - max(WINDOW, timedelta(seconds=intake.confirm_ttl)))
    submission = models.IntakeSubmission(
        nonce=secrets.token_urlsafe(16),
        email=form.email,
        name=form.name,
        subject=form.subject,
        text=form.text,
        ip=ip[:64],
        created_at=now,
    )
    session.add(submission)
    session.flush()
    assert submission.id is not None
    link = confirm_url(context.settings.web.base_url, tokens.make(submission.id, submission.nonce))
    enqueue(session, _request_mail(context, form, link, tokens.ttl), "intake", _to(form), now)
    session.commit()
    log.info("intake submission %s kept, confirmation request queued", submission.id)
    return None


def confirm_url(base_url: str, token: str) -> str:
    """The address of a confirmation link: ``<base_url>/intake/confirm/<token>``."""
    return f"{base_url.rstrip('/')}/intake/confirm/{token}"


def read_submission(
    session: Session, tokens: IntakeTokens, token: str
) -> models.IntakeSubmission | None:
    """The submission a genuine, unexpired link names (confirmed already or not)."""
    found = tokens.read(token)
    if found is None:
        return None
    submission = session.get(models.IntakeSubmission, found.submission_id)
    if submission is None or not hmac.compare_digest(submission.nonce, found.nonce):
        return None
    return submission


def confirm(context: Context, submission: models.IntakeSubmission, now: datetime) -> None:
    """File the submission as the visitor's mail to the intake address, then record it.

    Raises ``TemporaryFailure`` when the database is unavailable: nothing is recorded and
    the link still works.
    """
    assert submission.id is not None
    settings = context.settings
    to = settings.mail.intake_addresses[0]
    form = IntakeForm(submission.email, submission.name, submission.subject, submission.text)
    message_id = intake_message_id(submission.id, submission.nonce, settings.mail.domain)
    raw = intake_mail(form, to, message_id, submission.created_at)
    outcome = accept(raw, Envelope(submission.email, (to,)), context, now)
    with session_scope(context.engine) as session:
        task_id = None
        if outcome.task_number is not None:
            number = models.Task.number == outcome.task_number
            task_id = session.exec(select(models.Task.id).where(number)).first()
        row = col(models.IntakeSubmission.id) == submission.id
        connection = session.connection()
        connection.execute(
            update(models.IntakeSubmission)
            .where(row, col(models.IntakeSubmission.confirmed_at).is_(None))
            .values(confirmed_at=now)
        )
        # A second, concurrent confirmation finds the mail filed already (a duplicate,
        # without its task): only the one that filed it names the task.
        if task_id is not None:
            connection.execute(update(models.IntakeSubmission).where(row).values(task_id=task_id))
    log.info("intake submission %s confirmed -> task %s", submission.id, outcome.task_number)


def _limited(
    session: Session, intake: IntakeSettings, email: str, ip: str, since: datetime
) -> Limited | None:
    """Whether one more submission since ``since`` would pass a limit, and which."""
    table = models.IntakeSubmission
    if _count_since(session, since, col(table.email) == email) >= intake.per_address_per_hour:
        return Limited("Too many messages from this address. Please try again in an hour.")
    if _count_since(session, since, col(table.ip) == ip) >= intake.per_ip_per_hour:
        return Limited("Too many messages from your network. Please try again in an hour.")
    if _count_since(session, since) >= intake.per_hour:
        return Limited("We are receiving too many messages. Please try again later.")
    return None


def _count_since(session: Session, since: datetime, *conditions: Any) -> int:
    statement = (
        select(func.count())
        .select_from(models.IntakeSubmission)
        .where(col(models.IntakeSubmission.created_at) >= since, *conditions)
    )
    return int(session.exec(statement).one())


def _forget_expired(session: Session, before: datetime) -> None:
    """Unconfirmed messages whose link has expired: nobody can confirm them any more."""
    session.connection().execute(
        delete(models.IntakeSubmission)
        .where(col(models.IntakeSubmission.confirmed_at).is_(None))
        .where(col(models.IntakeSubmission.created_at) < before)
    )


def _to(form: IntakeForm) -> models.Person:
    """The outbox's recipient: nobody we know yet (a person is made only on confirmation)."""
    return models.Person(email=form.email, name="")


@cache
def _mail_env() -> Environment:
    return mail_environment(templates_dir() / "mail")


def _request_mail(context: Context, form: IntakeForm, link: str, ttl: int) -> EmailMessage:
    domain = context.settings.mail.domain
    subject = form.subject
    if len(subject) > SUBJECT_QUOTED:
        subject = subject[: SUBJECT_QUOTED - 1].rstrip() + "…"
    request = IntakeRequest(
        recipient=Address(form.email, ""),
        confirm_link=link,
        subject_start=subject,
        ttl_minutes=max(1, ttl // 60),
        domain=domain,
        team_name=context.settings.mail.team_name,
        message_id=new_message_id(domain),
        loop_marker=domain,
        from_address=f"noreply@{domain}",
    )
    return compose_intake_request(request, _mail_env())
