"""KV v2 over HTTP on PostgreSQL: writes queued from the event loop and batched by the writer's
own thread (`ServerState.write`), every request answered with its own outcome; reads in the
thread pool answered only once their audit entry is durable (`ServerState.read`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.core.dbutil import raw_script
from tests.integration.server_proc import ServerProcess

pytestmark = pytest.mark.postgres


def test_concurrent_kv2_writes_on_postgresql(pg_dsn: str, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, dsn=pg_dsn).start()
    try:
        with server.client() as api:

            def put(i: int) -> httpx.Response:
                return api.post(f"/v1/secret/data/pgw/k{i % 4}", json={"data": {"n": i}})

            with ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(put, range(64)))
            assert [r.status_code for r in answers] == [200] * 64, answers[0].text
            # each of the 4 keys got versions 1..16, each version answered once
            versions = sorted(r.json()["data"]["version"] for r in answers)
            assert versions == sorted(v for v in range(1, 17) for _ in range(4))

            # a failed write fails alone, as Vault answers it, and writes nothing
            stale = api.post(
                "/v1/secret/data/pgw/k0", json={"options": {"cas": 1}, "data": {"n": -1}}
            )
            assert stale.status_code == 400, stale.text
            assert "check-and-set" in stale.text
            assert api.post("/v1/secret/data/pgw/new", json={"data": {"n": 0}}).status_code == 200

            current = api.get("/v1/secret/data/pgw/k0").json()["data"]
            assert current["metadata"]["version"] == 16
            assert current["data"]["n"] in range(0, 64, 4)
            entries = api.get("/api/vault/audit", params={"path": "pgw/k0", "limit": 100}).json()
            writes = [e for e in entries["logs"] if e["action"] in ("create", "update")]
            assert len(writes) == 16
        assert server.stop() == 0, server.output()
    finally:
        server.kill_leftovers()


DENY_AUDIT = """
CREATE FUNCTION deny_audit() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'audit unavailable'; END $$;
CREATE TRIGGER deny_audit BEFORE INSERT ON vault_audit_logs
FOR EACH ROW EXECUTE FUNCTION deny_audit();
"""
ALLOW_AUDIT = "DROP TRIGGER deny_audit ON vault_audit_logs; DROP FUNCTION deny_audit();"


def test_a_read_whose_audit_entry_fails_is_refused(pg_dsn: str, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, dsn=pg_dsn).start()
    try:
        with server.client() as api:
            assert api.post("/v1/secret/data/r/k", json={"data": {"v": 1}}).status_code == 200
            raw_script(pg_dsn, "", DENY_AUDIT)
            try:
                refused = api.get("/v1/secret/data/r/k")
                assert refused.status_code == 503, refused.text
                assert '"v"' not in refused.text  # fail-closed: no value without its audit entry
                missing = api.get("/v1/secret/data/r/none")  # a refusal is audited too
                assert missing.status_code == 503, missing.text
            finally:
                raw_script(pg_dsn, "", ALLOW_AUDIT)
            read = api.get("/v1/secret/data/r/k")
            assert read.status_code == 200 and read.json()["data"]["data"] == {"v": 1}
            assert api.get("/v1/secret/data/r/none").status_code == 404
        assert server.stop() == 0, server.output()
    finally:
        server.kill_leftovers()
