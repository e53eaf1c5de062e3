"""Companies and the people map in a real chromium, at 1280 and 390 px.

Alice (the team) opens ACME's page, renames it and merges Globex into it with the page's
own forms; then she opens the people map, which d3-force lays out, sees a circle per
person she corresponds with, and clicks Carol's to open her contact page.  Carol (a
client) sees only her own task's people on her map.  Each state is screenshotted under
``build/browser/<database>/<test>/`` and checked by ``browser.look_at`` (no sideways scrolling, no
serious axe-core violation).  The world is the address book's exchange
(``test_contacts.exchange``).
"""

from __future__ import annotations

import re

import pytest

from tests.integration.browser import VIEWPORTS, launched, look_at, shots_dir, signed_in_page
from tests.integration.test_auth import magic_link
from tests.integration.test_contacts import (
    ALICE,
    BOB,
    CAROL,
    DAN,
    ERIN,
    NAMES,
    exchange,  # noqa: F401 (a fixture)
)
from tests.integration.test_threads import person_id


def circles(page) -> list[str]:
    """The addresses of the circles drawn, in the order of the SVG."""
    page.wait_for_selector("figure#people-map[data-drawn='true']")
    return page.locator("figure#people-map svg [data-email]").evaluate_all(
        "nodes => nodes.filter(n => n.querySelector('circle')).map(n => n.dataset.email)"
    )


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_team_member_renames_and_merges_a_company_on_its_page(
    smtp_server,
    web_server,
    exchange,  # noqa: F811
    request,
    viewport,
):
    store = smtp_server.store
    folder = shots_dir(request)
    link = magic_link(store, web_server, person_id(store, ALICE))
    with launched() as browser:
        page = signed_in_page(browser, link, VIEWPORTS[viewport])
        page.goto(web_server.base_url + "/companies")
        look_at(page, folder, "companies")
        page.get_by_role("link", name="acme.test", exact=True).click()
        page.wait_for_url(re.compile(r"/companies/acme\.test$"))
        assert page.locator("#people tbody tr").count() == 2
        look_at(page, folder, "company")

        page.get_by_label("Name").fill("ACME Group")
        page.get_by_role("button", name="Rename").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", level=1).inner_text() == "ACME Group"

        page.get_by_label("Merge another domain into ACME Group").fill("globex.test")
        page.get_by_role("button", name="Merge").click()
        page.wait_for_load_state()
        people = page.locator("#people tbody tr td:nth-child(2)").all_inner_texts()
        assert sorted(people) == sorted([CAROL, DAN, ERIN])
        assert "acme.test, globex.test" in page.locator("dl.facts").inner_text()
        look_at(page, folder, "merged")

        page.goto(web_server.base_url + "/contacts")
        assert page.get_by_role("heading", name="ACME Group").count() == 1


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_the_map_draws_a_circle_per_person_and_a_click_opens_the_contact(
    smtp_server,
    web_server,
    exchange,  # noqa: F811
    request,
    viewport,
):
    store = smtp_server.store
    folder = shots_dir(request)
    with launched() as browser:
        alice = signed_in_page(
            browser, magic_link(store, web_server, person_id(store, ALICE)), VIEWPORTS[viewport]
        )
        alice.goto(web_server.base_url + "/map")
        assert sorted(circles(alice)) == sorted([ALICE, BOB, CAROL, DAN, ERIN])
        assert alice.locator("figure#people-map svg line").count() == 8  # pairs sharing a task
        assert alice.locator("ul.map-legend li").all_inner_texts() == [
            "example.com",
            "acme.test",
            "globex.test",
        ]
        look_at(alice, folder, "map-team-member")
        alice.locator(f"svg a[data-email='{CAROL}']").click()
        alice.wait_for_url(re.compile(r"/contacts/carol(%40|@)acme\.test$"))
        assert alice.get_by_role("heading", level=1).inner_text() == NAMES[CAROL]

        carol = signed_in_page(
            browser, magic_link(store, web_server, person_id(store, CAROL)), VIEWPORTS[viewport]
        )
        carol.goto(web_server.base_url + "/map")
        assert sorted(circles(carol)) == sorted([ALICE, BOB, CAROL, DAN])
        look_at(carol, folder, "map-client")
