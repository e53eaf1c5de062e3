"""The inbox in a real chromium, at 1280 and 390 px: search, filter by clicking, keys.

A team member (Alice) finds a task by a word from one of its messages through the inbox's
search box, filters by a tag chip and by an assignee link, clears a filter, and walks the
rows with j/k, opens one with o, and reaches the reply box with r.  Each state is
screenshotted under ``build/browser/<database>/<test>/`` and checked by ``browser.look_at`` (no
sideways scrolling, no serious axe-core violation).  The world is ``test_inbox``'s.
"""

from __future__ import annotations

import re

import pytest

from tests.integration.browser import VIEWPORTS, launched, look_at, shots_dir, signed_in_page
from tests.integration.test_auth import magic_link
from tests.integration.test_inbox import tokens  # noqa: F401 (a fixture)
from tests.integration.test_threads import person_id


def shown(page) -> list[int]:
    """The task numbers of the inbox rows, in order."""
    return [
        int(text.split()[0].lstrip("#")) for text in page.locator("a[data-open]").all_inner_texts()
    ]


def current_row(page) -> int | None:
    """The number of the row j/k has reached, if any."""
    rows = page.locator("tr.current a[data-open]")
    return int(rows.inner_text().split()[0].lstrip("#")) if rows.count() else None


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_team_member_searches_filters_and_walks_the_inbox_by_keyboard(
    store,
    tokens,  # noqa: F811
    web_server,
    request,
    viewport,
):
    folder = shots_dir(request)
    link = magic_link(store, web_server, person_id(store, "alice@example.com"))
    with launched() as browser:
        page = signed_in_page(browser, link, VIEWPORTS[viewport])
        assert shown(page) == [4, 3, 2, 1]
        look_at(page, folder, "inbox")

        page.get_by_role("searchbox", name="Search the inbox").fill("walrus")
        page.get_by_role("searchbox", name="Search the inbox").press("Enter")
        page.wait_for_url(re.compile(r"/\?q=walrus$"))
        assert shown(page) == [1]
        look_at(page, folder, "search")

        page.goto(web_server.base_url + "/")
        page.locator("tr", has=page.locator('a[href="/tasks/2"]')).get_by_role(
            "link", name="shipping", exact=True
        ).click()
        page.wait_for_url(re.compile(r"/\?tag=shipping$"))
        assert shown(page) == [2]
        page.get_by_role("link", name="Bob Team").click()
        page.wait_for_url(re.compile(r"/\?tag=shipping&assignee=bob%40example.com$"))
        assert shown(page) == [2]
        look_at(page, folder, "filtered")
        page.get_by_role("link", name="Clear the filter tag: shipping").click()
        page.wait_for_url(re.compile(r"/\?assignee=bob%40example.com$"))
        assert shown(page) == [2]

        page.goto(web_server.base_url + "/")
        page.wait_for_selector("[data-keys]:not([hidden])", state="attached")  # qmail.js is running
        page.keyboard.press("j")
        assert current_row(page) == 4
        page.keyboard.press("j")
        page.keyboard.press("j")
        page.keyboard.press("k")
        assert current_row(page) == 3
        focused = page.evaluate("document.activeElement.getAttribute('href')")
        assert focused == "/tasks/3"
        look_at(page, folder, "keyboard")
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.id") == "inbox-q"
        page.keyboard.press("j")  # typed into the search box, not a shortcut
        assert page.get_by_role("searchbox").input_value() == "j"
        assert current_row(page) == 3
        page.keyboard.press("Escape")
        page.evaluate("document.activeElement.blur()")
        page.keyboard.press("o")
        page.wait_for_url(re.compile(r"/tasks/3$"))
        page.keyboard.press("r")
        assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"
        assert page.evaluate("document.activeElement.closest('form.reply') !== null")
