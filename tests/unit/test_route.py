"""Routing decides where a mail goes, from the mail, its recipients and known facts."""

from __future__ import annotations

import pytest

from qmail.core.mail import (
    Address,
    BranchFacts,
    Hold,
    Ignore,
    Intake,
    Known,
    Mail,
    NewTask,
    Reply,
    ReplyTarget,
)
from qmail.core.route import (
    REJECT_GONE,
    REJECT_NO_ROUTE,
    route_mail,
    strip_reply_prefixes,
    title_and_tags,
)

INTAKE = (Intake("tasks@example.com"),)
CLIENT, ALICE, BOB = "client@acme.test", "alice@example.com", "bob@example.com"
MAIN = BranchFacts(10, 1, hidden=False, member_emails=frozenset({CLIENT, ALICE}))
HIDDEN = BranchFacts(11, 1, hidden=True, member_emails=frozenset({ALICE}))
TEAM = frozenset({ALICE, BOB})
# Reply addresses: person 7 is the client, 8 is Alice, 9 is Bob.
PEOPLE = {7: CLIENT, 8: ALICE, 9: BOB}


def mail(subject="Printer on fire", sender=CLIENT, **fields) -> Mail:
    return Mail(message_id="m1@acme.test", subject=subject, sender=Address(sender), **fields)


def known(sender: str = CLIENT, **fields) -> Known:
    """What the database knows, with ``sender`` on the team when it is a team address."""
    return Known(
        by_branch={10: MAIN, 11: HIDDEN},
        people=PEOPLE,
        team_emails=frozenset({sender}) & TEAM,
        intake="tasks@example.com",
        **fields,
    )


def held(route, branch_id: int) -> bool:
    return isinstance(route, Hold) and route.branch_id == branch_id


def test_mail_to_intake_opens_a_task_with_tags_from_the_subject():
    route = route_mail(mail("[Billing] Invoice missing #urgent"), INTAKE, Known())
    assert route == NewTask("Invoice missing", ("billing", "urgent"))


def test_reply_address_used_by_its_own_person_lands_in_its_branch():
    route = route_mail(mail(), (ReplyTarget(10, 7),), known())
    assert route == Reply(10, via="token", proven=True)


def test_member_of_the_branch_writing_to_a_colleagues_reply_address_posts_as_themself():
    route = route_mail(mail(), (ReplyTarget(10, 8),), known())  # the client, to Alice's
    assert route == Reply(10, via="token", proven=True)


def test_a_stranger_writing_to_someones_reply_address_is_held_and_told_to_use_the_intake():
    route = route_mail(mail(sender="mallory@evil.test"), (ReplyTarget(10, 8),), known())
    assert route == Hold(
        "mallory@evil.test wrote to the reply address of alice@example.com "
        "and takes no part in that discussion",
        10,
        "This reply address is not yours; to write to the team, write to tasks@example.com",
    )
    assert route.reject.reply.startswith("550 5.7.1 This reply address is not yours")


def test_a_colleague_copied_on_a_reply_is_held_not_posted_as_the_person():
    route = route_mail(mail(sender="dan@acme.test"), (ReplyTarget(10, 7),), known())
    assert held(route, 10)


def test_a_mail_without_from_to_a_reply_address_is_held():
    message = Mail(message_id="m1@acme.test", subject="x", sender=None)
    assert held(route_mail(message, (ReplyTarget(10, 7),), known()), 10)


def test_private_address_used_by_its_team_member_goes_to_the_team_branch():
    route = route_mail(mail(sender=ALICE), (ReplyTarget(10, 8, private=True),), known(ALICE))
    assert route == Reply(10, via="private", proven=True)


def test_client_writing_to_a_team_members_private_address_is_held():
    route = route_mail(mail(), (ReplyTarget(10, 8, private=True),), known())
    assert held(route, 10)


def test_client_with_a_private_address_signed_for_her_is_held():
    route = route_mail(mail(), (ReplyTarget(10, 7, private=True),), known())
    assert held(route, 10)


def test_colleague_writes_to_a_private_address_only_as_a_member_of_the_team_branch():
    team_branch = BranchFacts(12, 1, hidden=True, member_emails=frozenset({ALICE}))
    facts = known(BOB, team_branch_of={1: team_branch})
    route = route_mail(mail(sender=BOB), (ReplyTarget(10, 8, private=True),), facts)
    assert held(route, 12)
    joined = BranchFacts(12, 1, hidden=True, member_emails=frozenset({ALICE, BOB}))
    facts = known(BOB, team_branch_of={1: joined})
    route = route_mail(mail(sender=BOB), (ReplyTarget(10, 8, private=True),), facts)
    assert route == Reply(10, via="private", proven=True)


