"""The documented REST API against a real server process: the design document's curl examples,
then the error contract (status codes, JSON bodies, no 500 for bad input)."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server_proc import MASTER_KEY, ServerProcess, auth

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("api"), master_key=None, args=["--trusted-proxy", "10.9.9.9"]
    ).start()
    yield proc
    assert proc.stop() == 0, proc.output()


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        assert client.post("/api/vault/unlock", json={"master_key": MASTER_KEY}).status_code == 200
        yield client


def unique(prefix: str = "t") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def test_design_document_curl_examples(server: ServerProcess, api: httpx.Client) -> None:
    # POST /unlock
    r = api.post("/api/vault/unlock", json={"master_key": MASTER_KEY})
    assert (r.status_code, r.json()) == (200, {"message": "Vault unlocked successfully"})
    # GET /status
    assert api.get("/api/vault/status").json()["locked"] is False
    # GET /health
    health = api.get("/api/vault/health").json()
    assert set(health) == {"locked", "last_access", "auto_lock", "audit"}
    assert health["locked"] is False and health["auto_lock"] is True and health["audit"] is True
    # POST /secrets
    r = api.post(
        "/api/vault/secrets",
        json={
            "path": "database/postgres/password",
            "value": "my-secure-password",
            "description": "PostgreSQL database password",
            "expires_in": "90d",
        },
    )
    assert r.status_code == 201
    assert {k: r.json()[k] for k in ("message", "path")} == {
        "message": "Secret created successfully",
        "path": "database/postgres/password",
    }
    # GET /secrets/{path}
    r = api.get("/api/vault/secrets/database/postgres/password")
    assert r.json() == {"path": "database/postgres/password", "value": "my-secure-password"}
    assert r.headers["cache-control"] == "no-store"
    # PUT /secrets/{path}
    r = api.put(
        "/api/vault/secrets/database/postgres/password", json={"value": "new-secure-password"}
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    # GET /secrets and ?prefix=
    listed = api.get("/api/vault/secrets", params={"prefix": "database/"}).json()
    assert listed["count"] == 1
    item = listed["secrets"][0]
    assert set(item) == {
        "id",
        "path",
        "description",
        "created_by",
        "created_at",
        "updated_at",
        "version",
        "expires_at",
    }
    assert item["version"] == 2 and item["created_by"] == 1 and item["expires_at"].endswith("Z")
    assert api.get("/api/vault/secrets").json()["count"] >= 1
    # GET /secrets/{path}/versions and /versions/{version}
    versions = api.get("/api/vault/secrets/database/postgres/password/versions").json()
    assert [v["version"] for v in versions["versions"]] == [2, 1]
    r = api.get("/api/vault/secrets/database/postgres/password/versions/1")
    assert r.json()["value"] == "my-secure-password"
    # GET /secrets/{path}/audit?limit=50
    logs = api.get(
        "/api/vault/secrets/database/postgres/password/audit", params={"limit": 50}
    ).json()["logs"]
    assert {e["action"] for e in logs} >= {"create", "read", "update", "versions"}
    assert all(e["ip_address"] == "127.0.0.1" for e in logs)
    # POST /cleanup, /generate-token
    assert api.post("/api/vault/cleanup").json() == {
        "message": "Cleaned up 0 expired secret(s)",
        "count": 0,
    }
    r = api.post("/api/vault/generate-token", json={"length": 32})
    assert r.status_code == 200 and len(r.json()["token"]) >= 43
    # DELETE /secrets/{path}
    r = api.delete("/api/vault/secrets/database/postgres/password")
    assert r.json()["message"] == "Secret deleted successfully"
    assert api.get("/api/vault/secrets/database/postgres/password").status_code == 404


def test_rollback_and_version_query(api: httpx.Client) -> None:
    path = unique()
    api.post("/api/vault/secrets", json={"path": path, "value": "one"})
    api.put(f"/api/vault/secrets/{path}", json={"value": "two"})
    r = api.post(f"/api/vault/secrets/{path}/rollback", json={"version": 1})
    assert r.json() == {
        "message": "Secret rolled back successfully",
        "path": path,
        "version": 3,
        "from_version": 1,
    }
    assert api.get(f"/api/vault/secrets/{path}").json()["value"] == "one"
    assert api.get(f"/api/vault/secrets/{path}?version=2").json()["value"] == "two"
    assert api.get(f"/api/vault/secrets/{path}?version=9").status_code == 404
    assert api.get(f"/api/vault/secrets/{path}?version=x").status_code == 400


@pytest.mark.parametrize(
    "path", ["a/versions", "a/rotate", "a/rollback", "a/audit", "a/versions/3", "audit"]
)
def test_paths_that_collide_with_sub_resources_are_refused(api: httpx.Client, path: str) -> None:
    r = api.post("/api/vault/secrets", json={"path": path, "value": "v"})
    assert r.status_code == 400 and "sub-resources" in r.json()["error"]


@pytest.mark.parametrize("path", ["../x", "a//b", "/a", "a/", "a/./b", "a b", "ａｂｃ", "x" * 501])
def test_invalid_paths_are_400(api: httpx.Client, path: str) -> None:
    r = api.post("/api/vault/secrets", json={"path": path, "value": "v"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_input"


def test_error_statuses_and_bodies(api: httpx.Client, server: ServerProcess) -> None:
    path = unique()
    assert api.post("/api/vault/secrets", json={"path": path, "value": "v"}).status_code == 201
    cases = [
        (api.post("/api/vault/secrets", json={"path": path, "value": "v"}), 409, "secret_exists"),
        (api.get("/api/vault/secrets/no/such"), 404, "secret_not_found"),
        (api.get(f"/api/vault/secrets/{path}/versions/7"), 404, "version_not_found"),
        (
            api.post(
                "/api/vault/secrets", content=b"{bad", headers={"content-type": "application/json"}
            ),
            400,
            "invalid_input",
        ),
        (
            api.post(
                "/api/vault/secrets",
                content=b"[1, 2]",
                headers={"content-type": "application/json"},
            ),
            400,
            "invalid_input",
        ),
        (api.post("/api/vault/secrets", json={"path": 5, "value": "v"}), 400, "invalid_input"),
        (
            api.post("/api/vault/secrets", json={"path": unique(), "value": ["x"]}),
            400,
            "invalid_input",
        ),
        (
            api.post(
                "/api/vault/secrets", json={"path": unique(), "value": "v", "expires_in": "-1h"}
            ),
            400,
            "invalid_input",
        ),
        (api.post("/api/vault/secrets", json={"path": unique()}), 400, "invalid_input"),
        (
            api.post(
                "/api/vault/secrets", content=b"path=a", headers={"content-type": "text/plain"}
            ),
            415,
            "unsupported_media_type",
        ),
        (
            api.post(
                "/api/vault/secrets",
                content=b"[" * 10_000,
                headers={"content-type": "application/json"},
            ),
            400,
            "invalid_input",
        ),
        (api.post("/api/vault/generate-token", json={"length": 10**9}), 400, "invalid_input"),
        (api.post("/api/vault/generate-token", json={"length": "9"}), 400, "invalid_input"),
        (
            api.post(f"/api/vault/secrets/{path}/rollback", json={"version": True}),
            400,
            "invalid_input",
        ),
        (
            api.post(f"/api/vault/secrets/{path}/rotate", json={"new_master_key": "k"}),
            400,
            "invalid_input",
        ),
        (api.get(f"/api/vault/secrets/{path}/audit?limit=0"), 400, "invalid_input"),
        (httpx.get(f"{server.url}/api/vault/secrets/{path}"), 401, "unauthenticated"),
        (api.get("/api/vault/nothing-here"), 404, "not_found"),
    ]
    for response, status, code in cases:
        body = response.json()
        assert (response.status_code, body["code"]) == (status, code), body
        assert isinstance(body["error"], str) and "Traceback" not in body["error"]
    assert api.post(f"/api/vault/secrets/{path}").status_code == 405


def test_body_over_limit_is_413_before_being_read(server: ServerProcess, api: httpx.Client) -> None:
    big = b"x" * (1024 * 1024 + 1)
    r = api.post("/api/vault/secrets", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b"y" * 65536

    r = api.post(
        "/api/vault/secrets", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    # A declared 10 GB body is refused from its headers alone, before any of it is sent.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/vault/secrets HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")
    # Unauthenticated oversize request: 413 too, never a 500.
    r = httpx.post(f"{server.url}/api/vault/secrets", content=big)
    assert r.status_code == 413


def test_client_ip_is_the_peer_unless_a_trusted_proxy_forwards(
    server: ServerProcess, api: httpx.Client
) -> None:
    path = unique()
    api.post("/api/vault/secrets", json={"path": path, "value": "v"})
    api.get(f"/api/vault/secrets/{path}", headers={"X-Forwarded-For": "1.2.3.4"})
    logs = api.get(f"/api/vault/secrets/{path}/audit").json()["logs"]
    assert {e["ip_address"] for e in logs} == {"127.0.0.1"}


def test_request_id_is_echoed_and_audited(api: httpx.Client) -> None:
    path = unique()
    api.post("/api/vault/secrets", json={"path": path, "value": "v"})
    r = api.get(f"/api/vault/secrets/{path}", headers={"X-Request-ID": "req-abc-123"})
    assert r.headers["x-request-id"] == "req-abc-123"
    logs = api.get(f"/api/vault/secrets/{path}/audit").json()["logs"]
    assert "req-abc-123" in {e["request_id"] for e in logs}


def test_metrics_openapi_and_docs(server: ServerProcess, api: httpx.Client) -> None:
    api.get("/api/vault/secrets/no/such/thing")
    text = httpx.get(f"{server.url}/metrics").text
    assert (
        'strongroom_http_requests_total{method="GET",route="/api/vault/secrets/{path}"'
        ',status="404"}' in text
    )
    assert "strongroom_http_request_duration_seconds_bucket" in text
    assert "strongroom_vault_locked 0.0" in text
    assert "strongroom_secrets_nearing_expiry" in text
    doc = httpx.get(f"{server.url}/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for template in (
        "/api/vault/unlock",
        "/api/vault/secrets/{path}/versions/{version}",
        "/api/vault/rotate-all",
        "/api/auth/login",
    ):
        assert template in doc["paths"]
    assert "swagger" in httpx.get(f"{server.url}/docs").text.lower()


def test_rotate_one_and_all(api: httpx.Client, server: ServerProcess) -> None:
    path = unique()
    api.post("/api/vault/secrets", json={"path": path, "value": "before"})
    r = api.post(f"/api/vault/secrets/{path}/rotate")
    assert r.status_code == 200 and r.json()["message"] == "Secret rotated successfully"
    admin = httpx.post(
        f"{server.url}/api/vault/rotate-all",
        headers=auth("Admin"),
        json={"new_master_key": "other-key-123456"},
    )
    assert admin.status_code == 403
    r = api.post("/api/vault/rotate-all", json={"new_master_key": "new-master-key-123456"})
    assert r.status_code == 200, r.text
    assert api.get(f"/api/vault/secrets/{path}/versions/1").json()["value"] == "before"
    r = api.post("/api/vault/rotate-all", json={"new_master_key": MASTER_KEY})
    assert r.status_code == 200, r.text


def test_lock_then_every_secret_operation_is_423(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path).start()
    try:
        with proc.client() as api:
            api.post("/api/vault/secrets", json={"path": "a/b", "value": "v"})
            assert api.post("/api/vault/lock").json() == {"message": "Vault locked successfully"}
            r = api.get("/api/vault/secrets/a/b")
            assert (r.status_code, r.json()["error"]) == (423, "vault is locked")
            assert api.get("/api/vault/status").json()["locked"] is True
            assert api.get("/api/vault/health").json()["locked"] is True
            r = api.post("/api/vault/unlock", json={"master_key": "wrong-key"})
            assert (r.status_code, r.json()["code"]) == (400, "invalid_master_key")
            limited = None
            for _ in range(10):
                r = api.post("/api/vault/unlock", json={"master_key": "wrong-key"})
                if r.status_code == 429:
                    limited, limited_at = r, time.monotonic()
                    break
                assert r.status_code == 400
            assert limited is not None and int(limited.headers["retry-after"]) >= 1
            assert limited.json()["code"] == "rate_limited"
            # Even the right key is refused during the back-off (unless this slow machine took
            # longer than the back-off to send it).
            r = api.post("/api/vault/unlock", json={"master_key": MASTER_KEY})
            assert r.status_code == 429 or time.monotonic() - limited_at >= 0.9
    finally:
        assert proc.stop() == 0


WEIRD: list[object] = [
    None,
    True,
    0,
    -1,
    2**70,
    1.5,
    "",
    " ",
    "\u0000",
    "x" * 5000,
    [],
    ["a"],
    {},
    {"a": 1},
    "../..",
    "%00",
    "\ud800",
]


def test_no_body_field_value_produces_a_500(api: httpx.Client) -> None:
    path = unique("fuzz")
    api.post("/api/vault/secrets", json={"path": path, "value": "v"})
    endpoints: list[tuple[str, str, list[str], dict[str, object]]] = [
        (
            "POST",
            "/api/vault/secrets",
            ["path", "value", "description", "expires_in"],
            {"path": unique("fuzz"), "value": "v"},
        ),
        ("PUT", f"/api/vault/secrets/{path}", ["value"], {"value": "v"}),
        ("POST", f"/api/vault/secrets/{path}/rollback", ["version"], {"version": 1}),
        ("POST", "/api/vault/generate-token", ["length"], {"length": 8}),
        ("POST", "/api/vault/unlock", ["master_key"], {"master_key": MASTER_KEY}),
        ("POST", "/api/auth/login", ["username", "password"], {"username": "u", "password": "p"}),
    ]
    for method, url, fields, base in endpoints:
        for field in fields:
            for weird in WEIRD:
                body: dict[str, object] = {**base, field: weird}
                if method == "POST" and url.endswith("/secrets") and field != "path":
                    body["path"] = unique("fuzz")
                r = api.request(
                    method, url, content=_dumps(body), headers={"content-type": "application/json"}
                )
                assert r.status_code < 500, (method, url, field, weird, r.text)
                assert "error" in r.json() or r.status_code < 300


def _dumps(body: dict[str, object]) -> bytes:
    import json

    return json.dumps(body).encode()


def test_odd_urls_and_queries_are_never_500(api: httpx.Client) -> None:
    for url in [
        "/api/vault/secrets/%00",
        "/api/vault/secrets/a%2Fb",
        "/api/vault/secrets/..",
        "/api/vault/secrets/a/versions/99999999999",
        "/api/vault/secrets/a/versions/-1",
        "/api/vault/secrets?prefix=%00",
        "/api/vault/secrets?prefix=" + "x" * 600,
        "/api/vault/secrets/a/audit?limit=abc",
        "/api/vault/audit?since=yesterday",
        "/api/vault/audit?user_id=-3",
        "/api/vault/secrets/" + "a/" * 300 + "b",
    ]:
        r = api.get(url)
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
