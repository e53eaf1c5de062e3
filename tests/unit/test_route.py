"""Routing decides where a mail goes, from the mail, its recipients and known facts."""

from __future__ import annotations

import pytest

from qmail.core.mail import (
    Address,
    BranchFacts,
    Ignore,
    Intake,
    Known,
    Mail,
    NewTask,
    Reply,
    ReplyTarget,
)
from qmail.core.route import REJECT_NO_ROUTE, route_mail, strip_reply_prefixes, title_and_tags

INTAKE = (Intake("tasks@example.com"),)
MAIN = BranchFacts(10, 1, hidden=False, member_emails=frozenset({"client@acme.test"}))
HIDDEN = BranchFacts(11, 1, hidden=True, member_emails=frozenset({"alice@example.com"}))


def mail(subject="Printer on fire", sender="client@acme.test", **fields) -> Mail:
    return Mail(message_id="m1@acme.test", subject=subject, sender=Address(sender), **fields)


def test_mail_to_intake_opens_a_task_with_tags_from_the_subject():
    route = route_mail(mail("[Billing] Invoice missing #urgent"), INTAKE, Known())
    assert route == NewTask("Invoice missing", ("billing", "urgent"))


def test_reply_token_names_branch_and_author():
    route = route_mail(mail(), (ReplyTarget(10, 7),), Known())
    assert route == Reply(10, 7, via="token")


def test_private_token_goes_to_the_team_branch():
    route = route_mail(mail(), (ReplyTarget(10, 7, private=True),), Known())
    assert route == Reply(10, 7, via="private")


def test_token_wins_over_intake_when_both_are_recipients():
    route = route_mail(mail(), (*INTAKE, ReplyTarget(10, 7)), Known())
    assert route == Reply(10, 7, via="token")


def test_in_reply_to_routes_to_the_branch_of_the_stored_message():
    known = Known(by_message_id={"n1@example.com": MAIN})
    route = route_mail(mail(in_reply_to="n1@example.com"), INTAKE, known)
    assert route == Reply(10, via="references")


def test_references_newest_first():
    other = BranchFacts(20, 2, hidden=False)
    known = Known(by_message_id={"old@x": other, "new@x": MAIN})
    route = route_mail(mail(references=("old@x", "new@x")), INTAKE, known)
    assert route == Reply(10, via="references")


def test_forged_references_cannot_post_into_a_hidden_branch():
    known = Known(by_message_id={"secret@example.com": HIDDEN})
    route = route_mail(mail(in_reply_to="secret@example.com"), INTAKE, known)
    assert route == NewTask("Printer on fire")


def test_member_may_answer_a_hidden_branch_by_references():
    known = Known(by_message_id={"secret@example.com": HIDDEN})
    message = mail(sender="alice@example.com", in_reply_to="secret@example.com")
    assert route_mail(message, INTAKE, known) == Reply(11, via="references")


def test_subject_number_from_a_participant_routes_to_the_task():
    known = Known(by_number={12: MAIN})
    assert route_mail(mail("Re: [#12] Printer"), INTAKE, known) == Reply(10, via="subject")


def test_subject_number_from_a_stranger_opens_a_new_task():
    known = Known(by_number={12: MAIN})
    route = route_mail(mail("Re: [#12] Printer", sender="eve@evil.test"), INTAKE, known)
    assert route == NewTask("Printer")


def test_subject_number_from_a_team_member_routes_to_the_task():
    known = Known(by_number={12: MAIN}, team_emails=frozenset({"bob@example.com"}))
    message = mail("Re: [#12] Printer", sender="bob@example.com")
    assert route_mail(message, INTAKE, known) == Reply(10, via="subject")


def test_automatic_mail_is_ignored_and_remembers_its_thread():
    known = Known(by_message_id={"n1@example.com": MAIN})
    message = mail(automatic="Auto-Submitted: auto-replied", in_reply_to="n1@example.com")
    route = route_mail(message, (ReplyTarget(10, 7),), known)
    assert route == Ignore("automatic mail: Auto-Submitted: auto-replied", 10)


def test_null_envelope_sender_is_automatic():
    route = route_mail(mail(), INTAKE, Known(), mail_from="")
    assert route == Ignore("automatic mail: null envelope sender")


def test_no_intake_and_no_thread_is_rejected():
    assert route_mail(mail(), (), Known()) == REJECT_NO_ROUTE


def test_reply_prefixes_in_many_languages_are_ignored():
    assert strip_reply_prefixes("Re: RE: Fwd: AW: WG: Ответ: Re[2]: SV: Hello") == "Hello"


def test_unicode_hash_tags_and_empty_groups():
    assert title_and_tags("[] Счёт #срочно #Срочно") == ("[] Счёт", ("срочно",))


OWN = Known(
    own_domain="example.com",
    loop_marker="example.com",
    own_addresses=frozenset({"tasks@example.com", "noreply@example.com"}),
)


def test_our_own_notification_coming_back_is_not_posted():
    route = route_mail(mail(loop_marker="example.com"), INTAKE, OWN)
    assert route == Ignore("automatic mail: our own mail")


@pytest.mark.parametrize(
    "sender", ["reply+1-2-b-abc@example.com", "noreply@example.com", "tasks@example.com"]
)
def test_mail_from_our_own_addresses_is_not_posted(sender):
    assert route_mail(mail(sender=sender), INTAKE, OWN) == Ignore("automatic mail: our own mail")


def test_another_installation_loop_marker_is_fine():
    assert isinstance(route_mail(mail(loop_marker="other.org"), INTAKE, OWN), NewTask)
