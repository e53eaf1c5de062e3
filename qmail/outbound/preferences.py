"""What mail each person wants: every task's public thread, only their own tasks, or a digest.

``mine`` (the default) is what qmail always did: a mail per message in the branches one
is a member of.  ``all`` adds every message of every task's public (not hidden) thread,
new tasks included; only team members may choose it, since a client must never hear of
other clients' tasks.  ``digest`` replaces the mails per message by one mail a day
(``qmail.outbound.digest``).  Who may read what never changes with the choice: that
stays with ``qmail.access``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from qmail import models
from qmail.errors import BadRequest

ALL, MINE, DIGEST = "all", "mine", "digest"
CHOICES = (ALL, MINE, DIGEST)


def choices_for(is_team: bool) -> tuple[str, ...]:
    """The choices open to a person: ``all`` is for the team only."""
    return CHOICES if is_team else (MINE, DIGEST)


def choose(
    session: Session, person: models.Person, choice: str, is_team: bool, now: datetime
) -> None:
    """Set ``person``'s choice (a choice not open to them is a ``BadRequest``).

    Choosing the digest starts it now: the first one, a day later, covers what is posted
    from here on, not the whole history.
    """
    if choice not in choices_for(is_team):
        raise BadRequest(f"not a notification setting for you: {choice!r}")
    if choice == DIGEST and person.notifications != DIGEST:
        person.digest_sent_at = now
        person.digest_after_id = last_message_id(session)
    person.notifications = choice
    session.add(person)


def last_message_id(session: Session) -> int:
    """The id of the newest message (0 when there is none): where a digest period ends."""
    newest = session.exec(select(func.max(col(models.Message.id)))).one()
    return newest or 0
