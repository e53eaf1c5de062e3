"""The pages around tasks: ``/activity``, ``/contacts``, ``/contacts/{email}``, ``/outbox``.

An edge only.  Who may see what is decided in the queries, by ``qmail.permissions``:
events on a branch the reader may not see are never loaded, so a hidden branch cannot
leak through the activity stream or a task's history.  The address book comes from
``qmail.contacts``.  Nothing here writes.  The task page itself is ``task_page.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy import exists, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from qmail import models
from qmail.contacts import Contact, address_book, contact
from qmail.errors import Forbidden, NotFound
from qmail.notify import list_outbox, outbox_subject
from qmail.permissions import Reader, branch_visible, task_visible

ACTIVITY_SIZE = 100
HISTORY_SIZE = 500
OUTBOX_SIZE = 200
NO_COMPANY = "No company"

# What each kind of event says, after the name of who did it.
_PHRASES = {
    "task_created": "opened the task",
    "message": "wrote a message",
    "tag": "tagged it",
    "untag": "removed the tag",
    "close": "closed it",
    "reopen": "reopened it",
    "assign": "assigned it to",
    "assign_refused": "could not assign it (not a team member):",
    "participant_added": "added",
    "branch_opened": "opened a hidden branch",
    "ignored": "ignored an automatic mail:",
    "held": "held a mail it may not post:",
}
# Kinds whose detail is an id or a repeat of the title, not something to show.
_QUIET_DETAIL = {"task_created", "message", "branch_opened"}
# Failed attempts at team commands, and mail held from someone who may not post, are the
# team's business.
_TEAM_ONLY_KINDS = ("assign_refused", "held")


@dataclass(frozen=True)
class EventLine:
    """One line of a task's history or of the activity stream, ready to show."""

    created_at: datetime
    number: int
    title: str
    who: str
    text: str
    hidden: bool
    message_id: int | None  # for ``message`` events: the anchor on the task page


def describe(kind: str, detail: str) -> str:
    """The words for an event: ``tagged it urgent``, ``closed it``…"""
    phrase = _PHRASES.get(kind, kind.replace("_", " "))
    if kind in _QUIET_DETAIL or not detail:
        return phrase
    return f"{phrase} {detail}"


def _events_statement(person: Reader) -> Any:
    """SELECT the events ``person`` may see, with their task, author and branch.

    An event on a branch counts only if the branch is visible to ``person``; an event
    without a branch belongs to the task and is visible with it.
    """
    branch = aliased(models.Branch)
    statement = (
        select(  # type: ignore[call-overload]  # sqlmodel types select() up to 4 columns
            models.Event,
            col(models.Task.number),
            col(models.Task.title),
            col(models.Person.name),
            col(models.Person.email),
            col(branch.hidden),
        )
        .join(models.Task, col(models.Task.id) == models.Event.task_id)
        .outerjoin(branch, col(branch.id) == models.Event.branch_id)
        .outerjoin(models.Person, col(models.Person.id) == models.Event.person_id)
        .where(task_visible(person))
        .where(or_(col(models.Event.branch_id).is_(None), branch_visible(person, branch)))
        .order_by(col(models.Event.created_at).desc(), col(models.Event.id).desc())
    )
    if not person.is_team:
        statement = statement.where(col(models.Event.kind).not_in(_TEAM_ONLY_KINDS))
    return statement


def _line(
    event: models.Event,
    number: int,
    title: str,
    name: str | None,
    email: str | None,
    hidden: bool | None,
) -> EventLine:
    """One row of ``_events_statement`` as a line; a message event links to its message."""
    message_id = int(event.detail) if event.kind == "message" and event.detail.isdigit() else None
    return EventLine(
        created_at=event.created_at,
        number=number,
        title=title,
        who=name or email or "qmail",
        text=describe(event.kind, event.detail),
        hidden=bool(hidden),
        message_id=message_id,
    )


def task_history(session: Session, person: Reader, task_id: int) -> list[EventLine]:
    """The latest events of one task that ``person`` may see, newest first."""
    statement = _events_statement(person).where(models.Event.task_id == task_id)
    return [_line(*row) for row in session.exec(statement.limit(HISTORY_SIZE))]


