"""Database tables (SQLModel).  Tables only: the queries live beside their stage
(``inbound``, ``threads``, ``queries``).

The same schema runs on SQLite and PostgreSQL; ``qmail/migrations`` (Alembic) creates and
migrates it, and a test checks that the migrations match these classes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Computed,
    DateTime,
    Dialect,
    Index,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    literal_column,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A moment in time, stored in UTC and read back timezone-aware on every database.

    SQLite keeps no offset: a ``Date: … +0200`` stored as is would come back two hours
    off.  So every value is converted to UTC on the way in and marked UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: qmail stores aware times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _when(index: bool = False, nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), nullable=nullable, index=index)


class email_domain(FunctionElement[str]):
    """The domain of an address, in lower case: what follows its last ``@``, as
    ``core.addresses.split_address`` reads it.  Each database spells it its own way."""

    type = String()
    inherit_cache = True


@compiles(email_domain, "sqlite")
def _email_domain_sqlite(element: email_domain, compiler: Any, **kw: Any) -> str:
    # rtrim(email, <every character but @>) leaves everything up to the last @
    email = compiler.process(element.clauses, **kw)
    return f"lower(substr({email}, length(rtrim({email}, replace({email}, '@', ''))) + 1))"


@compiles(email_domain, "postgresql")
def _email_domain_postgresql(element: email_domain, compiler: Any, **kw: Any) -> str:
    email = compiler.process(element.clauses, **kw)
    return f"lower(reverse(split_part(reverse({email}), '@', 1)))"


class Person(SQLModel, table=True):
    """Someone qmail has met: a sender, a person a team member copied in, or the CLI's.

    ``role`` is an explicit choice (``team`` or ``external``, from ``qmail person set``);
    ``None`` follows ``mail.team_domains`` as the configuration says now.  Whether someone
    is on the team is never stored: ``qmail.people.Team`` works it out when asked.

    ``domain`` is computed by the database from ``email`` (whoever inserts the row), so
    the team's domains and the address book's companies are found through an index.
    """

    __table_args__ = (
        Index("ix_person_role_domain", "role", "domain"),
        Index("ix_person_domain_email", "domain", "email"),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    name: str = Field(default="", max_length=200)
    role: str | None = Field(default=None, max_length=20)
    domain: str | None = Field(
        default=None,
        sa_column=Column(String(320), Computed(email_domain(literal_column("email")))),
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    last_login_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    # What mail they want (``qmail.outbound.preferences``): ``all`` (team only), ``mine``
    # or ``digest``; a digest covers the messages after ``digest_after_id``, at most one a
    # day, the last taken at ``digest_sent_at``.
    notifications: str = Field(
        default="mine", max_length=20, sa_column_kwargs={"server_default": "mine"}
    )
    digest_sent_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    digest_after_id: int | None = None
    # The random part of their signed Atom feed link (``qmail.auth.feeds``); ``None``: no
    # feed link.  A new value makes the old link worthless.
    feed_nonce: str | None = Field(default=None, max_length=64)


class ApiToken(SQLModel, table=True):
    """A bearer token for the JSON API; only its SHA-256 is stored.

    Named by its owner (``/settings``); ``last_used_at`` is refreshed at most every few
    minutes; once ``revoked_at`` is set the token opens nothing.
    """

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    name: str = Field(default="", max_length=100, sa_column_kwargs={"server_default": ""})
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    last_used_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class SpentLink(SQLModel, table=True):
    """A magic link that was used, by its nonce: the primary key makes it work once.

    Two concurrent clicks both try to INSERT the nonce; the database lets one through.
    A row older than ``security.magic_link_ttl`` names a link that has expired anyway, so
    it may be deleted.
    """

    nonce: str = Field(primary_key=True, max_length=64)
    person_id: int = Field(foreign_key="person.id", index=True)
    spent_at: datetime = Field(default_factory=utcnow, sa_column=_when(index=True))


class WebSession(SQLModel, table=True):
    """A browser signed in by magic link; the cookie holds a secret, only its SHA-256 is here.

    Valid while not revoked (signing out, ``qmail session revoke``, the settings page) and
    not expired.  ``last_seen_at`` is refreshed every few minutes, not on every request.
    """

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_agent: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    expires_at: datetime = Field(sa_column=_when(index=True))
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    revoked_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class Counter(SQLModel, table=True):
    """Named counters (the next task number), bumped with UPDATE … RETURNING."""

    name: str = Field(primary_key=True, max_length=40)
    value: int = 0


class Task(SQLModel, table=True):
    """A task; lists show the newest activity first, by ``(updated_at, id)`` (indexed, with
    the status in front for the status filter), and page on from the last one shown."""

    __table_args__ = (
        Index("ix_task_updated", "updated_at", "id"),
        Index("ix_task_status_updated", "status", "updated_at", "id"),
        # the inbox's assignee filter, alone and with a status (counted from the index)
        Index("ix_task_assignee_updated", "assignee_id", "updated_at", "id"),
        Index("ix_task_assignee_status_updated", "assignee_id", "status", "updated_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True, index=True)
    title: str = Field(default="", sa_column=Column(Text, nullable=False))
    status: str = Field(default="open", max_length=20)
    created_by_id: int | None = Field(default=None, foreign_key="person.id")
    assignee_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Branch(SQLModel, table=True):
    """A line of discussion in a task: the main branch, or a hidden one with its members.

    ``forked_from_id`` is the message a hidden branch was opened about, if any (no foreign
    key: branch and message would refer to each other, which SQLite cannot migrate).
    """

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    hidden: bool = False
    parent_id: int | None = Field(default=None, foreign_key="branch.id")
    forked_from_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class BranchMember(SQLModel, table=True):
    # a person's branches, straight from the index (access.py, contacts)
    __table_args__ = (Index("ix_branchmember_person_branch", "person_id", "branch_id"),)

    branch_id: int = Field(foreign_key="branch.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    added_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Acquaintance(SQLModel, table=True):
    """What two people share, for the address book: the tasks where both are members of a
    branch with messages, and the first and last message there; over all such branches,
    and over the visible ones only (``open_*``, hidden branches left out).  One row per
    ordered pair, kept up to date by ``threads.acquaintances`` (migration 0011)."""

    person_id: int = Field(foreign_key="person.id", primary_key=True)
    other_id: int = Field(foreign_key="person.id", primary_key=True)
    tasks: int = 0
    first_seen: datetime = Field(sa_column=_when())
    last_seen: datetime = Field(sa_column=_when())
    open_tasks: int = 0
    open_first_seen: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    open_last_seen: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class RawMail(SQLModel, table=True):
    """Every accepted mail, byte for byte, stored before 250 is answered.

    ``state``: ``pending`` (stored, not yet processed; ``processing`` inside the one
    transaction that has claimed it), ``done``, ``ignored`` (automatic
    mail), ``rejected`` (malformed, or for nowhere), ``held`` (its sender may not post
    where it went) or ``quarantined`` (processing failed); held and quarantined mail have
    a ``Quarantine`` row with the reason.  ``raw`` is kept as received, our tokens and
    all, for replay: it is never served to anyone.
    """

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=998, unique=True)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    mail_from: str = Field(default="", max_length=998)
    rcpt_tos: str = Field(default="", sa_column=Column(Text, nullable=False))
    state: str = Field(default="pending", max_length=20, index=True)
    received_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Quarantine(SQLModel, table=True):
    """Accepted mail that could not be processed, with the reason; retried by the CLI."""

    id: int | None = Field(default=None, primary_key=True)
    raw_mail_id: int = Field(foreign_key="rawmail.id", index=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    resolved_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class Message(SQLModel, table=True):
    """A message in a branch.  Its ``text`` is also in the full-text index
    (``qmail.queries.search``), kept in step by the database itself (migration 0008)."""

    __table_args__ = (
        UniqueConstraint("branch_id", "message_id"),
        # a branch's messages in order; its first and last message (contacts)
        Index("ix_message_branch_sent", "branch_id", "sent_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    branch_id: int = Field(foreign_key="branch.id")
    author_id: int = Field(foreign_key="person.id", index=True)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    quoted: str = Field(default="", sa_column=Column(Text, nullable=False))
    full_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    message_id: str = Field(max_length=998, index=True)
    in_reply_to: str = Field(default="", max_length=998)
    references: str = Field(default="", sa_column=Column(Text, nullable=False))
    source: str = Field(default="email", max_length=20)
    raw_mail_id: int | None = Field(default=None, foreign_key="rawmail.id")
    sent_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Attachment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=255)
    size: int
    content_id: str | None = Field(default=None, max_length=998)
    inline: bool = False
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Tag(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True, index=True)


class TaskTag(SQLModel, table=True):
    """A tag on a task.  ``updated_at`` is the task's, copied by the database (triggers of
    migration 0011; never written here), so a tag's tasks are read newest first along
    ``(tag_id, updated_at, task_id)``, as the task list pages on."""

    __table_args__ = (Index("ix_tasktag_tag_updated", "tag_id", "updated_at", "task_id"),)

    task_id: int = Field(foreign_key="task.id", primary_key=True)
    tag_id: int = Field(foreign_key="tag.id", primary_key=True, index=True)
    updated_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class Event(SQLModel, table=True):
    """Something that happened on a task (new task, message, automatic mail ignored…).

    Read newest first, by ``(created_at, id)``: everywhere (activity) or per task (history).
    """

    __table_args__ = (
        Index("ix_event_created", "created_at", "id"),
        Index("ix_event_task_created", "task_id", "created_at", "id"),
        Index("ix_event_branch_kind", "branch_id", "kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int | None = Field(default=None, foreign_key="task.id")
    branch_id: int | None = Field(default=None, foreign_key="branch.id")
    person_id: int | None = Field(default=None, foreign_key="person.id")
    kind: str = Field(max_length=40)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    raw_mail_id: int | None = Field(default=None, foreign_key="rawmail.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class TaskRead(SQLModel, table=True):
    """How far a person has read a task: the newest message they could see on its page
    when they last opened it.  A message of someone else's with a higher id, in a branch
    they may read, makes the task unread for them (``queries.inbox``).  Ids, not times: a
    mail's ``Date`` may lie, the order messages arrive in does not."""

    person_id: int = Field(foreign_key="person.id", primary_key=True)
    task_id: int = Field(foreign_key="task.id", primary_key=True)
    message_id: int
    read_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class SavedView(SQLModel, table=True):
    """A filter of the inbox a person saved under a name: the query string it stands for
    (normalised by ``queries.filters.Filters``, so nothing else is ever stored)."""

    __table_args__ = (UniqueConstraint("person_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id")
    name: str = Field(max_length=60)
    query: str = Field(max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Mute(SQLModel, table=True):
    """A person who unsubscribed from a task's notifications (List-Unsubscribe)."""

    task_id: int = Field(foreign_key="task.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class OutboxStencil(SQLModel, table=True):
    """A notification as composed once for its readers (``qmail.core.stencil.Stencil``).

    Every ``Outbox`` row of that notification names it and holds only its recipient's own
    values (``Outbox.personal``); the copy is filled in when it is sent.  The files the
    mail carries are here, encoded, once: the team's stencil and everybody else's carry
    the same files, so the second one made keeps none and names the first (``files_from``).
    """

    id: int | None = Field(default=None, primary_key=True)
    head: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    boundary: str = Field(max_length=70)
    text: str = Field(sa_column=Column(Text, nullable=False))
    html: str = Field(sa_column=Column(Text, nullable=False))
    files: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    mixed: str = Field(default="", max_length=70)
    files_from: int | None = None  # (no foreign key: stencils are never deleted)


# Delivery's claim reads due rows by this index; only pending rows are in it (sent ones
# are never read by their time again), in SQLite and in PostgreSQL.
_PENDING: Any = literal_column("state = 'pending'")
# ``qmail outbox list --state failed``: the few failed rows, newest first, without reading
# the millions sent (an index of failed rows only: sending a mail writes nothing in it).
_FAILED: Any = literal_column("state = 'failed'")


class Outbox(SQLModel, table=True):
    """One outbound mail, written in the same transaction as the change it announces.

    ``state``: ``pending`` -> ``sent``, or ``failed`` (permanent, 5xx); temporary failures
    stay ``pending`` with a later ``next_attempt_at``.  A worker claims a row by setting
    ``locked_until`` (a lease), so several workers never send the same mail at once.
    ``message_id`` is the Message-ID header we gave the mail (replies name it).  ``raw``
    is the mail as sent and ``text`` its body (so a quote of it can be recognised in
    replies); or, for a notification, both are empty and the mail is ``stencil_id`` filled
    in with ``personal`` (``qmail.outbound.outbox.mail_bytes`` reads either kind).
    Indexes: only what a query reads by (``message_id``: replies; ``recipient,
    created_at``: the rate limits on acknowledgements and sign-in links; ``task_id,
    person_id``: the thread a notification continues; ``ix_outbox_due``: delivery's claim;
    ``ix_outbox_failed``: the operator's list of failed mail).
    """

    __table_args__ = (
        Index("ix_outbox_recipient_created", "recipient", "created_at"),
        Index("ix_outbox_task_person", "task_id", "person_id"),
        Index("ix_outbox_due", "next_attempt_at", sqlite_where=_PENDING, postgresql_where=_PENDING),
        Index("ix_outbox_failed", "id", sqlite_where=_FAILED, postgresql_where=_FAILED),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # notification | ack | refusal
    task_id: int | None = Field(default=None, foreign_key="task.id")
    branch_id: int | None = Field(default=None, foreign_key="branch.id")
    about_message_id: int | None = Field(default=None, foreign_key="message.id")
    person_id: int | None = Field(default=None, foreign_key="person.id")
    recipient: str = Field(max_length=320)
    message_id: str = Field(max_length=998, unique=True)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    # (no foreign key: stencils are never deleted, and every insert would check it)
    stencil_id: int | None = None
    personal: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    state: str = Field(default="pending", max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    locked_until: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    sent_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class IntakeSubmission(SQLModel, table=True):
    """A message left on the public contact form, waiting for its address to be confirmed.

    ``nonce`` is in the confirmation link (with the id, signed): a link names this one row
    even if SQLite hands a deleted row's id to a later submission.  Confirming sets
    ``confirmed_at`` once (a conditional UPDATE: two clicks open one task) and ``task_id``.
    Rows count against the per-address and per-IP limits for an hour; unconfirmed ones are
    deleted once their link has expired.
    """

    __table_args__ = (
        Index("ix_intakesubmission_email_created", "email", "created_at"),
        Index("ix_intakesubmission_ip_created", "ip", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    nonce: str = Field(max_length=32)
    email: str = Field(max_length=320)
    name: str = Field(default="", max_length=200)
    subject: str = Field(default="", max_length=200)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    ip: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when(index=True))
    confirmed_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    task_id: int | None = Field(default=None, foreign_key="task.id")


class Webhook(SQLModel, table=True):
    """A URL the team registered: every event it may carry is POSTed there as signed JSON.

    ``secret`` signs the deliveries (``qmail.core.webhook_signing``); ``internal`` lets it
    carry the team's business: hidden branches its creator belongs to, tags, held mail.
    ``last_event_id`` is how far the worker has fanned the event table out to it
    (``qmail.outbound.webhook_fanout``); a new or re-activated webhook starts at the newest.
    """

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=100)
    internal: bool = False
    active: bool = True
    created_by_id: int = Field(foreign_key="person.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    last_event_id: int = 0


class WebhookDelivery(SQLModel, table=True):
    """One POST of one event (or of a test, ``event_id`` null) to one webhook.

    ``state`` goes ``pending`` -> ``sent`` or ``failed`` like ``Outbox``, claimed by a worker
    with a lease (``locked_until``); ``payload`` is the JSON body, fixed when the row is
    made, so every retry sends the same bytes.  ``branch_id`` names the hidden branch the
    event is on, if any: the delivery log shows it only to that branch's members.
    """

    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_webhookdelivery_state_due", "state", "next_attempt_at"),
        Index("ix_webhookdelivery_webhook", "webhook_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhook.id")
    event_id: int | None = Field(default=None, foreign_key="event.id")
    branch_id: int | None = Field(default=None, foreign_key="branch.id")
    kind: str = Field(max_length=40)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default="pending", max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    locked_until: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    last_status_code: int | None = None
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    sent_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class Company(SQLModel, table=True):
    """A company the team has named or merged (``qmail.companies``).

    Without a row a company is what an address's domain says (``core.companies``): its
    key and name are that registrable domain.  A row keeps the team's choices: ``domain``
    is its key (its page is ``/companies/<domain>``), ``name`` how it is shown, and each
    ``CompanyDomain`` row maps one more registrable domain to it (a merge).
    """

    id: int | None = Field(default=None, primary_key=True)
    domain: str = Field(max_length=255, unique=True)
    name: str = Field(default="", max_length=200)


class CompanyDomain(SQLModel, table=True):
    """A registrable domain and the company it belongs to (its own row's too)."""

    domain: str = Field(primary_key=True, max_length=255)
    company_id: int = Field(foreign_key="company.id", index=True)
