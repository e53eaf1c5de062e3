"""One real browser run: Debian's chromium, driven by Playwright, signs in by magic link.

httpx cannot tell whether a real browser keeps the ``SameSite=Lax`` HttpOnly cookie across
the redirect, or whether the form's CSRF field survives a click; this test can.  It skips
when chromium or Playwright is missing, except under CI, where it must run.
"""

from __future__ import annotations

import pytest

from qmail import models
from qmail.context import Context
from qmail.db import session_scope
from tests.integration.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.integration.conftest import WebServer


@pytest.fixture
def dana_link(store: Context, web_server: WebServer) -> str:
    """Dana, a client in one task; a fresh magic link for her."""
    with session_scope(store.engine) as session:
        dana = models.Person(email="dana@acme.test", name="Dana Client")
        task = models.Task(number=1, title="Quarterly report draft")
        session.add_all([dana, task])
        session.flush()
        branch = models.Branch(task_id=task.id)
        session.add(branch)
        session.flush()
        session.add(models.BranchMember(branch_id=branch.id, person_id=dana.id))
        dana_id = dana.id
    assert dana_id is not None
    return f"{web_server.base_url}/auth/magic/{store.links.make_login(dana_id)}"


def test_browser_signs_in_by_magic_link_and_sees_the_inbox(dana_link, web_server, tmp_path):
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(dana_link)
            assert "Sign in as dana@acme.test?" in page.inner_text("h1")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{web_server.base_url}/")
            assert "Quarterly report draft" in page.inner_text("table.tasks")
            assert "dana@acme.test" in page.inner_text("header")
            cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
            assert cookies["qmail_session"]["httpOnly"]
            assert cookies["qmail_session"]["sameSite"] == "Lax"
            page.screenshot(path=str(tmp_path / "inbox.png"), full_page=True)
        finally:
            browser.close()
