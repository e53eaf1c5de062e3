"""Values passed between the stages of the mail flow.

Every stage of ``ingest -> parse -> trim -> route -> store -> notify`` takes and returns
these frozen dataclasses, so the pure stages can be tested with plain values and never
see a socket, a session or a flanker object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Address:
    """One mailbox: the address in lower case and the display name (may be empty)."""

    email: str
    name: str = ""


@dataclass(frozen=True)
class Attachment:
    """A file carried by a mail; inline images too (``inline`` with a ``content_id``)."""

    filename: str
    content_type: str
    content: bytes
    content_id: str | None = None
    inline: bool = False

    @property
    def size(self) -> int:
        """Size of the decoded content in bytes."""
        return len(self.content)


@dataclass(frozen=True)
class Mail:
    """A parsed inbound mail, everything later stages need and nothing more.

    ``message_id``, ``in_reply_to`` and ``references`` are normalized Message-IDs: no
    angle brackets, surrounding white space removed.  ``text`` is the whole readable body
    (the text/plain part, or the HTML part turned into text); trimming comes later.
    ``automatic`` names why the mail was sent by a machine (an auto-reply, a bounce, a
    list), or is ``None`` for mail written by a person.  ``auth_results`` holds the value
    of every ``Authentication-Results`` field (RFC 8601), topmost first and unfolded, for
    ``authres.judge_sender``; most of them are untrusted text the sender may have written.
    """

    message_id: str
    subject: str
    sender: Address | None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    date: datetime | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    text: str = ""
    from_html: bool = False
    attachments: tuple[Attachment, ...] = ()
    automatic: str | None = None
    loop_marker: str = ""
    auth_results: tuple[str, ...] = ()


@dataclass(frozen=True)
class Trimmed:
    """The new text of a reply and what was removed from it (quoted history, signature)."""

    text: str
    quoted: str = ""


@dataclass(frozen=True)
class Reject:
    """Refuse the mail with an SMTP reply: ``code`` (e.g. 550) and a human ``reason``."""

    code: int
    reason: str

    @property
    def reply(self) -> str:
        """The SMTP reply line, e.g. ``550 5.1.1 Unknown recipient``."""
        return f"{self.code} {self.reason}"


# --- recipients: what one envelope address at our domain means ------------------------


@dataclass(frozen=True)
class Intake:
    """An intake address (``tasks@domain``): a new mail there opens a task."""

    address: str


@dataclass(frozen=True)
class ReplyTarget:
    """A verified ``reply+TOKEN`` address: the branch it names, as the person it names.

    ``private`` is the "reply privately to the team" address of a task: mail to it goes
    to the task's hidden team branch; then ``branch_id`` is the branch the notification
    came from.
    """

    branch_id: int
    person_id: int
    private: bool = False


Recipient = Intake | ReplyTarget


# --- routes: where a mail goes --------------------------------------------------------


@dataclass(frozen=True)
class NewTask:
    """Open a new task titled ``title`` with ``tags``; the sender becomes a participant.

    ``proven`` when something other than the From header shows that its address sent the
    mail (a passing DMARC verdict from the trusted server): only then may a team member's
    mail act with their powers (commands, copying people in).
    """

    title: str
    tags: tuple[str, ...] = ()
    proven: bool = False


@dataclass(frozen=True)
class Reply:
    """Add the mail to ``branch_id``, written by its sender (the From address).

    ``via`` says what proved the route: ``token`` (a reply address), ``private`` (the
    "reply privately to the team" address: the mail goes to the hidden team branch of
    ``branch_id``'s task), ``references`` or ``subject``.  ``proven`` as for ``NewTask``;
    a reply address used by its own person or by a member of its branch is proof enough.
    """

    branch_id: int
    via: str = "token"
    proven: bool = False


@dataclass(frozen=True)
class Ignore:
    """Keep the mail but post nothing (automatic mail); recorded on ``branch_id`` if known."""

    reason: str
    branch_id: int | None = None


@dataclass(frozen=True)
class Hold:
    """Keep the mail, post nothing, and show the team: its sender may not post there.

    ``reason`` is for the team (``qmail quarantine list``, the task page of ``branch_id``);
    ``advice`` ends the SMTP refusal the sender's server reports back to them, saying
    what to do instead.  qmail itself never sends a bounce.
    """

    reason: str
    branch_id: int | None = None
    advice: str = ""

    @property
    def reject(self) -> Reject:
        """The answer at the end of DATA: the mail is kept, the sender is told no."""
        return Reject(550, f"5.7.1 {self.advice or 'You may not post to this discussion'}")


Route = NewTask | Reply | Reject | Ignore | Hold


@dataclass(frozen=True)
class BranchFacts:
    """What the database knows about one branch, as routing needs it."""

    branch_id: int
    task_id: int
    hidden: bool
    member_emails: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Known:
    """Facts looked up in the database before routing, so routing stays pure.

    ``by_message_id`` maps stored Message-IDs (of our messages and of notifications we
    sent) to their branch; ``by_number`` maps task numbers named in the subject to the
    task's main branch.  For reply addresses: ``by_branch`` holds the branches they name,
    ``team_branch_of`` each such task's hidden team branch once it is open (keyed by task
    id), and ``people`` the address of each person they were made for.  ``team_emails``
    says which of the addresses involved belong to team members now.  ``sender_check`` is
    the trusted authentication server's verdict on the From address (``pass``, ``fail`` or
    ``none``).  ``intake`` is where a refused sender is told to write instead.
    ``own_addresses`` and ``loop_marker`` recognise our own mail coming back.
    """

    by_message_id: dict[str, BranchFacts] = field(default_factory=dict)
    by_number: dict[int, BranchFacts] = field(default_factory=dict)
    team_emails: frozenset[str] = frozenset()
    own_domain: str = ""
    own_addresses: frozenset[str] = frozenset()
    loop_marker: str = ""
    by_branch: dict[int, BranchFacts] = field(default_factory=dict)
    team_branch_of: dict[int, BranchFacts] = field(default_factory=dict)
    people: dict[int, str] = field(default_factory=dict)
    sender_check: str = "none"
    intake: str = ""


@dataclass(frozen=True)
class Envelope:
    """The SMTP envelope: ``MAIL FROM`` (empty for bounces) and the ``RCPT TO`` list."""

    mail_from: str
    rcpt_tos: tuple[str, ...]


@dataclass(frozen=True)
class Command:
    """A command line from the top of a team member's reply.

    ``#tag billing`` -> ``Command("tag", "billing")``; ``#close`` -> ``Command("close")``.
    """

    name: str
    argument: str = ""


@dataclass(frozen=True)
class Content:
    """What a mail says: its trimmed text and the command lines that head it.

    Commands count only when they are carried out (a team member's proven mail in the
    main discussion), which is known only once the route is applied; ``text_for`` gives
    the text to post either way.
    """

    trimmed: Trimmed
    commands: tuple[Command, ...] = ()
    text_without_commands: str = ""

    def text_for(self, commands_ran: bool) -> str:
        """The text to post: without the command lines once they were carried out."""
        return self.text_without_commands if commands_ran and self.commands else self.trimmed.text
