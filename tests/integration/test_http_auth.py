"""Authentication and authorisation over real HTTP: JWT attacks, roles, path policies, login."""

from __future__ import annotations

import base64
import contextlib
import json
import statistics
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from strongroom import open_vault
from tests.conftest import fast_config
from tests.integration.server_proc import JWT_SECRET, MASTER_KEY, ServerProcess, auth


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("auth")
    dsn = f"sqlite:///{tmp / 'vault.db'}"
    vault = open_vault(dsn, fast_config())
    vault.unlock(MASTER_KEY)
    for path in ("app/billing/stripe", "app/billing/paypal", "app/shipping/key"):
        vault.create_secret(path, f"value-of-{path}")
    vault.access.write_policy("billing-read", "app/billing/*: read, list\n")
    vault.access.write_policy("billing-write", "app/billing/+: create, update")
    vault.access.create_user("alice", "correct horse battery", "Admin")
    vault.access.create_user("bob", "bob-password-1", "App", policies=["billing-read"])
    vault.access.create_user("carol", "carol-password", "Admin")
    vault.access.set_user_disabled("carol")
    vault.close()
    proc = ServerProcess(tmp, dsn=dsn).start()
    yield proc
    assert proc.stop() == 0, proc.output()


def raw_token(claims: dict[str, object], key: str = JWT_SECRET, alg: str = "HS256") -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HS512 with a 40-byte key: that is the point
        return jwt.encode(claims, key, algorithm=alg)


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def get(
    server: ServerProcess,
    token: str | None,
    path: str = "app/billing/stripe",
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(f"{server.url}/api/vault/secrets/{path}", headers=headers)


def test_valid_token_reads(server: ServerProcess) -> None:
    exp = int(time.time()) + 600
    r = get(server, raw_token({"sub": 1, "role": "Admin", "exp": exp}))
    assert r.status_code == 200 and r.json()["value"] == "value-of-app/billing/stripe"
    assert get(server, raw_token({"sub": "7", "role": "SuperAdmin", "exp": exp})).status_code == 200


@pytest.mark.parametrize(
    "case",
    [
        "none",
        "hs512",
        "bad_sig",
        "expired",
        "nbf",
        "no_exp",
        "no_sub",
        "no_role",
        "garbage",
        "missing",
        "bad_sub",
        "truncated",
        "huge",
    ],
)
def test_bad_tokens_are_401(server: ServerProcess, case: str) -> None:
    now = int(time.time())
    good = {"sub": "1", "role": "SuperAdmin", "exp": now + 600}
    tokens: dict[str, str | None] = {
        "none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(good)}.",
        "hs512": raw_token(good, alg="HS512"),
        "bad_sig": raw_token(good, key="another-secret-that-is-long-enough-xx"),
        "expired": raw_token({**good, "exp": now - 60}),
        "nbf": raw_token({**good, "nbf": now + 600}),
        "no_exp": raw_token({"sub": "1", "role": "SuperAdmin"}),
        "no_sub": raw_token({"role": "SuperAdmin", "exp": now + 600}),
        "no_role": raw_token({"sub": "1", "exp": now + 600}),
        "garbage": "not.a.token",
        "missing": None,
        "bad_sub": raw_token({**good, "sub": "admin"}),
        "truncated": raw_token(good)[:-5],
        "huge": raw_token({**good, "pad": "x" * 20_000}),
    }
    r = get(server, tokens[case])
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "unauthenticated"


def test_roles(server: ServerProcess) -> None:
    for role, expected in (("SuperAdmin", 200), ("Admin", 200), ("User", 403), ("admin", 403)):
        assert get(server, auth(role)["Authorization"][7:]).status_code == expected, role
    r = httpx.post(f"{server.url}/api/vault/lock", headers=auth("User"))
    assert r.status_code == 403 and r.json()["error"] == "permission denied"
    r = httpx.post(f"{server.url}/api/vault/cleanup", headers=auth("Operator"))
    assert r.status_code == 403


def test_policy_token_reads_only_its_prefix_and_denials_are_audited(server: ServerProcess) -> None:
    with contextlib.ExitStack() as stack:
        check_policies(server, stack)


def check_policies(server: ServerProcess, stack: contextlib.ExitStack) -> None:
    app = stack.enter_context(
        httpx.Client(
            base_url=server.url, headers=auth("App", user_id=42, policies=["billing-read"])
        )
    )
    assert app.get("/api/vault/secrets/app/billing/stripe").status_code == 200
    assert app.get("/api/vault/secrets/app/billing/paypal/versions").status_code == 200
    listed = app.get("/api/vault/secrets", params={"prefix": "app/"}).json()
    assert [s["path"] for s in listed["secrets"]] == ["app/billing/paypal", "app/billing/stripe"]
    denied = [
        app.get("/api/vault/secrets/app/shipping/key"),
        app.put("/api/vault/secrets/app/billing/stripe", json={"value": "x"}),
        app.delete("/api/vault/secrets/app/billing/stripe"),
        app.post("/api/vault/secrets", json={"path": "app/billing/new", "value": "v"}),
        app.get("/api/vault/secrets/app/billing/stripe/audit"),
        app.post("/api/vault/unlock", json={"master_key": "x"}),
    ]
    assert [r.status_code for r in denied] == [403] * len(denied)
    writer = stack.enter_context(
        httpx.Client(
            base_url=server.url,
            headers=auth("App", user_id=43, policies=["billing-read", "billing-write"]),
        )
    )
    assert (
        writer.put("/api/vault/secrets/app/billing/stripe", json={"value": "y"}).status_code == 200
    )
    assert writer.get("/api/vault/secrets", params={"prefix": "app/"}).status_code == 200
    nothing = stack.enter_context(
        httpx.Client(base_url=server.url, headers=auth("App", user_id=44))
    )
    assert nothing.get("/api/vault/secrets").status_code == 403
    admin = stack.enter_context(server.client())
    logs = admin.get("/api/vault/audit", params={"user_id": 42, "limit": 100}).json()["logs"]
    refused = [e for e in logs if not e["success"]]
    assert len(refused) == len(denied)
    assert {e["error"] for e in refused} == {"PermissionDenied"}
    assert {e["path"] for e in refused} >= {"app/shipping/key", "app/billing/stripe"}


def test_login(server: ServerProcess) -> None:
    r = httpx.post(
        f"{server.url}/api/auth/login",
        json={"username": "alice", "password": "correct horse battery"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"token", "expires_at"} and body["expires_at"].endswith("Z")
    assert get(server, body["token"]).status_code == 200
    assert body["token"].startswith("sr.")  # a recorded token, opaque
    me = httpx.get(
        f"{server.url}/v1/auth/token/lookup-self", headers={"X-Vault-Token": body["token"]}
    ).json()["data"]
    assert me["meta"]["role"] == "Admin" and me["path"] == "auth/token/login"
    bob = httpx.post(
        f"{server.url}/api/auth/login", json={"username": "bob", "password": "bob-password-1"}
    ).json()["token"]
    assert get(server, bob).status_code == 200
    assert get(server, bob, "app/shipping/key").status_code == 403
    for creds in (
        {"username": "alice", "password": "wrong password"},
        {"username": "nobody-here", "password": "whatever1"},
        {"username": "carol", "password": "carol-password"},
    ):
        r = httpx.post(f"{server.url}/api/auth/login", json=creds)
        assert r.status_code == 401 and r.json()["error"] == "invalid username or password"
    assert httpx.post(f"{server.url}/api/auth/login", json={"username": "x"}).status_code == 400


def test_disabling_a_user_ends_their_tokens(server: ServerProcess) -> None:
    vault = open_vault(server.dsn, fast_config())
    vault.access.create_user("frank", "frank-password", "Admin")
    issued = httpx.post(
        f"{server.url}/api/auth/login", json={"username": "frank", "password": "frank-password"}
    ).json()["token"]
    assert get(server, issued).status_code == 200
    vault.access.set_user_disabled("frank")  # revokes the user's recorded tokens
    vault.close()
    deadline = time.monotonic() + 1.5  # the revocation epoch's 1 s bound, and a request
    while get(server, issued).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    r = get(server, issued)
    assert r.status_code == 401 and r.json()["error"] == "invalid token"


def test_login_is_rate_limited_per_user_and_timing_does_not_reveal_users(tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path / 'vault.db'}"
    vault = open_vault(dsn, fast_config())
    vault.access.create_user("dave", "dave-password", "Admin")
    vault.close()
    proc = ServerProcess(tmp_path, dsn=dsn, master_key=None).start()
    url = f"{proc.url}/api/auth/login"
    try:
        known, unknown = [], []
        for i in range(3):
            t = time.perf_counter()
            assert (
                httpx.post(url, json={"username": "dave", "password": f"bad-{i}-xxx"}).status_code
                == 401
            )
            known.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert (
                httpx.post(url, json={"username": f"ghost{i}", "password": "bad-xxxx"}).status_code
                == 401
            )
            unknown.append(time.perf_counter() - t)
        # An unknown user costs a full password verification too.
        assert statistics.median(unknown) > 0.5 * statistics.median(known)
        for _ in range(3):
            r = httpx.post(url, json={"username": "dave", "password": "bad-again-x"})
            assert r.status_code in (401, 429)
        r = httpx.post(url, json={"username": "dave", "password": "dave-password"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["code"] == "rate_limited"
        with proc.client() as admin:
            admin.post("/api/vault/unlock", json={"master_key": MASTER_KEY})
            logs = admin.get("/api/vault/audit", params={"action": "login", "limit": 100})
            assert len([e for e in logs.json()["logs"] if not e["success"]]) >= 7
    finally:
        assert proc.stop() == 0
