"""The front layer (`app.Front`) on every route: one `x-request-id` on each response, and an
unexpected error answered as a JSON 500 carrying it, counted in the metrics and logged once,
whether the route is served directly (`http.direct`) or through Starlette's router."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from strongroom import open_vault
from strongroom.config import Secret, Settings
from strongroom.core.kv import KVEngine
from strongroom.http.app import create_app
from strongroom.http.serve import _config
from tests.conftest import MASTER_KEY, fast_config
from tests.integration.server_proc import JWT_SECRET, free_port, token

DEADLINE = 30.0
ADMIN = {"X-Vault-Token": token()}


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug in a routed endpoint")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    vault = open_vault(f"sqlite:///{tmp_path / 'v.db'}", fast_config(auto_lock=False))
    vault.unlock(MASTER_KEY)
    port = free_port()
    settings = Settings(jwt_secret=Secret(JWT_SECRET), listen=f"127.0.0.1:{port}")
    app = create_app(settings, vault=vault, extra_routes=[Route("/boom", boom)])
    server = uvicorn.Server(_config(app, settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    end = time.monotonic() + DEADLINE
    while not server.started:
        assert time.monotonic() < end and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=ADMIN) as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(DEADLINE)
        vault.close()


def _ids(response: httpx.Response) -> list[str]:
    return [v for k, v in response.headers.multi_items() if k == "x-request-id"]


def _count(metrics: str, route: str, status: int) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("strongroom_http_requests_total{") and f'route="{route}"' in line:
            if f'status="{status}"' in line:
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_one_request_id_on_direct_and_routed_responses(client: httpx.Client) -> None:
    for response in (
        client.post("/v1/secret/data/a", json={"data": {"k": "v"}}),  # direct
        client.get("/v1/secret/data/a"),  # direct
        client.get("/v1/secret/data/missing"),  # direct, an error
        client.get("/v1/secret/config"),  # the router
        client.get("/v1/nothing/here"),  # the router, an error
        client.get("/v1/secret/data/a", headers={"X-Request-ID": "mine-1"}),
    ):
        assert len(_ids(response)) == 1, (response.request.url, response.headers)
    assert _ids(response) == ["mine-1"]


@pytest.mark.parametrize("where", ["direct", "routed"])
def test_an_unexpected_error_is_a_counted_json_500_with_the_request_id(
    client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the core")

    monkeypatch.setattr(KVEngine, "read", broken)
    path, route = ("/v1/secret/data/a", "/v1/secret/data/{path:path}")
    if where == "routed":
        path, route = "/boom", "/boom"
    with caplog.at_level(logging.ERROR, logger="strongroom.http"):
        response = client.get(path, headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert _ids(response) == ["req-500"]
    assert "RuntimeError" not in response.text and "bug" not in response.text
    logged = [r for r in caplog.records if "failed unexpectedly" in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in caplog.records]
    assert _count(client.get("/metrics").text, route, 500) == 1
    assert client.get("/v1/sys/health").status_code == 200  # the server goes on
