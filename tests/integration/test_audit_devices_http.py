"""Audit devices in a real server: records for HTTP requests, fail-closed (503 and a log line)
when a required device fails, an optional one ignored, the file device reopened on SIGHUP."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.integration import server_proc


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(check: object, what: str, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_file_device_sighup_and_fail_closed(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    server = server_proc.ServerProcess(
        tmp_path,
        args=["--audit-device", f"file:{log}", "--audit-device", "file:/dev/full,optional"],
    ).start()
    try:
        assert server.proc is not None
        with server.client() as http:
            r = http.post("/api/vault/secrets", json={"path": "app/db", "value": "s3cret-value"})
            assert r.status_code == 201, r.text
            assert http.get("/api/vault/secrets/app/db").status_code == 200
            got = records(log)
            assert [g["action"] for g in got][-2:] == ["create", "read"]
            assert all(g["request_id"] and g["mac"] for g in got[-2:])
            assert "s3cret-value" not in log.read_text()

            # logrotate: move the file away, SIGHUP, the next entry goes to a new file.
            log.rename(tmp_path / "audit.jsonl.1")
            server.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: http.get("/api/vault/secrets/app/db") and log.exists(), "reopen")
            assert records(log) and records(log)[-1]["action"] == "read"
            rotated = records(tmp_path / "audit.jsonl.1")
            assert len(rotated) >= 3

            # The required device fails (disk full): requests fail closed with a 503.
            log.unlink()
            log.symlink_to("/dev/full")
            server.proc.send_signal(signal.SIGHUP)
            wait_for(
                lambda: http.get("/api/vault/secrets/app/db").status_code == 503, "fail-closed"
            )
            r = http.put("/api/vault/secrets/app/db", json={"value": "v2"})
            assert r.status_code == 503 and "audit device" in r.json()["error"]
            log.unlink()
            server.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: http.get("/api/vault/secrets/app/db").status_code == 200, "recovery")
            assert http.get("/api/vault/secrets/app/db").json()["value"] == "s3cret-value"
    finally:
        server.stop()
    out = server.output()
    assert "audit device file:" in out and "failed, request refused" in out
    assert "optional audit device file:/dev/full,optional failed" in out
    assert "s3cret-value" not in out


def test_sighup_reopens_in_every_worker(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    server = server_proc.ServerProcess(
        tmp_path, workers=2, args=["--audit-device", f"file:{log}"]
    ).start()
    try:
        assert server.proc is not None
        with server.client() as http:
            http.post("/api/vault/secrets", json={"path": "app/db", "value": "v"})
            for _ in range(10):
                assert http.get("/api/vault/secrets/app/db").status_code == 200
            log.rename(tmp_path / "audit.jsonl.1")
            server.proc.send_signal(signal.SIGHUP)  # the supervisor forwards it to each worker
            wait_for(lambda: http.get("/api/vault/secrets/app/db") and log.exists(), "reopen")
            for _ in range(20):
                http.get("/api/vault/secrets/app/db")
            old = len(records(tmp_path / "audit.jsonl.1"))
            for _ in range(20):
                http.get("/api/vault/secrets/app/db")
        assert len(records(tmp_path / "audit.jsonl.1")) == old  # no worker kept the old file
        ids = [r["id"] for r in records(tmp_path / "audit.jsonl.1") + records(log)]
        assert len(ids) == len(set(ids))  # every entry once across both files
    finally:
        server.stop()
