"""Routing: decide where a parsed mail goes, and as whom.

Pure; the database's facts come in ``Known``.

The author of a mail is its sender, the From address: never the address it was sent
to.  A reply address (``reply+TOKEN``) names a branch and the person it was made for; it
proves that the mail comes from someone who holds that thread, nothing more.

The order of the rules:

1. automatic mail (auto-replies, bounces, bulk, a null envelope sender, our own mail) is
   never posted;
2. a From that the trusted authentication server says is forged (DMARC fail) is held;
3. a verified reply address takes the mail into its branch when the sender is the person
   it was made for or a member of that branch (the private address: of the task's hidden
   team branch, and team members only); anyone else's mail is held;
4. In-Reply-To / References naming a stored message route to that message's branch,
   but a hidden branch only takes mail from its team members;
5. a ``[#123]`` subject tag routes to task 123 when the sender takes part in it;
6. mail to an intake address opens a new task.

A mail claiming a team member's From without a reply address is trusted with that
person's powers only when the trusted authentication server vouches for it (``proven``);
otherwise, answering a thread, it is held, and opening a task, it opens one without any
power (no commands, nobody copied in).  Routing never trusts the mail for more than it
proves: a forged References header cannot put text into a hidden branch, a guessed task
number cannot put text into a task, and a reply address seen in a quote cannot make its
finder speak as its owner.
"""

from __future__ import annotations

import re

from qmail.core.mail import (
    BranchFacts,
    Hold,
    Ignore,
    Intake,
    Known,
    Mail,
    NewTask,
    Recipient,
    Reject,
    Reply,
    ReplyTarget,
    Route,
)

REJECT_NO_ROUTE = Reject(550, "5.1.1 No task to deliver this mail to")
REJECT_GONE = Reject(550, "5.1.1 This discussion no longer exists")
PASS, FAIL = "pass", "fail"
_TASK_NUMBER = re.compile(r"\[#(\d{1,9})\]")
_BRACKET_TAG = re.compile(r"\[([^\[\]#][^\[\]]*)\]")
_HASH_TAG = re.compile(r"(?<![\w&#])#([^\W_][\w-]*)", re.UNICODE)
_REPLY_PREFIX = re.compile(
    r"^\s*((re|fwd?|aw|wg|sv|vs|tr|rif|r|ri|res|enc|antw|odp|ответ|отв|пересл|fw)"
    r"(\[\d+\])?\s*:\s*)+",
    re.IGNORECASE,
)


def route_mail(
    mail: Mail, recipients: tuple[Recipient, ...], known: Known, mail_from: str = "x"
) -> Route:
    """Where ``mail``, sent to ``recipients`` by envelope sender ``mail_from``, goes."""
    thread = _thread_branch(mail, known)
    if mail.automatic or not mail_from or _is_loop(mail, known):
        reason = mail.automatic or ("null envelope sender" if not mail_from else "our own mail")
        return Ignore(f"automatic mail: {reason}", thread.branch_id if thread else None)
    sender = mail.sender.email if mail.sender else ""
    if known.sender_check == FAIL:
        reason = f"{sender or 'a mail without From'}: the sender's domain says it did not send it"
        return Hold(f"{reason} (DMARC)", thread.branch_id if thread else None, _forged_advice())
    for recipient in recipients:
        if isinstance(recipient, ReplyTarget):
            return _by_reply_address(recipient, sender, known)
    return _by_thread(mail, recipients, sender, thread, known)


def _by_reply_address(target: ReplyTarget, sender: str, known: Known) -> Route:
    """A reply address takes mail from its own person, or from a member of its branch."""
    branch, owner = known.by_branch.get(target.branch_id), known.people.get(target.person_id)
    if branch is None or owner is None:
        return REJECT_GONE
    destination: BranchFacts | None = branch
    if target.private and not branch.hidden:  # the task's team branch, opened on first use
        destination = known.team_branch_of.get(branch.task_id)
    members = destination.member_emails if destination else frozenset()
    held_on = (destination or branch).branch_id
    if not sender or (sender != owner and sender not in members):
        who = sender or "a mail without From"
        reason = f"{who} wrote to the reply address of {owner} and takes no part in that discussion"
        return Hold(reason, held_on, _intake_advice(known))
    if (target.private or branch.hidden) and sender not in known.team_emails:
        reason = f"{sender} wrote to a hidden discussion and is not a team member"
        return Hold(reason, held_on, _intake_advice(known))
    return Reply(branch.branch_id, via="private" if target.private else "token", proven=True)


