"""Every page, for the team and for a client, on a laptop and on a 390 px phone.

A real chromium signs in by magic link and opens each page a person of that role can
reach; each is screenshotted (``build/browser/<database>/<test>/``), must not scroll sideways, and
must pass axe-core with no serious or critical violation (``tests/integration/browser.py``).
The world: Carol (a client) opened task 1 by mail, the team took part, Alice opened a
hidden branch with Bob; the client's pages must not show it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qmail.context import Context
from tests.integration.browser import VIEWPORTS, launched, look_at, shots_dir, signed_in_page
from tests.integration.conftest import WebServer
from tests.integration.test_auth import magic_link
from tests.integration.test_pages import (
    ALICE,
    CAROL,
    SECRET,
    open_hidden_branch,
    signed_in,
    world,  # noqa: F401 (a fixture)
)
from tests.integration.test_threads import person_id

TEAM_PAGES = {
    "inbox": "/",
    "task": "/tasks/1",
    "search": "/search?q=invoice",
    "contacts": "/contacts",
    "contact": f"/contacts/{CAROL}",
    "activity": "/activity",
    "companies": "/companies",
    "company": "/companies/acme.test",  # Carol's own company: a client may see it
    "people-map": "/map",
    "outbox": "/outbox",
    "webhooks": "/webhooks",  # a client gets the "Not allowed" page
    "settings": "/settings",
    "new-task": "/tasks/new",  # a client gets the "Not allowed" page
    "not-found": "/tasks/999",
}
CLIENT_PAGES = {
    name: path for name, path in TEAM_PAGES.items() if name not in {"outbox", "contact"}
} | {"contact": f"/contacts/{ALICE}"}


@pytest.fixture
def hidden_world(world: Context, web_server: WebServer) -> Iterator[Context]:  # noqa: F811
    with signed_in(world, web_server, ALICE) as alice:
        assert open_hidden_branch(alice, world).status_code == 303
    yield world


# Layout and accessibility only: the pages' queries run on PostgreSQL in test_pages,
# test_inbox and test_task_page.
@pytest.mark.same_on_any_database
@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
@pytest.mark.parametrize(
    ("email", "pages"), [(ALICE, TEAM_PAGES), (CAROL, CLIENT_PAGES)], ids=["team", "client"]
)
def test_every_page_reads_on_a_laptop_and_a_phone(
    hidden_world, web_server, request, email, pages, viewport
):
    folder = shots_dir(request)
    link = magic_link(hidden_world, web_server, person_id(hidden_world, email))
    with launched() as browser:
        page = signed_in_page(browser, link, VIEWPORTS[viewport])
        for name, path in pages.items():
            page.goto(web_server.base_url + path)
            look_at(page, folder, name)
            if email == CAROL:
                assert SECRET not in page.content(), f"the hidden branch leaks on {path}"
