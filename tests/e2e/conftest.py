"""The console in a real browser: headless Chromium (Debian's) driven by Playwright.

The browser is started once per run; each test gets a fresh context (no cookies) pointed
at its own RunningHub, on SQLite and on PostgreSQL. Without Chromium the tests fail
with what to install: they never skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.console.officers import Officers
from tests.harness import RunningHub

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"the console's browser tests need Chromium at {CHROMIUM}: install it with "
                    "`apt-get update && apt-get install -y --no-install-recommends chromium` "
                    "(`make test` and .ci/run do this)", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the console's browser tests need the Python package `playwright`: "
                    "run `pip install -e '.[test]'` (do not run `playwright install`; the "
                    "tests use Debian's Chromium)", pytrace=False)
    pw = sync_playwright().start()
    try:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    except Exception as exc:  # noqa: BLE001 (say what failed, in one line)
        pw.stop()
        pytest.fail(f"Chromium at {CHROMIUM} did not start: {exc}", pytrace=False)
    yield launched
    launched.close()
    pw.stop()


@pytest.fixture
def page(browser: Any, running: RunningHub) -> Iterator[Any]:
    """A fresh browser tab (no cookies) on this test's hub."""
    context = browser.new_context(base_url=str(running.http.base_url).rstrip("/"))
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def add_officer(running: RunningHub, agency: str = "compliance",
                name: str = "Casey Auditor") -> tuple[str, str]:
    """An account made by the code `hub officer add` runs; returns (username, password)."""
    officer, password = Officers(running.hub.engine, running.hub.site).add(
        f"officer-{uuid.uuid4().hex[:8]}", agency, name)
    return officer.username, password


def sign_in(page: Any, username: str, password: str) -> None:
    page.goto("/console/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def officer(running: RunningHub, page: Any) -> str:
    """A compliance officer signed in on `page`; returns the username."""
    username, password = add_officer(running)
    sign_in(page, username, password)
    page.get_by_role("heading", name="Find a participant").wait_for()
    return username
