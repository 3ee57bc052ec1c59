"""The console's administration pages in a real browser: create a user with the keyboard alone,
revoke that user's console session by accessor, an Admin refused Admin, and the pages at 390 px."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN
from tests.browser.test_console import Session
from tests.integration.server_proc import ServerProcess

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _focused(page: Any) -> str:
    return str(page.evaluate("document.activeElement.id"))


def test_create_a_user_and_revoke_their_session(browser: Any, server: ServerProcess) -> None:
    admin = Session(browser, server)
    carol = Session(browser, server)
    try:
        admin.sign_in(ADMIN)
        page = admin.page
        page.get_by_role("link", name="Users").click()
        page.wait_for_url("**/ui/admin/users")
        # The keyboard alone: each control is labelled and Tab moves through them in order.
        page.get_by_label("Username").focus()
        page.keyboard.type("carol")
        page.keyboard.press("Tab")
        assert _focused(page) == "u-password"
        page.keyboard.type("carol-password-1")
        page.keyboard.press("Tab")
        assert _focused(page) == "u-role"
        page.keyboard.type("Reader")
        page.keyboard.press("Escape")  # close the role suggestions
        page.keyboard.press("Tab")
        assert _focused(page) == "u-policies"
        page.keyboard.type("billing-read")
        page.keyboard.press("Enter")
        page.wait_for_url("**/ui/admin/users/carol?done=created")
        expect(page.get_by_role("status")).to_have_text("User created.")
        expect(page.locator("#user-role")).to_have_text("Reader")
        admin.shot("admin-user")

        carol.sign_in(("carol", "carol-password-1"))
        expect(carol.page.locator(".who")).to_contain_text("Reader")

        page.goto("/ui/admin/tokens")
        row = page.locator("tr", has_text="Reader · ui")
        expect(row).to_have_count(1)
        accessor = row.locator("code").inner_text()
        admin.shot("admin-tokens")
        page.get_by_role("button", name=f"Revoke token {accessor}").click()
        page.wait_for_url("**/ui/admin/tokens?done=revoked")
        expect(page.get_by_role("status")).to_have_text("Token revoked.")
        expect(page.locator("tr", has_text="Reader · ui")).to_have_count(0)

        carol.page.goto("/ui/")
        carol.page.wait_for_url("**/ui/login")  # her session ended with the token
        assert admin.errors == [] and carol.errors == []
    finally:
        admin.close()
        carol.close()


def test_an_admin_cannot_grant_admin_in_the_console(browser: Any, server: ServerProcess) -> None:
    s = Session(browser, server)
    try:
        s.sign_in(ADMIN)
        s.page.goto("/ui/admin/users")
        s.page.get_by_label("Username").fill("mallory")
        s.page.get_by_label("Password (12 characters or more, not a common one)").fill(
            "mallory-password-1"
        )
        s.page.get_by_label("Role").fill("SuperAdmin")
        s.page.get_by_role("button", name="Create user").click()
        expect(s.page.get_by_role("alert")).to_contain_text(
            re.compile("permission|denied|not", re.I)
        )
        expect(s.page.locator("table")).not_to_contain_text("mallory")
    finally:
        s.close()


@pytest.mark.parametrize("url", ["/ui/admin/users", "/ui/admin/users/alice", "/ui/admin/tokens",
                                 "/ui/admin/policies"])  # fmt: skip
def test_admin_pages_fit_390_px(browser: Any, server: ServerProcess, url: str) -> None:
    s = Session(browser, server, width=390)
    try:
        s.sign_in(ADMIN)
        s.page.goto(url)
        assert s.page.evaluate("document.documentElement.scrollWidth") <= 390
        name = url.removeprefix("/ui/admin/").replace("/", "-")
        s.shot(f"admin-{name}-narrow")
        assert s.errors == []
    finally:
        s.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_kv_metadata_edited_on_the_secret_page(
    browser: Any, server: ServerProcess, width: int
) -> None:
    s = Session(browser, server, width=width)
    try:
        s.sign_in(ADMIN)
        page = s.page
        page.goto("/ui/secret/app/billing/stripe")
        summary = page.get_by_text("Edit metadata")
        summary.focus()
        page.keyboard.press("Enter")  # <details> opens from the keyboard
        page.get_by_label("Max versions (0: the mount's setting)").fill("5")
        page.get_by_label(re.compile("Custom metadata")).fill(f"owner=billing\nwidth={width}")
        page.get_by_role("button", name="Save metadata").click()
        page.wait_for_url("**/ui/secret/app/billing/stripe?done=metadata")
        expect(page.get_by_role("status").first).to_have_text("Metadata saved.")
        facts = page.locator(".facts")
        expect(facts).to_contain_text("5")
        expect(facts).to_contain_text(f"owner=billing width={width}")
        page.get_by_text("Edit metadata").click()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        s.shot("secret-metadata" if width == 1280 else "secret-metadata-narrow")
        assert s.errors == []
    finally:
        s.close()