def _by_thread(
    mail: Mail,
    recipients: tuple[Recipient, ...],
    sender: str,
    thread: BranchFacts | None,
    known: Known,
) -> Route:
    """Mail without a reply address: the thread it answers, its subject, or the intake."""
    proven = known.sender_check == PASS
    is_team = sender in known.team_emails
    number = task_number(mail.subject)
    by_subject = known.by_number.get(number) if number is not None else None
    if is_team and not proven and (thread or by_subject):
        reason = f"{sender} is a team member's address, but nothing shows the mail is theirs"
        branch = thread or by_subject
        return Hold(reason, branch.branch_id if branch else None, _team_advice())
    if thread is not None and _may_post(sender, is_team, thread):
        return Reply(thread.branch_id, via="references", proven=proven)
    if by_subject is not None and (sender in by_subject.member_emails or is_team):
        return Reply(by_subject.branch_id, via="subject", proven=proven)
    if any(isinstance(recipient, Intake) for recipient in recipients):
        title, tags = title_and_tags(mail.subject)
        return NewTask(title, tags, proven=proven)
    return REJECT_NO_ROUTE


def _intake_advice(known: Known) -> str:
    where = known.intake or "the address you first wrote to"
    return f"This reply address is not yours; to write to the team, write to {where}"


def _team_advice() -> str:
    return (
        "qmail cannot tell that this mail is yours: answer through the reply address of your "
        "notification, or on the task's page"
    )


def _forged_advice() -> str:
    return "Your domain's sender authentication (DMARC) says this mail is not from its From"


def _is_loop(mail: Mail, known: Known) -> bool:
    """Our own mail coming back: it carries our loop marker or is from one of our addresses."""
    if known.loop_marker and mail.loop_marker == known.loop_marker:
        return True
    sender = mail.sender.email if mail.sender else ""
    local, _, domain = sender.rpartition("@")
    ours = bool(known.own_domain) and domain == known.own_domain
    return sender in known.own_addresses or (ours and local.startswith("reply+"))


def _thread_branch(mail: Mail, known: Known) -> BranchFacts | None:
    """The branch of the newest stored message this mail answers, if any."""
    for message_id in (mail.in_reply_to, *reversed(mail.references)):
        if message_id and message_id in known.by_message_id:
            return known.by_message_id[message_id]
    return None


def _may_post(sender: str, is_team: bool, branch: BranchFacts) -> bool:
    """Whether ``sender`` may post to ``branch``.

    A hidden branch takes mail only from its team members; the main branch from anyone who
    has the thread (they were sent or copied a message of it).
    """
    if branch.hidden:
        return is_team and sender in branch.member_emails
    return bool(sender)


def task_number(subject: str) -> int | None:
    """The task number named by a ``[#123]`` tag in the subject.

    >>> task_number("Re: [#42] Printer on fire")
    42
    >>> task_number("Invoice #42") is None
    True
    """
    match = _TASK_NUMBER.search(subject)
    return int(match.group(1)) if match else None


def strip_reply_prefixes(subject: str) -> str:
    """The subject without Re:/Fwd:/AW:/Ответ: prefixes.

    >>> strip_reply_prefixes("RE: AW: Fwd: Ответ: hello")
    'hello'
    """
    return _REPLY_PREFIX.sub("", subject).strip()


_FORWARD_PREFIX = re.compile(r"^\s*(fwd?|wg|tr|enc|rv|i|doorst|vs|пересл)\s*:", re.IGNORECASE)


def is_forward(subject: str) -> bool:
    """Whether the subject says the mail forwards another one.

    >>> is_forward("Fwd: Printer on fire"), is_forward("WG: Rechnung"), is_forward("Re: x")
    (True, True, False)
    """
    return bool(_FORWARD_PREFIX.match(subject))


def title_and_tags(subject: str) -> tuple[str, tuple[str, ...]]:
    """A task title and its tags from a subject: ``[word]`` groups and ``#word`` tokens.

    Tags are lower case (``casefold``) and unique, in order of appearance; a number
    alone (``#42``, an order number) is not a tag.

    >>> title_and_tags("[Billing] Invoice missing #urgent")
    ('Invoice missing', ('billing', 'urgent'))
    >>> title_and_tags("Fwd: [#12] Срочно #срочно")
    ('Срочно', ('срочно',))
    >>> title_and_tags("Order #4711 [EU] late")
    ('Order #4711 late', ('eu',))
    >>> title_and_tags("")
    ('(no subject)', ())
    """
    subject = _TASK_NUMBER.sub(" ", strip_reply_prefixes(subject))
    tags: list[str] = []
    matches = (*_BRACKET_TAG.finditer(subject), *_HASH_TAG.finditer(subject))
    for match in sorted(matches, key=lambda match: match.start()):
        tag = normalize_tag(match.group(1))
        if tag and not tag.isdigit() and tag not in tags:
            tags.append(tag)
    title = _BRACKET_TAG.sub(" ", subject)
    title = _HASH_TAG.sub(lambda m: m.group(0) if m.group(1).isdigit() else " ", title)
    title = " ".join(title.split())
    return title or "(no subject)", tuple(tags)


def normalize_tag(name: str) -> str:
    """Tags compare without case, unicode-aware; inner spaces become dashes.

    >>> normalize_tag(" Customer Care ")
    'customer-care'
    """
    return "-".join(name.casefold().split())[:100]
