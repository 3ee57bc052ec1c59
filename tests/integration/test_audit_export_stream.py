"""`vaultctl audit export` and `GET /api/vault/audit/export` stream 50,000 entries on each backend:
every entry once, in id order, with flat memory (peak RSS compared with a small window's)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx

from strongroom import open_vault
from strongroom.clock import ManualClock
from strongroom.models import Actor
from tests.conftest import fast_config
from tests.integration import server_proc
from tests.integration.cli_support import MASTER_KEY, base_env

BULK = 50_000
EARLY = 1_000  # entries before the --until cut (the small window)
#: Peak RSS of exporting 50,000 entries may exceed a 1,000-entry window's by at most this much.
FLAT_KIB = 12 * 1024


def populate(dsn: str, key: str) -> ManualClock:
    """50,000 read entries in two writer batches (the core's group commit): seconds, not hours."""
    clock = ManualClock()
    vault = open_vault(dsn, fast_config(clock=clock, auto_lock=False))
    vault.unlock(key)
    state, actor = vault.state, Actor(7, "10.0.0.9")
    state.audit([state.entry("read", actor, f"bulk/{i:05d}") for i in range(EARLY)])
    clock.advance(timedelta(hours=1))
    state.audit([state.entry("read", actor, f"bulk/{i:05d}") for i in range(EARLY, BULK)])
    vault.close()
    return clock


#: Runs vaultctl, then writes its peak RSS (VmHWM: reset by exec, unlike ru_maxrss, which
#: keeps the forked test process's peak) to the file named by the first argument.
_MEASURED = """
import atexit, runpy, sys
out = sys.argv.pop(1)
def report():
    status = open("/proc/self/status").read().splitlines()
    open(out, "w").write(next(s.split()[1] for s in status if s.startswith("VmHWM:")))
atexit.register(report)
runpy.run_module("strongroom", run_name="__main__")
"""


def run_export(dsn: str, tmp: Path, *args: str) -> tuple[Path, int]:
    """Run `vaultctl audit export -o FILE ARGS`; return (file, its peak RSS in KiB)."""
    out = tmp / f"export-{len(list(tmp.glob('export-*')))}.jsonl"
    env = {**base_env(), "DATABASE_URL": dsn, "VAULT_MASTER_KEY": MASTER_KEY}
    hwm = tmp / "hwm.txt"
    cmd = [sys.executable, "-c", _MEASURED, str(hwm), "audit", "export", "-o", str(out), *args]
    log = tmp / "stderr.txt"
    with log.open("wb") as err_file:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err_file)
        assert proc.wait(timeout=120) == 0, log.read_text()
    assert "Traceback" not in log.read_text()
    return out, int(hwm.read_text())


def bulk_paths(rows: Iterator[dict[str, object]]) -> tuple[list[str], list[int]]:
    paths, ids = [], []
    for row in rows:
        ids.append(int(str(row["id"])))
        if str(row["path"] or "").startswith("bulk/"):
            paths.append(str(row["path"]))
    return paths, ids


def test_cli_export_streams_50k_in_flat_memory(dsn: str, tmp_path: Path) -> None:
    clock = populate(dsn, MASTER_KEY)
    cut = clock.now().isoformat()
    small, small_rss = run_export(dsn, tmp_path, "--until", cut)
    full, full_rss = run_export(dsn, tmp_path)
    with small.open() as f:
        paths, _ = bulk_paths(json.loads(line) for line in f)
    assert paths == [f"bulk/{i:05d}" for i in range(EARLY)]
    with full.open() as f:
        paths, ids = bulk_paths(json.loads(line) for line in f)
    assert paths == [f"bulk/{i:05d}" for i in range(BULK)]  # every entry once, in order
    assert ids == sorted(set(ids))
    anchor = json.loads(Path(f"{full}.anchor.json").read_text())
    assert anchor["id"] == ids[-1]
    print(f"\npeak RSS: {small_rss} KiB ({EARLY} entries), {full_rss} KiB ({len(ids)} entries)")
    assert full_rss - small_rss < FLAT_KIB, (small_rss, full_rss)
    csv_file, _ = run_export(dsn, tmp_path, "--until", cut, "--format", "csv")
    with csv_file.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows if r["path"].startswith("bulk/")] == paths[:EARLY]
    assert all(len(r["mac"]) == 64 for r in rows)


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_http_export_streams_50k(dsn: str, tmp_path: Path) -> None:
    populate(dsn, server_proc.MASTER_KEY)
    server = server_proc.ServerProcess(tmp_path, dsn=dsn).start()
    try:
        assert server.proc is not None
        with server.client() as client:
            # Warm up (imports, first pool connections), then measure the export alone.
            assert client.get("/api/vault/audit/export", params={"until": "2000-01-01"}).text == ""
            before = vm_hwm_kib(server.proc.pid)
            with client.stream("GET", "/api/vault/audit/export") as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("application/x-ndjson")
                paths, ids = bulk_paths(json.loads(line) for line in response.iter_lines())
            after = vm_hwm_kib(server.proc.pid)
            with server.client("Reader") as reader:
                assert reader.get("/api/vault/audit/export").status_code == 403
            bad = client.get("/api/vault/audit/export", params={"format": "xml"})
            assert bad.status_code == 400 and "format" in bad.json()["error"]
        assert paths == [f"bulk/{i:05d}" for i in range(BULK)]
        assert ids == sorted(set(ids))
        print(f"\nserver peak RSS: {before} KiB before, {after} KiB after ({len(ids)} entries)")
        assert after - before < FLAT_KIB, (before, after)
    finally:
        server.stop()


def test_http_export_needs_a_token(tmp_path: Path) -> None:
    server = server_proc.ServerProcess(tmp_path).start()
    try:
        r = httpx.get(f"{server.url}/api/vault/audit/export")
        assert r.status_code == 401
    finally:
        server.stop()
