"""Storage outages seen from outside (#11 items 11, 12): the 503 names the cause in words, the
server log says when storage went away and came back (one line each), and
`strongroom_storage_errors_total{cause}` counts the failures.

PostgreSQL: the server's own connections (found by a unique `application_name`) are terminated
with `pg_terminate_backend`, which is what a server restart does to them, without disturbing
any other test. SQLite: the database lives on a tiny tmpfs that a filler file makes full (skipped
where mounting is not allowed).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_BASE
from tests.integration.server_proc import ServerProcess

pytestmark = pytest.mark.filterwarnings("error")


def storage_errors(client: httpx.Client) -> dict[str, float]:
    text = client.get("/metrics").text
    found = re.findall(r'^strongroom_storage_errors_total\{cause="(\w+)"\} ([\d.e+]+)$', text, re.M)
    return {cause: float(n) for cause, n in found}


def terminate_backends(app_name: str) -> int:
    import psycopg

    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (app_name,),
        ).fetchall()
    return len(rows)


def test_postgres_connection_lost_is_visible(pg_dsn: str, tmp_path: Path) -> None:
    app_name = f"strongroom-test-{uuid.uuid4().hex[:8]}"
    server = ServerProcess(tmp_path, dsn=f"{pg_dsn}&application_name={app_name}").start()
    try:
        with server.client() as api:
            path = f"outage/{uuid.uuid4().hex[:8]}"
            assert api.post("/api/vault/secrets", json={"path": path, "value": "v"}).status_code
            assert terminate_backends(app_name) >= 1
            failed = api.get(f"/api/vault/secrets/{path}")
            assert failed.status_code == 503, failed.text
            body = failed.json()
            assert body["error"] == "storage unavailable: database connection lost", body
            assert body["code"] == "storage_unavailable"
            for name in ("OperationalError", "AdminShutdown", "psycopg", "SQL"):
                assert name not in failed.text
            v1 = api.get(f"/v1/secret/data/{path}")
            assert v1.status_code in (200, 503), v1.text  # the pool may have reconnected
            deadline = time.monotonic() + 20
            while api.get(f"/api/vault/secrets/{path}").status_code != 200:
                assert time.monotonic() < deadline, "storage did not come back"
                time.sleep(0.1)
            assert storage_errors(api).get("connection_lost", 0) >= 1
    finally:
        assert server.stop() == 0
    log = server.output()
    assert log.count('storage unavailable: cause="database connection lost"') == 1, log
    assert log.count("storage available again") == 1, log
    assert "Traceback" not in log and "AdminShutdown" not in log, log


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_full_disk_fails_reads_fast_and_visibly(tiny_disk: Path, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, dsn=f"sqlite:///{tiny_disk / 'vault.db'}").start()
    try:
        with server.client() as api:
            path = "disk/full"
            assert api.post("/api/vault/secrets", json={"path": path, "value": "v"}).status_code
            filler = fill(tiny_disk)
            # Fill what the WAL could still reuse: writes until one fails.
            for i in range(200):
                if api.put(f"/api/vault/secrets/{path}", json={"value": "x" * 4000}).is_error:
                    break
                fill(tiny_disk).rename(tiny_disk / f"filler{i}")
            failed = api.get(f"/api/vault/secrets/{path}")
            assert failed.status_code == 503, failed.text
            assert failed.json()["error"] == "storage unavailable: disk full"
            # Fail fast: 200 reads against a full disk take well under a second each.
            started = time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                urls = [f"/api/vault/secrets/{path}"] * 200
                statuses = list(pool.map(lambda u: api.get(u).status_code, urls))
            assert set(statuses) == {503}
            assert time.monotonic() - started < 10
            assert storage_errors(api).get("audit", 0) >= 2  # per failed transaction
            for leftover in tiny_disk.glob("filler*"):
                os.unlink(leftover)
            del filler
            deadline = time.monotonic() + 10
            while api.get(f"/api/vault/secrets/{path}").status_code != 200:
                assert time.monotonic() < deadline, "reads did not resume"
                time.sleep(0.2)
    finally:
        assert server.stop() == 0
    log = server.output()
    assert log.count('storage unavailable: cause="disk full"') == 1, log
    assert log.count("storage available again") == 1, log
    assert "Traceback" not in log, log
