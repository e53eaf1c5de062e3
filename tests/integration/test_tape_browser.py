"""The activity tape and the settings' token section in a real chromium, at 1280 and 390 px.

Alice (team) makes an API token on ``/settings``, sees it once, revokes it, and makes a
feed link; then narrows ``/activity`` with its filter form, clears a filter by its chip,
narrows to a person by clicking their name, and follows the view's Atom link as a feed
reader would.  Each state is screenshotted under ``build/browser/<test>/`` and checked by
``browser.look_at`` (no sideways scrolling, no serious axe-core violation).  The world
is ``test_activity_tape``'s.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

import httpx
import pytest

from tests.integration.browser import VIEWPORTS, launched, look_at, shots_dir, signed_in_page
from tests.integration.test_activity_tape import ATOM, tape  # noqa: F401 (a fixture)
from tests.integration.test_auth import magic_link
from tests.integration.test_threads import person_id


def shown(page) -> list[str]:
    """The stream's lines without their time, newest first."""
    return [" ".join(item.split()[2:]) for item in page.locator("ol.events > li").all_inner_texts()]


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_team_member_manages_tokens_and_filters_the_tape(
    store,
    tape,  # noqa: F811
    web_server,
    request,
    viewport,
):
    folder = shots_dir(request)
    base = web_server.base_url
    link = magic_link(store, web_server, person_id(store, "alice@example.com"))
    with launched() as browser:
        page = signed_in_page(browser, link, VIEWPORTS[viewport])
        page.goto(f"{base}/settings#api-tokens")
        page.get_by_label("Name", exact=True).fill("Deploy script")
        page.get_by_role("button", name="Create token").click()
        token = page.get_by_label("The new token").input_value()
        assert token.startswith("qm_")
        assert page.locator("#api-tokens tbody tr", has_text="Deploy script").count() == 1
        look_at(page, folder, "token-made")
        with httpx.Client(base_url=base, timeout=10) as script:
            headers = {"Authorization": f"Bearer {token}"}
            assert script.get("/api/tasks", headers=headers).status_code == 200
            page.get_by_role("button", name="Revoke the token Deploy script").click()
            page.wait_for_url(f"{base}/settings#api-tokens")
            assert script.get("/api/tasks", headers=headers).status_code == 401
        assert page.locator("#api-tokens tbody tr", has_text="Deploy script").count() == 0
        assert token not in page.content()
        page.get_by_role("button", name="Make a feed link").click()
        page.wait_for_url(f"{base}/settings#feed")
        assert page.get_by_label("Your feed link").input_value().startswith(f"{base}/activity.atom")
        look_at(page, folder, "settings")

        page.goto(f"{base}/activity")
        page.get_by_label("Kind").select_option("messages")
        page.get_by_label("Company").fill("globex.test")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(re.compile(r"/activity\?company=globex\.test&kind=messages$"))
        assert shown(page) == ["#2 Shipping delay Dave Client wrote a message"]
        look_at(page, folder, "filtered")

        page.get_by_role("link", name="Clear the filter kind: messages").click()
        page.wait_for_url(re.compile(r"/activity\?company=globex\.test$"))
        assert len(shown(page)) == 5
        page.locator("ol.events a.who", has_text="Dave Client").first.click()
        page.wait_for_url(re.compile(r"person=dave%40mail\.globex\.test"))
        feed_href = page.get_by_role("link", name="Atom feed of this view").get_attribute("href")
        look_at(page, folder, "by-person")
    assert feed_href is not None
    with httpx.Client(timeout=10) as reader:
        document = reader.get(feed_href)
    assert document.status_code == 200
    titles = [
        entry.findtext(f"{ATOM}title")
        for entry in ElementTree.fromstring(document.content).findall(f"{ATOM}entry")
    ]
    assert titles == [
        "Alice Team unassigned it · #2 Shipping delay",
        "Alice Team reopened it · #2 Shipping delay",
        "Alice Team removed the tag waiting · #2 Shipping delay",
        "Dave Client wrote a message · #2 Shipping delay",
        "Dave Client opened the task · #2 Shipping delay",
    ]
