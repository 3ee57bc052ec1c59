"""The web console over plain HTTP (no browser): `--no-ui`, the Secure cookie behind a TLS
proxy, and sign-in failures throttled and audited like API logins."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from strongroom import open_vault
from tests.conftest import fast_config
from tests.integration.server_proc import MASTER_KEY, ServerProcess, auth, token
from tests.rawsql import execute


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("uihttp")
    dsn = f"sqlite:///{tmp / 'vault.db'}"
    vault = open_vault(dsn, fast_config())
    vault.unlock(MASTER_KEY)
    vault.access.create_user("dora", "dora-password-1", "Admin")
    vault.access.create_user("ed", "ed-password-123", "Admin")
    vault.access.create_user("app1", "app1-password-1", "Reader")
    for i in range(150):  # a folder of two console pages (test_a_folder_page_shows_its_own_rows)
        vault.create_secret(f"pg/s{i:03d}", "v")
    for sub in ("a", "b", "c"):
        vault.create_secret(f"pg/{sub}/x", "v")
    vault.update_secret("pg/s120", "w")
    for i in range(120):  # more than the dashboard lists (test_dashboard_counts_every_expiring)
        vault.create_secret(f"exp/s{i:03d}", "v", expires_in=timedelta(days=3 + i // 60 * 10))
    vault.close()
    proc = ServerProcess(tmp, dsn=dsn, args=["--trusted-proxy", "127.0.0.1"]).start()
    yield proc
    assert proc.stop() == 0, proc.output()


def _pre(client: httpx.Client) -> str:
    page = client.get("/ui/login")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def _sign_in(client: httpx.Client, **form: str) -> str:
    """Start a console session (form: username and password, or token); its CSRF token."""
    done = client.post("/ui/login", data={"csrf": _pre(client), **form})
    assert done.status_code == 303, done.text
    page = client.get("/ui/admin/users")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def _disabled(server: ServerProcess) -> dict[str, bool]:
    rows = execute(server.dsn, "SELECT username, disabled FROM vault_users")
    return {name: bool(disabled) for name, disabled in rows}


def test_only_a_superadmin_disables_an_administrator(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as admin:
        csrf = _sign_in(admin, username="dora", password="dora-password-1")
        refused = admin.post("/ui/admin/users/ed", data={"csrf": csrf, "action": "disable"})
        assert refused.status_code == 403, refused.text
        assert _disabled(server)["ed"] is False
        # An Admin still manages the roles below its own.
        for flag in ("disable", "enable"):
            done = admin.post("/ui/admin/users/app1", data={"csrf": csrf, "action": flag})
            assert done.status_code == 303, done.text
            assert _disabled(server)["app1"] is (flag == "disable")
    with httpx.Client(base_url=server.url) as superadmin:
        csrf = _sign_in(superadmin, token=token("SuperAdmin"))
        for flag in ("disable", "enable"):
            done = superadmin.post("/ui/admin/users/ed", data={"csrf": csrf, "action": flag})
            assert done.status_code == 303, done.text
            assert _disabled(server)["ed"] is (flag == "disable")


def test_a_folder_page_shows_its_own_rows(server: ServerProcess) -> None:
    """Folders first, then secrets by name, 100 a page; each row carries its own version."""
    row = re.compile(r'<a href="/ui/secret/pg/(s\d+)">s\d+</a></td><td>(\d+)</td>')
    with httpx.Client(base_url=server.url) as console:
        _sign_in(console, token=token("SuperAdmin"))
        first = console.get("/ui/secrets", params={"prefix": "pg/"}).text
        assert "Page 1 of 2 (153 entries)" in first
        assert [f"{s}/" for s in "abc"] == re.findall(r">([abc]/)</a>", first)
        assert [n for n, _ in row.findall(first)] == [f"s{i:03d}" for i in range(97)]
        second = console.get("/ui/secrets", params={"prefix": "pg/", "page": "2"}).text
        rows = row.findall(second)
        assert [n for n, _ in rows] == [f"s{i:03d}" for i in range(97, 150)]
        assert {n: v for n, v in rows if v != "1"} == {"s120": "2"}
        filtered = console.get("/ui/secrets", params={"prefix": "pg/", "filter": "s12"}).text
        assert [n for n, _ in row.findall(filtered)] == [f"s{i}" for i in range(120, 130)]


def test_dashboard_counts_every_expiring_secret(server: ServerProcess) -> None:
    """The dashboard lists the 100 soonest, but counts all 120 (60 within 7 days)."""
    with httpx.Client(base_url=server.url) as console:
        _sign_in(console, token=token("SuperAdmin"))
        page = console.get("/ui/").text
    assert '<span id="expiring-week">60</span>' in page
    assert '<span id="expiring-month">120</span>' in page
    assert "The 100 soonest:" in page
    assert len(re.findall(r'href="/ui/secret/exp/s\d+"', page)) == 100


def test_cookie_is_secure_behind_a_tls_proxy(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, headers={"x-forwarded-proto": "https"}) as client:
        pre = _pre(client)
        # httpx keeps Secure cookies for https URLs only: send the sign-in form's one by hand.
        done = client.post(
            "/ui/login",
            data={"csrf": pre, "username": "dora", "password": "dora-password-1"},
            headers={"cookie": f"strongroom_ui_pre={pre}"},
        )
        assert done.status_code == 303
        cookie = done.headers["set-cookie"]
        assert "strongroom_ui=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
    with httpx.Client(base_url=server.url) as plain:
        pre = _pre(plain)
        done = plain.post(
            "/ui/login", data={"csrf": pre, "username": "dora", "password": "dora-password-1"}
        )
        assert "Secure" not in done.headers["set-cookie"]


def test_failed_sign_ins_are_throttled_and_audited(server: ServerProcess) -> None:
    statuses = []
    with httpx.Client(base_url=server.url) as client:
        pre = _pre(client)
        for _ in range(8):
            r = client.post("/ui/login", data={"csrf": pre, "username": "eve", "password": "x"})
            statuses.append(r.status_code)
            assert "x" not in re.findall(r'value="([^"]*)"', r.text)[1:]
        no_csrf = client.post("/ui/login", data={"username": "dora", "password": "dora-password-1"})
        assert no_csrf.status_code == 403
    assert statuses[0] == 401 and statuses[-1] == 429
    logs = httpx.get(
        f"{server.url}/api/vault/audit", params={"action": "login", "limit": 50}, headers=auth()
    ).json()["logs"]
    assert sum(1 for e in logs if not e["success"]) >= 8


def test_no_ui_turns_the_console_off(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path, args=["--no-ui"]).start()
    try:
        assert httpx.get(f"{proc.url}/ui/").status_code == 404
        assert httpx.get(f"{proc.url}/ui/login").status_code == 404
        assert httpx.get(f"{proc.url}/docs/static/swagger-ui.css").status_code == 200
        assert "Web console" not in proc.output()
    finally:
        assert proc.stop() == 0


def test_bad_tokens_throttle_only_their_own_client(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as client:
        pre = _pre(client)

        def paste(ip: str) -> int:
            r = client.post(
                "/ui/login",
                data={"csrf": pre, "token": "not-a-token"},
                headers={"X-Forwarded-For": ip},
            )
            return r.status_code

        from_one = [paste("10.9.0.1") for _ in range(8)]
        assert from_one[0] == 401 and from_one[-1] == 429
        assert paste("10.9.0.2") == 401  # another client is not locked out


def test_a_non_ascii_csrf_token_is_refused_not_a_500(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as client:
        pre = _pre(client)
        r = client.post(
            "/ui/login", data={"csrf": "é" * len(pre), "username": "d", "password": "p"}
        )
        assert r.status_code == 403
