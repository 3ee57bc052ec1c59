"""`/api/vault/users|policies|tokens` (issue 15) on a real server, and `vaultctl user|policy|token`
in remote mode through them: who may manage whom, tokens revoked by user changes, audit."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.cli_support import Vaultctl, one_error_line
from tests.integration.server_proc import ServerProcess, auth, token

PASSWORD = "a-long-enough-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("admin")).start()
    yield proc
    proc.stop()


def _call(
    server: ServerProcess, method: str, path: str, role: str = "SuperAdmin", **kw: Any
) -> httpx.Response:
    return httpx.request(
        method, f"{server.url}/api/vault{path}", headers=auth(role), timeout=10, **kw
    )


def _lookup(server: ServerProcess, tok: str) -> int:
    return httpx.get(
        f"{server.url}/v1/auth/token/lookup-self", headers={"X-Vault-Token": tok}, timeout=10
    ).status_code


def test_who_may_manage_whom(server: ServerProcess) -> None:
    new = {"username": "app1", "password": PASSWORD, "role": "App", "policies": ["p"]}
    r = _call(server, "POST", "/users", "Admin", json=new)
    assert r.status_code == 201 and r.json()["policies"] == ["p"]
    boss = {"username": "boss", "password": PASSWORD, "role": "admin"}
    assert _call(server, "POST", "/users", "Admin", json=boss).status_code == 403
    assert _call(server, "POST", "/users", "SuperAdmin", json=boss).json()["role"] == "Admin"
    assert (
        _call(server, "PATCH", "/users/boss", "Admin", json={"disabled": True}).status_code == 403
    )
    promote = _call(server, "PATCH", "/users/app1", "Admin", json={"role": "SuperAdmin"})
    assert promote.status_code == 403
    assert _call(server, "GET", "/users", "App").status_code == 403
    grant = {"user_id": 9, "role": "Admin"}
    assert _call(server, "POST", "/tokens", "Admin", json=grant).status_code == 403
    denied = _call(server, "GET", "/audit", params={"action": "user_create", "limit": 50}).json()
    assert any(not e["success"] and e["path"] == "user:boss" for e in denied["logs"])


def test_user_changes_revoke_login_tokens(server: ServerProcess) -> None:
    _call(server, "POST", "/users", json={"username": "carl", "password": PASSWORD, "role": "App"})
    login = httpx.post(
        f"{server.url}/api/auth/login", json={"username": "carl", "password": PASSWORD}
    ).json()["token"]
    assert _lookup(server, login) == 200
    bad = _call(server, "PATCH", "/users/carl", json={"password": "qwerty123456"})
    assert bad.status_code == 400 and "common" in bad.json()["error"]
    assert _lookup(server, login) == 200  # a refused change revokes nothing
    ok = _call(server, "PATCH", "/users/carl", json={"password": "a-new-long-password"})
    assert ok.status_code == 200
    assert _lookup(server, login) == 403
    user_id = ok.json()["id"]
    assert _call(server, "DELETE", "/users/carl").status_code == 200
    assert _call(server, "GET", "/users/carl").status_code == 404
    logs = _call(server, "GET", "/audit", params={"user_id": user_id, "limit": 50}).json()["logs"]
    assert logs, "the deleted user's audit rows keep the id"


def test_tokens_and_policies_endpoints(server: ServerProcess) -> None:
    put = _call(server, "PUT", "/policies/billing", json={"rules": "app/billing/*: read, list"})
    assert put.json()["rules"] == ["app/billing/*: list, read"]
    assert _call(server, "GET", "/policies/billing").status_code == 200
    made = _call(
        server, "POST", "/tokens",
        json={"user_id": 77, "role": "App", "policies": ["billing"], "ttl": "1h", "max_ttl": "2h"},
    ).json()  # fmt: skip
    tok, accessor = made["token"], made["accessor"]
    assert _lookup(server, tok) == 200
    listed = _call(server, "GET", "/tokens", params={"user_id": 77}).json()
    assert [t["accessor"] for t in listed["tokens"]] == [accessor] and tok not in json.dumps(listed)
    renewed = _call(server, "POST", f"/tokens/{accessor}/renew", json={"increment": "5h"}).json()
    assert renewed["warnings"] and renewed["expires_at"] == made["max_expires_at"]
    looked = _call(server, "POST", "/tokens/lookup", json={"token": tok}).json()
    assert looked["accessor"] == accessor
    revoked = _call(server, "POST", "/tokens/revoke", json={"user_id": 77}).json()
    assert revoked["revoked"] == 1 and _lookup(server, tok) == 403
    assert _call(server, "GET", f"/tokens/{accessor}").status_code == 404
    assert _call(server, "POST", "/tokens/revoke", json={"accessor": 5}).status_code == 400
    assert _call(server, "DELETE", "/policies/billing").status_code == 200
    assert _call(server, "DELETE", "/policies/billing").status_code == 404


def test_vaultctl_remote_mode(server: ServerProcess, tmp_path: Path) -> None:
    env = {"VAULT_ADDR": server.url, "VAULT_TOKEN": token("SuperAdmin")}
    vc = Vaultctl("sqlite:///unused.db", tmp_path, key=None, extra_env=env)
    out = vc.ok("user", "create", "--username", "rita", "--role", "App", "--password-stdin",
                input=PASSWORD + "\n")  # fmt: skip
    assert "User created: rita" in out
    assert "rita" in vc.ok("user", "list")
    vc.ok("user", "set-role", "--username", "rita", "--role", "Reader")
    vc.ok("user", "set-password", "--username", "rita", "--password-stdin",
          input="another-long-password\n")  # fmt: skip
    one_error_line(
        vc("user", "set-password", "--username", "rita", "--password-stdin", input="short\n"),
        2, "12",
    )  # fmt: skip
    vc.ok("policy", "write", "ops", input="ops/*: read\n")
    assert "ops/*: read" in vc.ok("policy", "list")
    made = json.loads(
        vc.ok("token", "create", "--user-id", "5", "--role", "App", "--format", "json")
    )
    assert made["token"].startswith("sr.")
    assert made["accessor"] in vc.ok("token", "list", "--user-id", "5")
    vc.ok("token", "lookup", made["accessor"])
    vc.ok("token", "revoke", "--accessor", made["accessor"])
    deadline = time.monotonic() + 5
    while _lookup(server, made["token"]) != 403 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _lookup(server, made["token"]) == 403
    role = json.loads(
        vc.ok("approle", "write", "ci", "--policy", "ops", "--secret-id-uses", "1",
              "--token-ttl", "10m", "--format", "json")
    )  # fmt: skip
    assert vc.ok("approle", "list").splitlines()[1].strip() == "ci"
    made_sid = json.loads(vc.ok("approle", "secret-id", "ci", "--format", "json"))
    assert made_sid["accessor"] in vc.ok("approle", "secret-ids", "ci")
    login = httpx.post(
        f"{server.url}/v1/auth/approle/login",
        json={"role_id": role["role_id"], "secret_id": made_sid["secret_id"]},
        timeout=10,
    )
    assert login.status_code == 200 and login.json()["auth"]["policies"] == ["ops"]
    again = httpx.post(
        f"{server.url}/v1/auth/approle/login",
        json={"role_id": role["role_id"], "secret_id": made_sid["secret_id"]},
        timeout=10,
    )
    assert again.status_code == 400  # used up
    other = json.loads(vc.ok("approle", "secret-id", "ci", "--format", "json"))
    vc.ok("approle", "revoke-secret-id", "ci", "--accessor", other["accessor"])
    one_error_line(
        vc("approle", "revoke-secret-id", "ci", "--accessor", other["accessor"]), 1, "not found"
    )
    vc.ok("approle", "delete", "ci")
    vc.ok("user", "delete", "--username", "rita")
    vc.ok("policy", "delete", "ops")
    vc.extra_env["VAULT_TOKEN"] = token("App")
    one_error_line(vc("user", "list"), 1, "permission denied")


def _v1(server: ServerProcess, path: str, tok: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/{path}", headers={"X-Vault-Token": tok}, json=body, timeout=10
    )


def test_v1_refusals_change_nothing_and_are_audited(server: ServerProcess) -> None:
    victim = _call(
        server, "POST", "/tokens", json={"user_id": 500, "role": "App", "policies": ["p"]}
    ).json()
    app = token("App", user_id=501, policies=("p",))
    for path, body in (
        ("auth/token/revoke-accessor", {"accessor": victim["accessor"]}),
        ("auth/token/revoke", {"token": victim["token"]}),
        ("auth/token/lookup-accessor", {"accessor": victim["accessor"]}),
        ("auth/token/create", {"policies": ["p", "admin-things"]}),  # a policy it lacks
    ):
        assert _v1(server, path, app, body).status_code == 403, path
    assert _lookup(server, victim["token"]) == 200  # nothing changed
    own = _v1(server, "auth/token/create", app, {"policies": ["p"]}).json()["auth"]
    assert own["policies"] == ["p"]  # a subset of its own: allowed, exactly as given
    logs = _call(server, "GET", "/audit", params={"user_id": 501, "limit": 50}).json()["logs"]
    refused = {e["action"] for e in logs if not e["success"]}
    assert {"token_revoke", "token_lookup", "token_create"} <= refused
    admin = token("SuperAdmin")
    bad = httpx.put(
        f"{server.url}/v1/sys/policies/acl/x",
        headers={"X-Vault-Token": admin},
        json={"policy": 'path "secret/data/a" { capabilities = ["fly"] }'},
        timeout=10,
    )
    assert bad.status_code == 400 and "'fly'" in bad.json()["errors"][0]
    warned = httpx.put(
        f"{server.url}/v1/sys/policies/acl/x",
        headers={"X-Vault-Token": admin},
        json={
            "policy": 'path "secret/data/a" { capabilities = ["read", "sudo"] }\n'
            'path "secret/data/b" { capabilities = ["read", "deny"] }'
        },
        timeout=10,
    )
    assert warned.status_code == 200, warned.text
    notes = " ".join(warned.json()["warnings"])
    assert "'sudo'" in notes and "'secret/data/b' denies" in notes
    refused_write = httpx.put(
        f"{server.url}/v1/sys/policies/acl/y",
        headers={"X-Vault-Token": app},
        json={"policy": 'path "secret/data/a" { capabilities = ["read"] }'},
        timeout=10,
    )
    assert refused_write.status_code == 403
