"""Opening a task from the web or the API: a team member writes first, to a client.

Mail opens a task when a client writes to the intake address; here the team writes first.
The task is opened as mail would open it (``create_task``: the author and the triage team
take part), the people it is addressed to join its public thread, and the first message
is posted and mailed to them like any other (``post_and_notify``), so each gets their own
signed reply address and their answer lands in the thread.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from qmail import models
from qmail.context import Context
from qmail.core.mail import Address, NewTask
from qmail.core.route import normalize_tag
from qmail.errors import BadRequest
from qmail.people import get_person, is_ours
from qmail.threads import posting
from qmail.threads.tasks import add_member, create_task, record_event

MAX_RECIPIENTS = 20


def open_task(
    session: Session,
    context: Context,
    author: models.Person,
    to: list[str],
    title: str,
    text: str,
    tags: list[str],
    source: str,
    now: datetime,
) -> tuple[models.Task, models.Message]:
    """A new task from ``author`` (a team member: the caller checks) to ``to``, with its
    first message ``text``; the addresses are already checked (``typed_address``)."""
    addresses = list(dict.fromkeys(to))
    if not addresses or len(addresses) > MAX_RECIPIENTS:
        raise BadRequest(f"a new task goes to 1 to {MAX_RECIPIENTS} addresses")
    ours = [email for email in addresses if is_ours(email, context.settings)]
    if ours:
        raise BadRequest(f"{ours[0]} is one of qmail's own addresses")
    names = tuple(dict.fromkeys(tag for tag in map(normalize_tag, tags) if tag))
    task, branch = create_task(session, NewTask(title, names), author, context.settings, now)
    session.flush()
    assert branch.id is not None
    for email in addresses:
        person = get_person(session, Address(email), now)
        assert person.id is not None
        add_member(session, branch.id, person.id, now)
        record_event(session, task, "participant_added", author, now, branch.id, email)
    message = posting.post_and_notify(session, context, task, branch, author, text, source, now)
    return task, message
