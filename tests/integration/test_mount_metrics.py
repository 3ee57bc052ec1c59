"""`strongroom_kv_requests_total{mount,method,status}`: requests by the KV mount that served
them, by accessor; `/metrics` answers without a token, so neither a mount's path nor a path a
caller typed (unknown mounts, keys) becomes a label. Only `secret/`, the design's own mount,
appears by name."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.server_proc import ServerProcess


def test_kv_requests_by_mount(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path).start()
    try:
        with proc.client() as api:
            r = api.post("/v1/sys/mounts/team", json={"type": "kv", "options": {"version": "2"}})
            assert r.status_code == 204, r.text
            assert api.post("/v1/sys/mounts/old", json={"type": "kv"}).status_code == 204
            assert api.post("/v1/team/data/app/db", json={"data": {"x": "1"}}).status_code == 200
            assert api.get("/v1/team/data/app/db").status_code == 200
            assert api.get("/v1/team/data/app/none").status_code == 404
            assert api.post("/v1/old/app", json={"x": "1"}).status_code == 204
            assert api.post("/v1/secret/data/k", json={"data": {"x": "1"}}).status_code == 200
            api.post("/api/vault/secrets", json={"path": "a/b", "value": "v"})
            assert api.get("/v1/no-such-mount/data/x").status_code == 404
            mounts = api.get("/v1/sys/mounts").json()["data"]
        text = httpx.get(f"{proc.url}/metrics", verify=proc.verify()).text
    finally:
        assert proc.stop() == 0, proc.output()
    lines = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("strongroom_kv_requests_total{")
    }
    assert len(lines) == 6, text
    team, old = mounts["team/"]["accessor"], mounts["old/"]["accessor"]
    assert team.startswith("kv_") and old.startswith("kv_") and team != old
    assert lines == {
        f'strongroom_kv_requests_total{{method="POST",mount="{team}",status="200"}}': 1.0,
        f'strongroom_kv_requests_total{{method="GET",mount="{team}",status="200"}}': 1.0,
        f'strongroom_kv_requests_total{{method="GET",mount="{team}",status="404"}}': 1.0,
        f'strongroom_kv_requests_total{{method="POST",mount="{old}",status="204"}}': 1.0,
        'strongroom_kv_requests_total{method="POST",mount="secret/",status="200"}': 1.0,
        'strongroom_kv_requests_total{method="POST",mount="secret/",status="201"}': 1.0,
    }
    for leak in ("no-such-mount", "app/db", "team", "old/"):
        assert leak not in text, leak
