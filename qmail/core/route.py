"""Routing: decide where a parsed mail goes.  Pure; the database's facts come in ``Known``.

The order of the rules:

1. automatic mail (auto-replies, bounces, bulk, a null envelope sender) is never posted;
2. a verified ``reply+TOKEN`` recipient names the branch and the author;
3. In-Reply-To / References naming a stored message route to that message's branch,
   but a hidden branch only takes mail from its members;
4. a ``[#123]`` subject tag routes to task 123 when the sender takes part in it;
5. mail to an intake address opens a new task.

Routing never trusts the mail for more than it proves: a forged References header cannot
put text into a hidden branch, and a guessed task number cannot put text into a task.
"""

from __future__ import annotations

import re

from qmail.core.mail import (
    BranchFacts,
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
    if mail.automatic or not mail_from or _is_loop(mail, known):
        reason = mail.automatic or ("null envelope sender" if not mail_from else "our own mail")
        thread = _thread_branch(mail, known)
        return Ignore(f"automatic mail: {reason}", thread.branch_id if thread else None)
    for recipient in recipients:
        if isinstance(recipient, ReplyTarget):
            via = "private" if recipient.private else "token"
            return Reply(recipient.branch_id, recipient.person_id, via=via)
    sender = mail.sender.email if mail.sender else ""
    branch = _thread_branch(mail, known)
    if branch is not None and _may_post(sender, branch, known):
        return Reply(branch.branch_id, via="references")
    number = task_number(mail.subject)
    if number is not None and number in known.by_number:
        branch = known.by_number[number]
        if sender in branch.member_emails or sender in known.team_emails:
            return Reply(branch.branch_id, via="subject")
    if any(isinstance(recipient, Intake) for recipient in recipients):
        title, tags = title_and_tags(mail.subject)
        return NewTask(title, tags)
    return REJECT_NO_ROUTE


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


def _may_post(sender: str, branch: BranchFacts, known: Known) -> bool:
    """A hidden branch takes mail only from its members; the main branch from anyone
    who has the thread (they were sent or copied a message of it)."""
    if branch.hidden:
        return sender in branch.member_emails
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
