"""The KV v2 routes served from the front layer (`http.direct`) answer exactly as Starlette's
router does: the same requests against the app with and without direct routes give the same
statuses, headers, bodies, audit trail and metrics labels."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from strongroom import open_vault
from strongroom.config import Secret, Settings
from strongroom.http import direct
from strongroom.http.app import create_app
from strongroom.http.serve import _config
from tests.conftest import MASTER_KEY, fast_config
from tests.integration.server_proc import JWT_SECRET, free_port, token

DEADLINE = 30.0

ADMIN = {"X-Vault-Token": token()}
NO_POLICY = {"X-Vault-Token": token("app", 40, ("nope",))}
REQUESTS: list[tuple[str, str, Any]] = [
    ("POST", "/v1/secret/data/a/b", {"data": {"k": "v"}}),
    ("POST", "/v1/secret/data/a/b", {"data": {"k": "v2"}, "options": {"cas": 1}}),
    ("POST", "/v1/secret/data/a/b", {"data": {"k": "v3"}, "options": {"cas": 1}}),
    ("GET", "/v1/secret/data/a/b", None),
    ("GET", "/v1/secret/data/a/b?version=1", None),
    ("GET", "/v1/secret/data/a/b?version=x", None),
    ("HEAD", "/v1/secret/data/a/b", None),
    ("GET", "/v1/secret/data/missing", None),
    ("PATCH", "/v1/secret/data/missing", None),
    ("DELETE", "/v1/secret/data/a/b", None),
    ("GET", "/v1/secret/data/a/b", None),
    ("GET", "/v1/secret/data/a%0Ab", None),
    ("POST", "/v1/secret/data/a/c%0A", {"data": {"k": "v"}}),
    ("GET", "/v1/secret/data/", None),
    ("GET", "/v1/secret/destroy/a/b", None),
    ("PUT", "/v1/secret/destroy/a/b", {"versions": [1]}),
    ("LIST", "/v1/secret/metadata/a/", None),
    ("GET", "/v1/secret/metadata/a/?list=true", None),
    ("GET", "/v1/secret/metadata/a/b", None),
    ("OPTIONS", "/v1/secret/metadata/a/b", None),
    ("POST", "/v1/secret/metadata/new", {"max_versions": 3}),
    ("GET", "/v1/secret/subkeys/a/b", None),
    ("POST", "/v1/secret/data/bad", "not json"),
    ("GET", "/v1/secret/data/a//b", None),
    ("GET", "/v1/secret/data/%2E%2E/x", None),
    # other mounts: the dispatcher, served without the router when no route starts the path
    ("POST", "/v1/team/data/a/b", {"data": {"k": "t"}}),
    ("GET", "/v1/team/data/a/b", None),
    ("GET", "/v1/team/data/missing", None),
    ("LIST", "/v1/team/metadata/a/", None),
    ("GET", "/v1/team/nothing/a", None),
    ("PUT", "/v1/team/destroy/a/b", {"versions": [1]}),
    ("HEAD", "/v1/team/data/a/b", None),
    ("POST", "/v1/legacy/k", {"v": 1}),
    ("GET", "/v1/legacy/k", None),
    ("GET", "/v1/no-such-mount/x", None),
    ("GET", "/v1/team/data/a%0Ab", None),
    ("GET", "/v1/sys/no-such-endpoint", None),
]


def _normal(text: str) -> str:
    """A JSON body without what differs between two runs (request ids, timestamps)."""
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if isinstance(body, dict):
        body.pop("request_id", None)
        text = json.dumps(body, sort_keys=True)
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<time>", text)


def _run(tmp: Path) -> tuple[list[Any], list[Any], set[str]]:
    """The requests against the app served by uvicorn (the server's own protocol, which
    accepts LIST) in a thread of this process."""
    vault = open_vault(f"sqlite:///{tmp / 'v.db'}", fast_config(auto_lock=False))
    vault.unlock(MASTER_KEY)
    vault.mounts.enable("team/", "kv", options={"version": "2"})
    vault.mounts.enable("legacy/", "kv", options={"version": "1"})
    port = free_port()
    settings = Settings(jwt_secret=Secret(JWT_SECRET), listen=f"127.0.0.1:{port}")
    server = uvicorn.Server(_config(create_app(settings, vault=vault), settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    end = time.monotonic() + DEADLINE
    while not server.started:
        assert time.monotonic() < end and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    answers = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for headers in (ADMIN, NO_POLICY, {}):
                for method, path, body in REQUESTS:
                    sent = dict(headers)
                    kwargs: dict[str, Any] = {}
                    if isinstance(body, dict):
                        kwargs["json"] = body
                    elif body is not None:
                        kwargs["content"] = body
                        sent["content-type"] = "application/json"
                    response = client.request(method, path, headers=sent, **kwargs)
                    kept = {
                        k: v
                        for k, v in response.headers.items()
                        if k not in ("x-request-id", "date", "content-length")
                    }
                    answers.append(
                        (method, path, response.status_code, kept, _normal(response.text))
                    )
            metrics = client.get("/metrics").text
        trail = [
            (e.action, e.path, e.success, e.error, e.user_id) for e in vault.audit_logs(limit=500)
        ]
    finally:
        server.should_exit = True
        thread.join(DEADLINE)
    return answers, trail, set(re.findall(r'route="([^"]*)"', metrics))


def test_direct_routes_answer_as_the_router_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "direct").mkdir()
    (tmp_path / "router").mkdir()
    served = _run(tmp_path / "direct")
    with monkeypatch.context() as patched:
        patched.setattr(direct.DirectRoutes, "match", lambda self, scope: None)
        routed = _run(tmp_path / "router")
    assert served[0] == routed[0]
    assert served[1] == routed[1]
    assert served[2] == routed[2]
    assert any(status == 200 for _, _, status, _, _ in served[0])
    assert "/v1/secret/data/{path:path}" in served[2]
    assert "/v1/{mount}/data/{path}" in served[2]
    assert any(
        status == 200 and path.startswith("/v1/team/") for _, path, status, _, _ in served[0]
    )
