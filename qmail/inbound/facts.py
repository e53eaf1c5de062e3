"""What routing needs to know of the database: the threads a mail answers, the task its
subject names, the branches and people its reply addresses name, and its sender.

Read in as few statements as the questions allow (one for the threads and the task, one
for the branches and their members), because every mail asks them.  Functions take the
``Session`` first and never write.  The same statements run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import String, bindparam, cast, func, literal, null, union_all
from sqlmodel import Session, col, select

from qmail import models
from qmail.config import Settings
from qmail.core.mail import BranchFacts, Known, Mail, Recipient, ReplyTarget
from qmail.db import Prepared
from qmail.outbound.outbox import sent_text
from qmail.people import LOOK_UP, Team, find_person
from qmail.threads.branches import find_team_branch

_RECEIVED, _SENT, _NAMED = 0, 1, 2


def known_for(
    session: Session,
    mail: Mail,
    recipients: tuple[Recipient, ...],
    number: int | None,
    settings: Settings,
    sender_check: str = "none",
    sender: models.Person | None = LOOK_UP,
) -> Known:
    """The facts ``route_mail`` needs about this mail's thread, reply addresses and sender.

    ``sender``: the sender's row as the caller found it (``None``: qmail has not met them).
    """
    targets = [recipient for recipient in recipients if isinstance(recipient, ReplyTarget)]
    answered, named = _thread_rows(session, mail, number)
    wanted = {branch_id for _, branch_id in answered} | {target.branch_id for target in targets}
    facts = branch_facts(session, wanted | set(named.values()))
    team_branches = _team_branches(session, targets, facts)
    facts |= branch_facts(session, set(team_branches.values()) - facts.keys())
    email = mail.sender.email if mail.sender is not None else ""
    if sender is LOOK_UP:
        sender = find_person(session, email) if email else None
    team = Team.of(settings)
    on_team = team.includes(sender) if sender is not None else team.by_address(email)
    domain = settings.mail.domain.lower()
    return Known(
        {message_id: facts[branch_id] for message_id, branch_id in answered},
        {n: facts[branch_id] for n, branch_id in named.items()},
        frozenset({email} if email and on_team else ()),
        own_domain=domain,
        own_addresses=frozenset(own_addresses(settings)),
        loop_marker=domain,
        by_branch={t.branch_id: facts[t.branch_id] for t in targets if t.branch_id in facts},
        team_branch_of={task_id: facts[b] for task_id, b in team_branches.items()},
        people=_people(session, targets),
        sender_check=sender_check,
        intake=settings.mail.intake_addresses[0],
    )


def _thread_rows(
    session: Session, mail: Mail, number: int | None
) -> tuple[list[tuple[str, int]], dict[int, int]]:
    """In one statement: the branch of each stored message this mail's In-Reply-To and
    References name (mail we received, then the notifications we sent, one Message-ID per
    recipient), and the main branch of the task a ``[#N]`` subject names."""
    ids = [i for i in (mail.in_reply_to, *mail.references) if i]
    if not ids and number is None:
        return [], {}
    statement = _thread_statement(bool(ids), number is not None)
    rows = sorted(statement.read(session, {"ids": ids, "number": number}), key=lambda row: row[0])
    # (received, then sent: for a Message-ID in both, the notification's branch wins)
    answered = [(m, b) for kind, m, b in rows if kind != _NAMED and b]
    named = [b for kind, _, b in rows if kind == _NAMED and b is not None]
    return answered, ({number: named[0]} if named and number is not None else {})


@functools.cache
def _thread_statement(answers: bool, names: bool) -> Prepared:
    """``_thread_rows``' statement, built once for each of its shapes: with the
    Message-IDs ``:ids`` the mail answers, with the task ``:number`` its subject names."""
    parts: list[Any] = []
    if answers:
        ids: Any = bindparam("ids", expanding=True)
        parts.append(
            select(literal(_RECEIVED), models.Message.message_id, models.Message.branch_id).where(
                col(models.Message.message_id).in_(ids)
            )
        )
        parts.append(
            select(literal(_SENT), models.Outbox.message_id, models.Outbox.branch_id).where(
                col(models.Outbox.message_id).in_(ids), col(models.Outbox.branch_id).is_not(None)
            )
        )
    if names:  # the task's main branch: its first branch that is not hidden
        parts.append(
            select(literal(_NAMED), cast(null(), String), func.min(models.Branch.id))
            .join(models.Task, col(models.Task.id) == models.Branch.task_id)
            .where(models.Task.number == bindparam("number"), col(models.Branch.hidden).is_(False))
        )
    return Prepared(union_all(*parts))


def _team_branches(
    session: Session, targets: list[ReplyTarget], facts: dict[int, BranchFacts]
) -> dict[int, int]:
    """For private reply addresses of a main discussion: its task's team branch, if open."""
    found: dict[int, int] = {}  # task id -> its team branch's id
    for target in targets:
        branch = facts.get(target.branch_id)
        if target.private and branch is not None and not branch.hidden:
            team_branch = find_team_branch(session, branch.task_id)
            if team_branch is not None and team_branch.id is not None:
                found[branch.task_id] = team_branch.id
    return found


def _people(session: Session, targets: list[ReplyTarget]) -> dict[int, str]:
    """The address of each person a reply address names, when they exist."""
    people: dict[int, str] = {}
    for target in targets:
        person = session.get(models.Person, target.person_id)
        if person is not None:
            people[target.person_id] = person.email
    return people


# Built once, run on the driver's cursor (``db.Prepared``): every mail asks them.
_SENT_TEXTS = Prepared(  # (a notification's text is its stencil's, filled in)
    select(models.Outbox.text, models.OutboxStencil.text, models.Outbox.personal)
    .select_from(models.Outbox)
    .outerjoin(models.OutboxStencil, col(models.OutboxStencil.id) == models.Outbox.stencil_id)
    .where(col(models.Outbox.message_id).in_(bindparam("ids", expanding=True)))
)
_BRANCH_FACTS = Prepared(
    select(models.Branch.id, models.Branch.task_id, models.Branch.hidden, models.Person.email)
    .select_from(models.Branch)
    .outerjoin(models.BranchMember, col(models.BranchMember.branch_id) == models.Branch.id)
    .outerjoin(models.Person, col(models.Person.id) == models.BranchMember.person_id)
    .where(col(models.Branch.id).in_(bindparam("ids", expanding=True)))
)


def sent_texts(session: Session, mail: Mail) -> list[str]:
    """The bodies of our notifications this mail answers (each went to one person only)."""
    ids = [i for i in (mail.in_reply_to, *mail.references) if i]
    if not ids:
        return []
    return [sent_text(*row) for row in _SENT_TEXTS.read(session, {"ids": ids})]


def own_addresses(settings: Settings) -> tuple[str, ...]:
    """The addresses our own mail comes from (besides ``reply+TOKEN``)."""
    domain = settings.mail.domain.lower()
    return (*settings.mail.intake_addresses, f"noreply@{domain}", f"bounces@{domain}")


def branch_facts(session: Session, branch_ids: set[int]) -> dict[int, BranchFacts]:
    """What routing needs to know of each of these branches, in one statement."""
    if not branch_ids:
        return {}
    rows = _BRANCH_FACTS.read(session, {"ids": list(branch_ids)})
    branches: dict[int, tuple[int, bool]] = {}
    members: dict[int, set[str]] = {}
    for branch_id, task_id, hidden, email in rows:
        branches[branch_id] = (task_id, bool(hidden))  # (SQLite gives 0 or 1)
        emails = members.setdefault(branch_id, set())
        if email is not None:
            emails.add(email)
    return {
        branch_id: BranchFacts(branch_id, task_id, hidden, frozenset(members[branch_id]))
        for branch_id, (task_id, hidden) in branches.items()
    }
