"""`sys/remount/status/<id>` answers from every worker of a `--workers 2` server (and after a
restart): the id is derived from the move's audit entry, not remembered by one process."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.integration.server_proc import ServerProcess

pytestmark = pytest.mark.slow


def test_remount_status_from_every_worker(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path, workers=2).start()
    try:
        with proc.client() as api:
            r = api.post("/v1/sys/mounts/team", json={"type": "kv", "options": {"version": "2"}})
            assert r.status_code == 204, r.text
            api.post("/v1/team/data/app/db", json={"data": {"x": "1"}})
            moved = api.post("/v1/sys/remount", json={"from": "team", "to": "team-b"})
            assert moved.status_code == 200, moved.text
            migration_id = moved.json()["data"]["migration_id"]
            assert uuid.UUID(migration_id)
            again = api.post("/v1/sys/remount", json={"from": "team-b/", "to": "team-c"})
            second_id = again.json()["data"]["migration_id"]
        assert second_id != migration_id
        # Each request on a fresh connection, so the kernel spreads them over both workers.
        for _ in range(12):
            with proc.client() as api:
                r = api.get(f"/v1/sys/remount/status/{migration_id}")
                assert r.status_code == 200, r.text
                assert r.json()["data"] == {
                    "migration_id": migration_id,
                    "migration_info": {
                        "source_mount": "team/",
                        "target_mount": "team-b/",
                        "status": "success",
                    },
                }
                info = api.get(f"/v1/sys/remount/status/{second_id}").json()["data"]
                assert info["migration_info"]["source_mount"] == "team-b/"
        with proc.client() as api:
            assert api.get(f"/v1/sys/remount/status/{uuid.uuid4()}").status_code == 404
            assert api.get("/v1/sys/remount/status/not-an-id").status_code == 404
            assert api.get("/v1/team-c/data/app/db").json()["data"]["data"] == {"x": "1"}
    finally:
        assert proc.stop() == 0, proc.output()
    restarted = ServerProcess(tmp_path, workers=1).start()
    try:
        with restarted.client() as api:
            assert api.get(f"/v1/sys/remount/status/{migration_id}").status_code == 200
    finally:
        assert restarted.stop() == 0, restarted.output()