def activity(session: Session, person: Reader) -> list[EventLine]:
    """The latest events on every task and branch ``person`` may see, newest first."""
    statement = _events_statement(person).limit(ACTIVITY_SIZE)
    return [_line(*row) for row in session.exec(statement)]


def by_company(contacts: list[Contact]) -> list[tuple[str, list[Contact]]]:
    """Contacts grouped by company, companies in alphabetical order, "No company" last."""
    groups: dict[str | None, list[Contact]] = {}
    for found in contacts:
        groups.setdefault(found.company, []).append(found)
    named = sorted((company, people) for company, people in groups.items() if company)
    rest = [(NO_COMPANY, groups[None])] if None in groups else []
    return [(str(company), people) for company, people in named] + rest


def shared_tasks(session: Session, person: Reader, email: str) -> list[models.Task]:
    """The tasks where ``person`` and ``email`` talked in a branch ``person`` may see."""
    mine, theirs = aliased(models.BranchMember), aliased(models.BranchMember)
    other = aliased(models.Person)
    talked = exists(select(models.Message.id).where(models.Message.branch_id == models.Branch.id))
    statement = (
        select(models.Task)
        .join(models.Branch, col(models.Branch.task_id) == models.Task.id)
        .join(mine, col(mine.branch_id) == models.Branch.id)
        .join(theirs, col(theirs.branch_id) == models.Branch.id)
        .join(other, col(other.id) == theirs.person_id)
        .where(mine.person_id == person.id, other.email == email, talked)
        .where(branch_visible(person), task_visible(person))
        .distinct()
        .order_by(col(models.Task.updated_at).desc(), col(models.Task.id).desc())
    )
    return list(session.exec(statement).all())


@dataclass(frozen=True)
class OutboxLine:
    """One outbound mail as the outbox page shows it (without its bytes)."""

    created_at: datetime
    kind: str
    recipient: str
    subject: str
    state: str
    attempts: int
    last_error: str


def outbox_lines(session: Session, person: Reader) -> list[OutboxLine]:
    """The newest outbound mails ``person`` may know of."""
    rows = list_outbox(session, limit=OUTBOX_SIZE, reader=person)
    return [
        OutboxLine(
            row.created_at,
            row.kind,
            row.recipient,
            outbox_subject(row.raw),
            row.state,
            row.attempts,
            row.last_error,
        )
        for row in rows
    ]


class ReaderPages(Controller):
    @get("/activity", sync_to_thread=True)
    def activity_page(
        self, session: NamedDependency[Session], person: NamedDependency[Reader]
    ) -> Template:
        """What happened lately on the tasks and branches the reader may see."""
        lines = activity(session, person)
        return Template("activity.html", context={"person": person, "events": lines})

    @get("/contacts", sync_to_thread=True)
    def contacts_page(
        self, session: NamedDependency[Session], person: NamedDependency[Reader]
    ) -> Template:
        """The reader's address book, grouped by company."""
        groups = by_company(address_book(session, person))
        return Template("contacts.html", context={"person": person, "groups": groups})

    @get("/contacts/{email:str}", sync_to_thread=True)
    def contact_page(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        email: FromPath[str],
    ) -> Template:
        """One contact and the tasks shared with them; 404 for anyone not in the book."""
        found = contact(session, person, email) if len(email) <= 320 else None
        if found is None:
            raise NotFound(f"{email} is not one of your contacts")
        tasks = shared_tasks(session, person, found.email)
        context = {"person": person, "contact": found, "tasks": tasks}
        return Template("contact.html", context=context)

    @get("/outbox", sync_to_thread=True)
    def outbox_page(
        self, session: NamedDependency[Session], person: NamedDependency[Reader]
    ) -> Template:
        """Outbound mail and its delivery state, for the team (it names every recipient)."""
        if not person.is_team:
            raise Forbidden("the outbox is for the team")
        rows = outbox_lines(session, person)
        return Template("outbox.html", context={"person": person, "rows": rows})
