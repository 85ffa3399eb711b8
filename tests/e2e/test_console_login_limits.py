"""The login page says plainly when a username is locked or an address must wait."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Response, expect

from hub.settings import Settings
from tests.e2e.conftest import add_officer, sign_in
from tests.harness import RunningHub


def _posted(response: Response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/console/login")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """One failure locks a username; two from an address make it wait."""
    return settings.model_copy(update={"console_login_max_failures": 1,
                                       "console_login_address_max_failures": 2})


def test_locked_username_and_limited_address_get_a_plain_message(
    running: RunningHub, page: Page,
) -> None:
    """A locked account, even with its password, and a limited address read a sentence, not a trace."""
    username, password = add_officer(running)
    sign_in(page, username, "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("Unknown username or wrong password.")

    with page.expect_response(_posted) as locked:
        sign_in(page, username, password)
    assert locked.value.status == 423
    expect(page.get_by_role("alert")).to_have_text(
        "Too many failed sign-ins: this username is locked. A compliance officer can unlock "
        "it with `hub officer unlock`.")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    sign_in(page, "no.such.officer", "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("Unknown username or wrong password.")
    with page.expect_response(_posted) as limited:
        sign_in(page, username, password)
    assert limited.value.status == 429 and int(limited.value.headers["retry-after"]) > 800
    expect(page.get_by_role("alert")).to_have_text(
        "Too many failed sign-ins. Wait "
        f"{limited.value.headers['retry-after']} seconds, then try again.")
    assert not any(c["name"] == "lead_console" for c in page.context.cookies())
