"""The web console in a real browser: issue 13's scenarios 1-13, and escaping."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN, IMAGES, LIMITED
from tests.integration.server_proc import MASTER_KEY, ServerProcess, auth

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


class Session:
    """A browser context and page that record console errors and every request."""

    def __init__(self, browser: Any, server: ServerProcess, width: int = 1280) -> None:
        self.server = server
        self.context = browser.new_context(
            viewport={"width": width, "height": 900}, base_url=server.url
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def sign_in(self, who: tuple[str, str]) -> None:
        page = self.page
        page.goto("/ui/login")
        page.get_by_label("Username").fill(who[0])
        page.get_by_label("Password").fill(who[1])
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url("**/ui/")

    def shot(self, name: str) -> None:
        IMAGES.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(IMAGES / f"ui-{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def admin(browser: Any, server: ServerProcess) -> Any:
    session = Session(browser, server)
    session.sign_in(ADMIN)
    yield session
    session.close()


def _reveal(page: Any) -> str:
    page.get_by_role("button", name="Reveal").click()
    expect(page.locator("#secret-value")).not_to_have_class(re.compile("masked"))
    return str(page.locator("#secret-value").inner_text())


def test_create_reveal_edit_rollback_delete_and_audit(admin: Session) -> None:
    """Scenarios 1-5 (and the escape test): every step in the browser, then the audit page."""
    page, path, value = admin.page, "app/ui/flow", "first-Value-9f3b"
    page.goto("/ui/secrets")
    admin.shot("secrets")
    page.get_by_role("link", name="New secret").click()
    page.get_by_label("Path").fill(path)
    page.get_by_label("Value", exact=True).fill(value)
    page.get_by_label("Description").fill("<script>window.pwned = 1</script> & <b>bold</b>")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(f"**/ui/secret/{path}")
    # Scenario 2: the value is not in the HTML before Reveal; after it, it matches.
    assert value not in page.content()
    assert page.locator("#description").inner_text() == (
        "<script>window.pwned = 1</script> & <b>bold</b>"
    )
    assert page.evaluate("window.pwned") is None
    admin.shot("secret")
    assert _reveal(page) == value
    # Scenario 3: edit (version 2), then roll back to version 1 (version 3).
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("New value").fill("second-value")
    page.get_by_role("button", name="Save new version").click()
    page.wait_for_url(f"**/ui/secret/{path}")
    assert _reveal(page) == "second-value"
    page.get_by_role("link", name="Roll back to 1").click()
    assert page.get_by_role("heading").inner_text() == f"Roll back {path} to version 1?"
    page.get_by_role("button", name="Roll back").click()
    page.wait_for_url(f"**/ui/secret/{path}")
    assert "Value (version 3)" in page.content()
    assert _reveal(page) == value
    # Scenario 4: delete, with a confirmation naming the path.
    page.get_by_role("link", name="Delete").click()
    assert page.get_by_role("heading").inner_text() == f"Delete {path}?"
    page.get_by_role("button", name=f"Delete {path}").click()
    page.wait_for_url("**/ui/secrets?prefix=app/ui/")
    assert "Nothing here." in page.content()
    # Scenario 5: the audit page shows each step.
    page.goto(f"/ui/audit?path={path}")
    actions = page.locator("table.entries tbody tr td:nth-child(3)").all_inner_texts()
    for step in ("create", "read", "update", "rollback", "delete"):
        assert step in actions, (step, actions)
    admin.shot("audit")
    assert admin.errors == []


def test_sign_out_then_back_shows_no_secret(admin: Session) -> None:
    """Scenario 6: after sign-out the back button shows no secret (no-store, session ended)."""
    page = admin.page
    page.goto("/ui/secret/db/main")
    assert _reveal(page) == "value-of-db/main"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/login")
    page.go_back()
    page.wait_for_load_state()
    assert "value-of-db/main" not in page.content()
    assert "Sign in" in page.content()
    assert page.request.get("/ui/secret/db/main", max_redirects=0).status == 303


def test_locked_vault_unlocked_by_admin(browser: Any, server: ServerProcess) -> None:
    """Scenario 7: every page says locked; a non-admin is told to ask; an admin unlocks."""
    user, admin = Session(browser, server), Session(browser, server)
    user.sign_in(LIMITED)
    admin.sign_in(ADMIN)
    httpx.post(f"{server.url}/api/vault/lock", headers=auth()).raise_for_status()
    try:
        user.page.goto("/ui/secrets")
        assert "ask an administrator" in user.page.content()
        assert user.page.locator("#master_key").count() == 0
        admin.page.goto("/ui/")
        assert "The vault is locked" in admin.page.content()
        admin.shot("locked")
        admin.page.get_by_label("Master key").fill("wrong-key-0123456789")
        admin.page.get_by_role("button", name="Unlock").click()
        assert "The vault is locked" in admin.page.content()
        assert "wrong-key" not in admin.page.content()
        admin.page.get_by_label("Master key").fill(MASTER_KEY)
        admin.page.get_by_role("button", name="Unlock").click()
        admin.page.wait_for_url("**/ui/")
        assert admin.page.locator("#secret-count").count() == 1
        assert MASTER_KEY not in admin.page.content()
        admin.shot("dashboard")
    finally:
        httpx.post(
            f"{server.url}/api/vault/unlock", headers=auth(), json={"master_key": MASTER_KEY}
        )
        user.close()
        admin.close()


def test_policy_limited_user_sees_only_its_paths(browser: Any, server: ServerProcess) -> None:
    """Scenario 8: listings, counts, the dashboard and typed URLs show only app/billing/*."""
    user = Session(browser, server)
    try:
        user.sign_in(LIMITED)
        page = user.page
        assert page.locator("#secret-count").inner_text() == "2"
        for url in ("/ui/", "/ui/secrets", "/ui/secrets?prefix=app/"):
            page.goto(url)
            text = page.content()
            assert "shipping" not in text and "db/main" not in text and "db/" not in text
        page.goto("/ui/secrets?prefix=app/billing/")
        names = page.locator("table.secrets tbody td:first-child").all_inner_texts()
        assert sorted(names) == ["paypal", "stripe"]
        for url in ("/ui/secret/app/shipping/key", "/ui/secret/db/main", "/ui/edit/db/main"):
            response = page.goto(url)
            assert response is not None and response.status == 403
            assert "value-of" not in page.content() and "credential" not in page.content()
        assert page.goto("/ui/secrets?prefix=db/").status == 200
        assert "Nothing here." in page.content()
        assert page.goto("/ui/audit").status == 403
        page.goto("/ui/secret/app/billing/stripe")
        assert _reveal(page) == "value-of-app/billing/stripe"
        csrf = page.locator("#secret-value").get_attribute("data-csrf")
        refused = page.request.post(
            "/ui/reveal",
            form={"path": "app/shipping/key"},
            headers={"x-csrf-token": csrf or "", "accept": "application/json"},
        )
        assert refused.status == 403 and "value-of" not in refused.text()
    finally:
        user.close()


def test_post_without_csrf_is_refused(admin: Session, server: ServerProcess) -> None:
    """Scenario 9: a state-changing POST without (or with a wrong) CSRF token: 403, no change."""
    req = admin.page.request
    for form in (
        {"path": "app/csrf/x", "value": "v"},
        {"path": "app/csrf/x", "value": "v", "csrf": "bad"},
    ):
        assert req.post("/ui/new", form=form, max_redirects=0).status == 403
    assert req.post("/ui/delete/db/main", form={}, max_redirects=0).status == 403
    assert req.post("/ui/reveal", form={"path": "db/main"}).status == 403
    listed = httpx.get(
        f"{server.url}/api/vault/secrets", params={"prefix": "app/csrf"}, headers=auth()
    )
    assert listed.json()["count"] == 0
    assert httpx.get(f"{server.url}/api/vault/secrets/db/main", headers=auth()).status_code == 200


def test_headers_cookie_and_no_console_errors(admin: Session) -> None:
    """Scenario 10: CSP (no inline script, no eval), frame-ancestors, no-referrer, nosniff,
    no-store; the session cookie is HttpOnly and SameSite=Strict; no console errors."""
    page = admin.page
    for url in ("/ui/", "/ui/secrets", "/ui/secret/db/main", "/ui/audit"):
        response = page.goto(url)
        assert response is not None and response.status == 200
        headers = response.headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp and "frame-ancestors 'none'" in csp
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
        assert page.locator("script:not([src])").count() == 0
    page.goto("/ui/secret/db/main")
    _reveal(page)
    (cookie,) = [c for c in admin.context.cookies() if c["name"] == "strongroom_ui"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain HTTP on loopback; TLS: tests/integration/test_ui_http
    assert admin.errors == []


def test_every_request_goes_to_own_origin(browser: Any, server: ServerProcess) -> None:
    """Scenario 11: a full session (sign in, browse, open, reveal, audit, docs, sign out)."""
    s = Session(browser, server)
    try:
        s.sign_in(ADMIN)
        for url in (
            "/ui/secrets",
            "/ui/secrets?prefix=app/billing/",
            "/ui/secret/app/billing/stripe",
        ):
            s.page.goto(url)
        _reveal(s.page)
        s.page.goto("/ui/audit")
        s.page.goto("/ui/admin/users")
        s.page.goto("/docs")
        s.page.locator(".opblock").first.wait_for()
        s.page.goto("/ui/")
        s.page.get_by_role("button", name="Sign out").click()
        s.page.wait_for_url("**/ui/login")
        assert len(s.requests) > 10
        foreign = [u for u in s.requests if not u.startswith(server.url + "/")]
        assert foreign == []
        assert s.errors == []
    finally:
        s.close()


