"""Security review regressions for recorded tokens on a real server: a child token never
outlives its parent and is revoked with it; orphans need an administrator; a token may act only
on itself and on its children, not on every token of its subject; an Admin cannot act on a
SuperAdmin's tokens or mint one for a built-in user; huge numbers are a clear 400."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.integration.server_proc import ServerProcess, auth, token

PASSWORD = "a-long-enough-password-9"
TEN_YEARS = {"policies": ["p-app"], "ttl": "87600h", "explicit_max_ttl": "87600h"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("tree")).start()
    admin = {"Authorization": auth()["Authorization"]}
    url = f"{proc.url}/api/vault"
    assert httpx.put(
        f"{url}/policies/p-app", headers=admin, json={"rules": "app/*: read"}
    ).is_success
    for name, role in (("appuser", "App"), ("boss", "SuperAdmin")):
        user = {"username": name, "password": PASSWORD, "role": role, "policies": ["p-app"]}
        assert httpx.post(f"{url}/users", headers=admin, json=user).status_code == 201
    yield proc
    proc.stop()


def _v1(server: ServerProcess, path: str, tok: str, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/auth/token/{path}", headers={"X-Vault-Token": tok}, json=body, timeout=10
    )


def _login(server: ServerProcess, user: str = "appuser") -> dict[str, Any]:
    r = httpx.post(f"{server.url}/v1/auth/userpass/login/{user}", json={"password": PASSWORD})
    assert r.status_code == 200, r.text
    auth_block: dict[str, Any] = r.json()["auth"]
    return auth_block


def _refused_within(server: ServerProcess, tok: str, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _v1(server, "lookup-self", tok).status_code == 403:
            return
        time.sleep(0.05)
    pytest.fail("the token is still accepted")


def test_a_child_never_outlives_its_parent_and_is_revoked_with_it(server: ServerProcess) -> None:
    parent = _login(server)
    r = _v1(server, "create", parent["client_token"], **TEN_YEARS)
    assert r.status_code == 200, r.text
    child = r.json()["auth"]
    assert child["lease_duration"] <= parent["lease_duration"]
    assert child["orphan"] is False
    looked = _v1(server, "lookup-self", child["client_token"]).json()["data"]
    parent_data = _v1(server, "lookup-self", parent["client_token"]).json()["data"]
    assert looked["expire_time"] <= parent_data["expire_time"]
    assert looked["explicit_max_ttl"] <= parent_data["explicit_max_ttl"]
    # a grandchild is revoked with its grandparent too
    grandchild = _v1(server, "create", child["client_token"], policies=["p-app"]).json()["auth"]
    renewed = _v1(server, "renew-self", child["client_token"], increment="87600h").json()
    assert renewed["auth"]["lease_duration"] <= parent["lease_duration"]
    assert _v1(server, "revoke-self", parent["client_token"]).status_code == 204
    _refused_within(server, child["client_token"])
    _refused_within(server, grandchild["client_token"])


def test_a_jwt_child_is_capped_at_the_jwts_expiry(server: ServerProcess) -> None:
    jwt = token("App", user_id=4242, policies=["p-app"], ttl=timedelta(minutes=10))
    r = _v1(server, "create", jwt, **TEN_YEARS)
    assert r.status_code == 200, r.text
    assert r.json()["auth"]["lease_duration"] <= 600
    looked = _v1(server, "lookup-self", r.json()["auth"]["client_token"]).json()["data"]
    assert looked["explicit_max_ttl"] <= 600
    accessor = r.json()["auth"]["accessor"]
    stranger = token("App", user_id=4343, policies=["p-app"])
    assert _v1(server, "revoke-accessor", stranger, accessor=accessor).status_code == 403
    assert _v1(server, "revoke-accessor", jwt, accessor=accessor).status_code == 204


def test_orphans_need_an_administrator(server: ServerProcess) -> None:
    tok = _login(server)["client_token"]
    assert _v1(server, "create-orphan", tok, policies=["p-app"]).status_code == 403
    assert _v1(server, "create", tok, policies=["p-app"], no_parent=True).status_code == 403
    jwt = token("App", user_id=4242, policies=["p-app"])
    assert _v1(server, "create-orphan", jwt, policies=["p-app"]).status_code == 403
    admin = _v1(server, "create-orphan", token(), policies=["p-app"], ttl="87600h")
    assert admin.status_code == 200 and admin.json()["auth"]["orphan"] is True
    assert admin.json()["auth"]["lease_duration"] > 86400 * 365


def test_same_subject_tokens_cannot_act_on_each_other(server: ServerProcess) -> None:
    first, second = _login(server), _login(server)
    mine = first["client_token"]
    for path in ("revoke-accessor", "renew-accessor", "lookup-accessor"):
        assert _v1(server, path, mine, accessor=second["accessor"]).status_code == 403, path
    assert _v1(server, "lookup", mine, token=second["client_token"]).status_code == 403
    assert _v1(server, "lookup-self", second["client_token"]).status_code == 200
    # a child's creator may act on it; the child may not act on its creator or siblings
    child = _v1(server, "create", mine, policies=["p-app"]).json()["auth"]
    sibling = _v1(server, "create", mine, policies=["p-app"]).json()["auth"]
    assert _v1(server, "lookup-accessor", mine, accessor=child["accessor"]).status_code == 200
    kid = child["client_token"]
    assert _v1(server, "revoke-accessor", kid, accessor=first["accessor"]).status_code == 403
    assert _v1(server, "revoke-accessor", kid, accessor=sibling["accessor"]).status_code == 403
    assert _v1(server, "revoke-accessor", mine, accessor=child["accessor"]).status_code == 204
    assert _v1(server, "lookup-self", second["client_token"]).status_code == 200


def _admin(server: ServerProcess, method: str, path: str, role: str, **kw: Any) -> httpx.Response:
    headers = auth(role, user_id=2 if role == "Admin" else 1)
    return httpx.request(method, f"{server.url}/api/vault{path}", headers=headers, timeout=10, **kw)


def test_an_admin_cannot_act_against_a_superadmin(server: ServerProcess) -> None:
    boss_id = _admin(server, "GET", "/users/boss", "SuperAdmin").json()["id"]
    app_id = _admin(server, "GET", "/users/appuser", "SuperAdmin").json()["id"]
    boss = _login(server, "boss")
    mint = {"user_id": boss_id, "role": "App", "policies": ["p-app"]}
    assert _admin(server, "POST", "/tokens", "Admin", json=mint).status_code == 403
    as_app = {"user_id": app_id, "role": "App", "policies": ["p-app"]}
    assert _admin(server, "POST", "/tokens", "Admin", json=as_app).status_code == 403
    for body in (
        {"user_id": boss_id},
        {"accessor": boss["accessor"]},
        {"user_id": 1, "jwt_issued_before": "now"},
    ):
        r = _admin(server, "POST", "/tokens/revoke", "Admin", json=body)
        assert r.status_code == 403, (body, r.text)
    renew = _admin(server, "POST", f"/tokens/{boss['accessor']}/renew", "Admin", json={})
    assert renew.status_code == 403
    assert _v1(server, "lookup-self", boss["client_token"]).status_code == 200
    assert _v1(server, "lookup-self", token()).status_code == 200
    # what an Admin may still do: tokens of other subjects below Admin
    made = _admin(server, "POST", "/tokens", "Admin", json={**mint, "user_id": 90001})
    assert made.status_code == 201, made.text
    gone = _admin(server, "POST", "/tokens/revoke", "Admin", json={"user_id": 90001})
    assert gone.status_code == 200 and gone.json()["revoked"] == 1
    # a SuperAdmin may do all of it
    assert _admin(server, "POST", "/tokens", "SuperAdmin", json=mint).status_code == 201
    done = _admin(server, "POST", "/tokens/revoke", "SuperAdmin", json={"user_id": boss_id})
    assert done.status_code == 200 and done.json()["revoked"] >= 2


def test_huge_numbers_are_a_clear_400(server: ServerProcess) -> None:
    admin = token()
    recorded = _login(server)["client_token"]
    role = f"{server.url}/v1/auth/approle/role/r-huge"
    for value in (10**30, "1" * 40, "²", -5):
        for field in ("ttl", "explicit_max_ttl"):
            r = _v1(server, "create", admin, policies=["p-app"], **{field: value})
            assert r.status_code == 400, (field, value, r.text)
        r = _v1(server, "renew-self", recorded, increment=value)
        assert r.status_code == 400, (value, r.text)
        for field in ("token_ttl", "secret_id_num_uses"):
            r = httpx.post(role, headers={"X-Vault-Token": admin}, json={field: value})
            assert r.status_code == 400, (field, value, r.text)
            assert "errors" in r.json()
    assert _v1(server, "lookup-self", recorded).status_code == 200
