"""Regressions from the security review: no 500 for odd input, revoked users everywhere."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt

from strongroom import Vault, open_vault
from tests.conftest import fast_config
from tests.integration.server_proc import JWT_SECRET, ServerProcess, auth


def test_odd_input_is_4xx_never_500(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    try:
        admin = auth("SuperAdmin")
        with httpx.Client(base_url=server.url, headers=admin, timeout=30) as api:
            _odd_requests(api, admin)
        assert "Traceback" not in server.output()
    finally:
        server.stop()


def _odd_requests(api: httpx.Client, admin: dict[str, str]) -> None:
    r = api.post(
        "/api/vault/secrets",
        json={"path": "a/c", "value": "v", "expires_in": "99999999999999999999d"},
    )
    assert r.status_code == 400, r.text
    api.post("/api/vault/secrets", json={"path": "app/db", "value": "v"})
    v1 = {"X-Vault-Token": admin["Authorization"].split()[1]}
    for url in (
        "/v1/secret/data/app/db?version=%C2%B2",
        "/v1/secret/subkeys/app/db?depth=%C2%B2",
        "/v1/sys/health?activecode=%C2%B2%C2%B2%C2%B2",
    ):
        assert api.get(url, headers=v1).status_code == 400, url
    r = api.post(
        "/v1/secret/data/app/db", headers=v1, json={"data": {"a": "b"}, "options": {"cas": "²"}}
    )
    assert r.status_code == 400, r.text
    r = api.post(
        "/v1/secret/metadata/app/sur",
        headers=v1,
        content=b'{"custom_metadata":{"k":"\\ud800"}}',
    )
    assert r.status_code == 400, r.text
    r = api.post("/v1/sys/unseal", headers=v1, content=b'{"key":"\\ud800"}')
    assert r.status_code == 400, r.text
    for claims in ({"exp": 10**30}, {"sub": str(10**30)}):
        token = jwt.encode(
            {"sub": "1", "role": "Admin", "exp": int(time.time()) + 60, **claims},
            JWT_SECRET,
            algorithm="HS256",
        )
        r = api.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
        assert r.status_code == 403, r.text
        r = api.get("/api/vault/secrets/app/db", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, r.text


def test_disabled_builtin_user_is_refused_on_v1_too(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    try:
        local = open_vault(server.dsn, fast_config(auto_lock=False))
        local.access.create_user("alice", "correct horse battery", "Admin")
        with httpx.Client(base_url=server.url, timeout=30) as api:
            _disable_and_check(api, server, local)
    finally:
        server.stop()


def _disable_and_check(api: httpx.Client, server: ServerProcess, local: Vault) -> None:
    login = api.post(
        "/api/auth/login", json={"username": "alice", "password": "correct horse battery"}
    )
    token = login.json()["token"]
    v1 = {"X-Vault-Token": token}
    assert api.get("/v1/auth/token/lookup-self", headers=v1).status_code == 200
    local.access.set_user_disabled("alice")
    local.close()
    deadline = time.monotonic() + 30  # the server re-reads users at most every 5 s
    status = 200
    while time.monotonic() < deadline and status != 403:
        status = api.get("/v1/auth/token/lookup-self", headers=v1).status_code
        if status != 403:
            time.sleep(0.5)
    assert status == 403
    assert api.post("/v1/sys/seal", headers=v1).status_code == 403
    assert api.get("/v1/secret/data/app/db", headers=v1).status_code == 403
    health = api.get("/api/vault/health").json()
    assert health["locked"] is False  # the refused seal did not lock the vault