def test_narrow_browser_is_usable(browser: Any, server: ServerProcess) -> None:
    """Scenario 12: at 390 px the browser fits the screen and its links work."""
    s = Session(browser, server, width=390)
    try:
        s.sign_in(ADMIN)
        s.page.goto("/ui/secrets?prefix=app/billing/")
        width = s.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        s.shot("mobile")
        link = s.page.get_by_role("link", name="stripe")
        assert link.is_visible()
        link.click()
        s.page.wait_for_url("**/ui/secret/app/billing/stripe")
        assert s.page.evaluate("document.documentElement.scrollWidth") <= 390
        assert _reveal(s.page) == "value-of-app/billing/stripe"
    finally:
        s.close()


def test_docs_render_offline(browser: Any, server: ServerProcess) -> None:
    """Scenario 13: /docs shows Swagger UI's operations with every other host cut off."""
    s = Session(browser, server)
    blocked: list[str] = []

    def only_ours(route: Any) -> None:
        if route.request.url.startswith(server.url + "/"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    try:
        s.page.route("**/*", only_ours)
        s.page.goto("/docs")
        s.page.locator(".opblock").first.wait_for(timeout=15_000)
        assert s.page.locator(".opblock").count() > 10
        assert blocked == []
        s.shot("docs")
    finally:
        s.close()


def test_bad_input_is_an_error_page(admin: Session) -> None:
    """Malformed paths and parameters are a 4xx page that shows the input as text."""
    page = admin.page
    for url in (
        "/ui/secret/%3Cscript%3Ealert(1)%3C/script%3E",
        "/ui/secrets?prefix=../",
        "/ui/secrets?page=x",
    ):
        response = page.goto(url)
        assert response is not None and 400 <= response.status < 500, url
        assert page.locator("script:not([src])").count() == 0
    response = page.goto("/ui/secret/no/such")
    assert response is not None and response.status == 404
    assert re.search(r"no secret", page.content())