def test_a_hidden_branch_takes_mail_only_from_its_team_members():
    assert route_mail(mail(sender=ALICE), (ReplyTarget(11, 8),), known(ALICE)) == Reply(
        11, via="token", proven=True
    )
    assert held(route_mail(mail(sender=BOB), (ReplyTarget(11, 8),), known(BOB)), 11)
    former = Known(by_branch={11: HIDDEN}, people=PEOPLE)  # Alice has left the team
    assert held(route_mail(mail(sender=ALICE), (ReplyTarget(11, 8),), former), 11)


def test_reply_address_of_a_branch_or_person_that_is_gone_is_refused_not_held():
    assert route_mail(mail(), (ReplyTarget(99, 7),), known()) == REJECT_GONE
    assert route_mail(mail(), (ReplyTarget(10, 99),), known()) == REJECT_GONE


def test_token_wins_over_intake_when_both_are_recipients():
    route = route_mail(mail(), (*INTAKE, ReplyTarget(10, 7)), known())
    assert route == Reply(10, via="token", proven=True)


def test_a_from_that_fails_dmarc_is_held_even_with_a_reply_address():
    facts = known(ALICE, sender_check="fail")
    route = route_mail(mail(sender=ALICE), (ReplyTarget(10, 8),), facts)
    assert isinstance(route, Hold) and "DMARC" in route.reason
    assert isinstance(route_mail(mail(), INTAKE, known(sender_check="fail")), Hold)


def test_in_reply_to_routes_to_the_branch_of_the_stored_message():
    facts = Known(by_message_id={"n1@example.com": MAIN})
    route = route_mail(mail(in_reply_to="n1@example.com"), INTAKE, facts)
    assert route == Reply(10, via="references")


def test_references_newest_first():
    other = BranchFacts(20, 2, hidden=False)
    facts = Known(by_message_id={"old@x": other, "new@x": MAIN})
    route = route_mail(mail(references=("old@x", "new@x")), INTAKE, facts)
    assert route == Reply(10, via="references")


def test_forged_references_cannot_post_into_a_hidden_branch():
    facts = Known(by_message_id={"secret@example.com": HIDDEN})
    route = route_mail(mail(in_reply_to="secret@example.com"), INTAKE, facts)
    assert route == NewTask("Printer on fire")


def test_team_member_answers_a_hidden_branch_by_references_only_when_proven():
    facts = known(ALICE, by_message_id={"secret@example.com": HIDDEN}, sender_check="pass")
    message = mail(sender=ALICE, in_reply_to="secret@example.com")
    assert route_mail(message, INTAKE, facts) == Reply(11, via="references", proven=True)
    facts = known(ALICE, by_message_id={"secret@example.com": HIDDEN})
    assert held(route_mail(message, INTAKE, facts), 11)


def test_a_team_members_from_answering_a_thread_without_proof_is_held():
    facts = known(BOB, by_message_id={"n1@example.com": MAIN})
    route = route_mail(mail(sender=BOB, in_reply_to="n1@example.com"), INTAKE, facts)
    assert held(route, 10)
    assert "answer through the reply address of your notification" in route.advice


def test_subject_number_from_a_participant_routes_to_the_task():
    facts = Known(by_number={12: MAIN})
    assert route_mail(mail("Re: [#12] Printer"), INTAKE, facts) == Reply(10, via="subject")


def test_subject_number_from_a_stranger_opens_a_new_task():
    facts = Known(by_number={12: MAIN})
    route = route_mail(mail("Re: [#12] Printer", sender="eve@evil.test"), INTAKE, facts)
    assert route == NewTask("Printer")


def test_subject_number_from_a_team_members_address_is_held_unless_proven():
    message = mail("Re: [#12] Printer", sender=BOB)
    assert held(route_mail(message, INTAKE, known(BOB, by_number={12: MAIN})), 10)
    facts = known(BOB, by_number={12: MAIN}, sender_check="pass")
    assert route_mail(message, INTAKE, facts) == Reply(10, via="subject", proven=True)


def test_a_team_members_from_opens_a_new_task_without_powers_unless_proven():
    message = mail("New printer", sender=BOB)
    assert route_mail(message, INTAKE, known(BOB)) == NewTask("New printer", proven=False)
    facts = known(BOB, sender_check="pass")
    assert route_mail(message, INTAKE, facts) == NewTask("New printer", proven=True)


def test_automatic_mail_is_ignored_and_remembers_its_thread():
    facts = Known(by_message_id={"n1@example.com": MAIN})
    message = mail(automatic="Auto-Submitted: auto-replied", in_reply_to="n1@example.com")
    route = route_mail(message, (ReplyTarget(10, 7),), facts)
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
