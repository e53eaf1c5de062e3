"""Real-browser checks shared by the page tests: Debian's chromium driven by Playwright.

Each page a person uses is looked at as a person would: at a laptop's width and at a
phone's (390 px), signed in as they would be (by magic link), with a screenshot kept
under ``build/browser/<database>/<test>/`` for a human to look at, and two checks a human would
otherwise make by eye: nothing scrolls sideways, and axe-core (the accessibility engine,
from the ``axe-playwright-python`` package) finds no serious or critical violation.

Outside CI a missing chromium or Playwright skips the test; under ``CI=true`` it fails.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import TEST_DATABASE_URL

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = {"laptop": LAPTOP, "phone": PHONE}
SHOTS = Path(__file__).resolve().parents[2] / "build" / "browser"
# axe's "impact" levels that fail a page; "minor" and "moderate" are reported, not failed.
FAILING_IMPACTS = {"serious", "critical"}


def require_browser() -> None:
    """Skip (fail under CI) unless chromium, Playwright and axe are all here."""
    missing = [
        name
        for name, present in (
            ("chromium", CHROMIUM.exists()),
            ("playwright", importlib.util.find_spec("playwright") is not None),
            ("axe", importlib.util.find_spec("axe_playwright_python") is not None),
        )
        if not present
    ]
    if not missing:
        return
    message = f"{' and '.join(missing)} not installed"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI: {message}; the browser tests must run")
    pytest.skip(message)  # outside CI only: under CI=true this failed above


@contextmanager
def launched() -> Iterator[Browser]:
    """A headless chromium for the length of the block."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def signed_in_page(browser: Browser, magic_link: str, viewport: dict[str, int]) -> Page:
    """A fresh browser context at ``viewport``, signed in through ``magic_link``."""
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(magic_link)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^[^?#]*/(\?.*)?$"))
    return page


def shots_dir(request: pytest.FixtureRequest) -> Path:
    """``build/browser/<database>/<test name>/``, emptied for this run (the SQLite and
    PostgreSQL passes may run side by side)."""
    database = "postgresql" if TEST_DATABASE_URL else "sqlite"
    folder = SHOTS / database / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


def sideways_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the window (0: no sideways scrolling)."""
    width: int = page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )
    return max(0, width)


def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [node["html"][:160] for node in violation["nodes"][:3]],
        }
        for violation in results.response["violations"]
        if violation["impact"] in FAILING_IMPACTS
    ]


def look_at(page: Page, folder: Path, name: str) -> None:
    """Screenshot the page, then check it scrolls no sideways and passes axe."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
    assert sideways_overflow(page) == 0, f"{name} at {width}px scrolls sideways"
    violations = accessibility_violations(page)
    assert violations == [], f"{name} at {width}px: {violations}"
