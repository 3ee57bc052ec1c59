"""Console sessions are recorded tokens: they hold on every worker of `--workers 2`, the CSRF
token is the same on every worker, and sign-out revokes the session's token everywhere."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from strongroom import open_vault
from tests.conftest import fast_config
from tests.integration.server_proc import MASTER_KEY, ServerProcess, auth

COOKIE = "strongroom_ui"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("uisessions")
    dsn = f"sqlite:///{tmp / 'vault.db'}"
    vault = open_vault(dsn, fast_config())
    vault.unlock(MASTER_KEY)
    vault.access.create_user("dora", "dora-password-1", "Admin")
    vault.close()
    proc = ServerProcess(tmp, dsn=dsn, workers=2).start()
    assert len(proc.children()) == 2
    yield proc
    assert proc.stop() == 0, proc.output()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _sign_in(server: ServerProcess, **form: str) -> str:
    """Sign in (username and password, or token); the session cookie's value."""
    with httpx.Client(base_url=server.url) as client:
        pre = _csrf(client.get("/ui/login").text)
        done = client.post("/ui/login", data={"csrf": pre, **form})
        assert done.status_code == 303, done.text
        cookie = client.cookies.get(COOKIE)
    assert cookie
    return cookie


def _fresh(server: ServerProcess, cookie: str) -> httpx.Client:
    """A client on a new connection (so the request may reach either worker)."""
    return httpx.Client(
        base_url=server.url, cookies={COOKIE: cookie}, headers={"connection": "close"}
    )


def _signed_in(server: ServerProcess, cookie: str) -> tuple[int, str]:
    with _fresh(server, cookie) as client:
        page = client.get("/ui/admin/users")
    return page.status_code, page.text


def test_a_session_holds_on_every_worker_and_sign_out_revokes_it(server: ServerProcess) -> None:
    cookie = _sign_in(server, username="dora", password="dora-password-1")
    assert cookie.startswith("sr.")  # a recorded token, not a per-worker session id
    csrfs = set()
    for i in range(20):
        status, html = _signed_in(server, cookie)
        assert status == 200, f"request {i}: {status}"
        assert "dora" in html
        csrfs.add(_csrf(html))
    assert len(csrfs) == 1  # every worker derives the same CSRF token
    csrf = csrfs.pop()
    for _ in range(6):  # state-changing requests with that CSRF token, on fresh connections
        with _fresh(server, cookie) as client:
            done = client.post("/ui/audit/verify", data={"csrf": csrf, "back": "/ui/audit"})
            assert done.status_code == 303, done.text
            assert client.post("/ui/audit/verify", data={"back": "/ui/audit"}).status_code == 403
    records = httpx.get(f"{server.url}/api/vault/tokens", headers=auth()).json()["tokens"]
    assert [t["kind"] for t in records if t["user_id"] == 1] == ["ui"]
    # The session is the token: the API accepts it too, until sign-out.
    bearer = {"authorization": f"Bearer {cookie}"}
    assert httpx.get(f"{server.url}/api/vault/status", headers=bearer).status_code == 200

    with _fresh(server, cookie) as client:
        out = client.post("/ui/logout", data={"csrf": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/ui/login"
        assert f'{COOKIE}=""' in out.headers["set-cookie"]
    # Refused on every worker once the revocation epoch is seen (1 s bound).
    deadline = time.monotonic() + 5
    while httpx.get(f"{server.url}/api/vault/status", headers=bearer).status_code != 401:
        assert time.monotonic() < deadline, "the token was not revoked"
        time.sleep(0.05)
    time.sleep(1.1)  # the other worker's staleness bound
    for _ in range(10):
        with _fresh(server, cookie) as client:
            page = client.get("/ui/admin/users")
        assert page.status_code == 303 and page.headers["location"] == "/ui/login"
        assert httpx.get(f"{server.url}/api/vault/status", headers=bearer).status_code == 401
    assert not [t for t in httpx.get(f"{server.url}/api/vault/tokens", headers=auth()).json()[
        "tokens"] if t["kind"] == "ui"]  # fmt: skip


def test_a_pasted_token_works_on_every_worker_and_outlives_sign_out(
    server: ServerProcess,
) -> None:
    made = httpx.post(
        f"{server.url}/api/vault/tokens",
        json={"user_id": 42, "role": "Admin", "ttl": "1h"},
        headers=auth(),
    )
    assert made.status_code == 201, made.text
    pasted = made.json()["token"]
    cookie = _sign_in(server, token=pasted)
    assert cookie == pasted
    for _ in range(10):
        assert _signed_in(server, cookie)[0] == 200
    with _fresh(server, cookie) as client:
        csrf = _csrf(client.get("/ui/").text)
        assert client.post("/ui/logout", data={"csrf": csrf}).status_code == 303
    # Sign-out forgets a pasted token but does not revoke it (it may be in use elsewhere).
    bearer = {"authorization": f"Bearer {pasted}"}
    assert httpx.get(f"{server.url}/api/vault/status", headers=bearer).status_code == 200


def test_another_sessions_csrf_token_is_refused(server: ServerProcess) -> None:
    first = _sign_in(server, username="dora", password="dora-password-1")
    second = _sign_in(server, username="dora", password="dora-password-1")
    assert first != second
    with _fresh(server, first) as client:
        theirs = _csrf(client.get("/ui/").text)
    with _fresh(server, second) as client:
        refused = client.post("/ui/audit/verify", data={"csrf": theirs})
        assert refused.status_code == 403


def test_a_session_ends_when_its_record_expires(tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path / 'vault.db'}"
    vault = open_vault(dsn, fast_config())
    vault.unlock(MASTER_KEY)
    vault.access.create_user("dora", "dora-password-1", "Admin")
    vault.close()
    proc = ServerProcess(tmp_path, dsn=dsn, args=["--token-ttl", "2s"]).start()
    try:
        started = time.monotonic()
        cookie = _sign_in(proc, username="dora", password="dora-password-1")
        assert _signed_in(proc, cookie)[0] == 200
        deadline = started + 10
        while _signed_in(proc, cookie)[0] == 200:
            assert time.monotonic() < deadline, "the session outlived its token"
            time.sleep(0.1)
        # Not before the record's expiry: its times are whole seconds, so a 2 s token may end
        # up to a second early (CI once saw 1.48 s), never sooner.
        assert time.monotonic() - started >= 0.95
        with _fresh(proc, cookie) as client:
            assert client.get("/ui/").headers["location"] == "/ui/login"
    finally:
        assert proc.stop() == 0, proc.output()
