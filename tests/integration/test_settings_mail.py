"""The mail part of ``/settings``: each person's choice of mail, and resubscribing.

Carol (a client) opened task 1 by mail; Alice and Bob (team) take part.  Pages are read
and forms sent over real uvicorn + httpx, signed in by magic link.
"""

from __future__ import annotations

import re

import httpx
import pytest
from sqlmodel import Session, select

from qmail import models
from qmail.context import Context
from qmail.db import session_scope
from qmail.outbound import preferences
from qmail.people import find_person
from tests.conftest import eml_bytes
from tests.integration.browser import VIEWPORTS, launched, look_at, shots_dir, signed_in_page
from tests.integration.test_auth import csrf_token, magic_link
from tests.integration.test_notifications import to
from tests.integration.test_pages import (
    ALICE,
    BOB,
    CAROL,
    post_form,
    signed_in,
    world,  # noqa: F401 (a fixture)
)
from tests.integration.test_threads import address, branches
from tests.integration.test_unsubscribe import mutes, unsubscribe_url

TITLE = "Invoice 2024-17 is missing a line"


def choice_of(store: Context, email_address: str) -> models.Person:
    with Session(store.engine) as session:
        person = find_person(session, email_address)
        assert person is not None
        return person


def offered(page: httpx.Response) -> list[str]:
    """The values of the page's mail choices, the checked one marked with ``*``."""
    html = page.text
    found = []
    for choice in preferences.CHOICES:
        start = html.find(f'value="{choice}"')
        if start >= 0:
            checked = html[start : html.index(">", start)].endswith(" checked")
            found.append(choice + ("*" if checked else ""))
    return found


def test_a_team_member_chooses_all_mail(world, web_server):  # noqa: F811
    with signed_in(world, web_server, ALICE) as alice:
        page = alice.get("/settings")
        assert offered(page) == ["all", "mine*", "digest"]
        assert "What mail do you want?" in page.text
        answer = post_form(alice, "/settings/notifications", {"notifications": "all"}, "/settings")
        assert (answer.status_code, answer.headers["location"]) == (303, "/settings#mail")
        assert offered(alice.get("/settings")) == ["all*", "mine", "digest"]
    assert choice_of(world, ALICE).notifications == "all"


def test_a_client_is_not_offered_all_mail_and_is_refused_it(world, web_server):  # noqa: F811
    with signed_in(world, web_server, CAROL) as carol:
        assert offered(carol.get("/settings")) == ["mine*", "digest"]
        for forged in ("all", "weekly", ""):
            fields = {"notifications": forged}
            answer = post_form(carol, "/settings/notifications", fields, "/settings")
            assert answer.status_code == 400, forged
        assert choice_of(world, CAROL).notifications == "mine"
        fields = {"notifications": "digest"}
        answer = post_form(carol, "/settings/notifications", fields, "/settings")
        assert answer.status_code == 303
        assert offered(carol.get("/settings")) == ["mine", "digest*"]
    carol_now = choice_of(world, CAROL)
    assert carol_now.notifications == "digest" and carol_now.digest_sent_at is not None


def test_the_mail_choice_needs_a_csrf_token_and_a_person(world, web_server):  # noqa: F811
    with signed_in(world, web_server, ALICE) as alice:
        answer = alice.post("/settings/notifications", data={"notifications": "digest"})
        assert answer.status_code == 403
    with web_server.client() as stranger:
        answer = stranger.post("/settings/notifications", data={"notifications": "digest"})
        assert answer.status_code == 403
    assert choice_of(world, ALICE).notifications == "mine"


def test_resubscribing_from_the_settings_page_brings_the_mail_back(
    world,  # noqa: F811
    smtp_server,
    web_server,
):
    url = unsubscribe_url(smtp_server, web_server, BOB)
    assert httpx.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    bob_id = choice_of(world, BOB).id
    assert mutes(world) == [(1, bob_id)]
    with signed_in(world, web_server, ALICE) as alice:  # not hers to undo
        assert "You have not unsubscribed from any task." in alice.get("/settings").text
        answer = post_form(alice, "/settings/mutes/1/resubscribe", {}, "/settings")
        assert answer.status_code == 404
    with signed_in(world, web_server, BOB) as bob:
        page = bob.get("/settings")
        assert f"#1 {TITLE}" in page.text
        assert 'action="/settings/mutes/1/resubscribe"' in page.text
        assert bob.post("/settings/mutes/1/resubscribe").status_code == 403
        assert mutes(world) == [(1, bob_id)]
        answer = bob.post("/settings/mutes/1/resubscribe", data={"_csrf_token": csrf_token(page)})
        assert (answer.status_code, answer.headers["location"]) == (303, "/settings#mail")
        assert "You have not unsubscribed from any task." in bob.get("/settings").text
    assert mutes(world) == []
    main = branches(world)[0]
    smtp_server.send(eml_bytes("intake_followup_in_reply_to"), address(world, main.id, CAROL))
    assert len(to(world, BOB)) == 2
    with Session(world.engine) as session:
        kinds = session.exec(select(models.Event.kind).where(models.Event.task_id == 1)).all()
    assert kinds.count("unsubscribed") == 1 and kinds.count("resubscribed") == 1


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
@pytest.mark.parametrize("email_address", [BOB, CAROL], ids=["team", "client"])
def test_the_mail_settings_read_and_work_in_a_browser(
    world,  # noqa: F811
    web_server,
    request,
    email_address,
    viewport,
):
    person_id = choice_of(world, email_address).id
    with session_scope(world.engine) as session:
        session.add(models.Mute(task_id=1, person_id=person_id))
    folder = shots_dir(request)
    link = magic_link(world, web_server, person_id)
    with launched() as browser:
        from playwright.sync_api import expect

        page = signed_in_page(browser, link, VIEWPORTS[viewport])
        page.goto(web_server.base_url + "/settings")
        look_at(page, folder, "settings")
        choices = page.get_by_role("radio")
        names = ["All mail", "Only tasks I'm on", "Daily digest"]
        if email_address == CAROL:
            names = names[1:]
        assert [choices.nth(i).get_attribute("value") for i in range(choices.count())] == [
            {"All mail": "all", "Only tasks I'm on": "mine", "Daily digest": "digest"}[name]
            for name in names
        ]
        assert page.get_by_role("radio", name="Only tasks I'm on").is_checked()
        page.get_by_role("radio", name="Daily digest").check()
        page.get_by_role("button", name="Save").click()
        page.wait_for_url(re.compile(r"/settings#mail$"))
        assert page.get_by_role("radio", name="Daily digest").is_checked()
        page.get_by_role("button", name="Resubscribe to #1").click()
        expect(page.get_by_text("You have not unsubscribed from any task.")).to_be_visible()
        look_at(page, folder, "settings-after")
    assert choice_of(world, email_address).notifications == "digest"
    assert mutes(world) == []
