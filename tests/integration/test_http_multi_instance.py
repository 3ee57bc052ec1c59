"""Two server processes on one PostgreSQL database: concurrent updates of one path lose nothing."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import httpx
import pytest

from tests.integration.server_proc import ServerProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WRITERS = 16
UPDATES = 500


def test_two_instances_sixteen_writers_one_path(tmp_path: Path, pg_dsn: str) -> None:
    first = ServerProcess(tmp_path, dsn=pg_dsn).start()
    second = ServerProcess(tmp_path, dsn=pg_dsn).start()
    try:
        with first.client() as api:
            created = api.post("/api/vault/secrets", json={"path": "shared/counter", "value": "0"})
            assert created.status_code == 201, created.text
        counter = itertools.count()
        results: list[tuple[int, str]] = []
        failures: list[str] = []
        lock = threading.Lock()

        def writer(n: int) -> None:
            server = first if n % 2 == 0 else second
            with server.client() as api:
                while (i := next(counter)) < UPDATES:
                    value = f"update-{i}"
                    r = api.put("/api/vault/secrets/shared/counter", json={"value": value})
                    with lock:
                        if r.status_code == 200:
                            results.append((r.json()["version"], value))
                        else:
                            failures.append(f"{r.status_code} {r.text}")

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert failures == []
        assert sorted(v for v, _ in results) == list(range(2, UPDATES + 2))
        for server in (first, second):
            with server.client() as api:
                listed = api.get("/api/vault/secrets/shared/counter/versions").json()
                assert [v["version"] for v in listed["versions"]] == list(range(UPDATES + 1, 0, -1))
        expected = dict(results)
        with first.client() as a, second.client() as b:
            for number in (2, 100, 250, UPDATES + 1):
                for api in (a, b):
                    got = api.get(f"/api/vault/secrets/shared/counter/versions/{number}")
                    assert got.json()["value"] == expected[number]
    finally:
        assert first.stop() == 0, first.output()
        assert second.stop() == 0, second.output()


def test_http_error_never_500_when_database_is_fine(tmp_path: Path, pg_dsn: str) -> None:
    server = ServerProcess(tmp_path, dsn=pg_dsn).start()
    try:
        with server.client() as api:
            statuses = {
                api.post("/api/vault/secrets", json={"path": "pg/x", "value": "v"}).status_code
                for _ in range(3)
            }
            assert statuses == {201, 409}
            assert httpx.get(f"{server.url}/api/vault/health").status_code == 200
    finally:
        assert server.stop() == 0
