"""Audit devices on each backend: every committed entry streamed once with its id and MAC, never a
value; a failing required device fails the operation (nothing stored), an optional one does not."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom import Vault, errors, open_vault
from strongroom.clock import ManualClock
from strongroom.core.audit_devices import parse_device, request_reopen
from tests.conftest import MASTER_KEY, fast_config
from tests.core.dbutil import raw_sql

CANARY = f"CANARY-{uuid.uuid4()}"


def device_vault(dsn: str, *devices: str) -> Vault:
    vault = open_vault(
        dsn, fast_config(clock=ManualClock(), auto_lock=False, audit_devices=devices)
    )
    vault.unlock(MASTER_KEY)
    return vault


def db_rows(dsn: str) -> list[tuple[int, str, str | None, str | None]]:
    return raw_sql(dsn, "SELECT id, action, path, mac FROM vault_audit_logs ORDER BY id")


def test_file_device_gets_every_entry_once(dsn: str, tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    vault = device_vault(dsn, f"file:{log}")
    try:
        vault.create_secret("app/db", CANARY, request_id="req-1")
        vault.get_secret("app/db", ip="10.1.2.3")
        with pytest.raises(errors.SecretNotFound):
            vault.get_secret("app/none")
    finally:
        vault.close()
    text = log.read_text()
    assert CANARY not in text and MASTER_KEY not in text
    records = [json.loads(line) for line in text.splitlines()]
    assert [(r["id"], r["action"], r["path"], r["mac"]) for r in records] == [
        tuple(row) for row in db_rows(dsn)
    ]
    create = next(r for r in records if r["action"] == "create")
    assert create["request_id"] == "req-1" and create["success"] is True
    read = next(r for r in records if r["action"] == "read" and r["path"] == "app/db")
    assert read["ip_address"] == "10.1.2.3" and read["timestamp"].endswith("Z")
    missing = records[-1]
    assert missing["success"] is False and missing["error"] == "SecretNotFound"


def test_failing_required_device_fails_closed(dsn: str, tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    vault = device_vault(dsn, f"file:{log}")
    try:
        vault.create_secret("app/db", "v1")
        before = db_rows(dsn)
        log.unlink()
        log.symlink_to("/dev/full")  # from now on every write fails: ENOSPC
        request_reopen()
        with pytest.raises(errors.StorageUnavailable, match="audit device"):
            vault.get_secret("app/db")
        with pytest.raises(errors.StorageUnavailable, match="audit device"):
            vault.update_secret("app/db", "v2")
        # Nothing was stored: neither the change nor an entry.
        assert db_rows(dsn) == before
        log.unlink()
        request_reopen()
        assert vault.get_secret("app/db") == "v1"
    finally:
        vault.close()


def test_unlock_fails_when_a_required_device_fails(dsn: str) -> None:
    vault = open_vault(dsn, fast_config(auto_lock=False, audit_devices=("file:/dev/full",)))
    try:
        with pytest.raises(errors.StorageUnavailable):
            vault.unlock(MASTER_KEY)
        assert not vault.state.is_unlocked
    finally:
        vault.close()


def test_failing_optional_device_is_logged_and_ignored(
    dsn: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "audit.jsonl"
    vault = device_vault(dsn, "file:/dev/full,optional", f"file:{log}")
    try:
        vault.create_secret("app/db", "v1")
        assert vault.get_secret("app/db") == "v1"
    finally:
        vault.close()
    assert "optional audit device file:/dev/full,optional failed" in caplog.text
    assert len(log.read_text().splitlines()) == len(db_rows(dsn))


def test_optional_device_failure_logged_once_a_minute(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    vault = open_vault(
        dsn,
        fast_config(clock=clock, auto_lock=False, audit_devices=("file:/dev/full,optional",)),
    )
    try:
        vault.unlock(MASTER_KEY)  # the first failure: logged
        for n in range(5):
            vault.create_secret(f"app/{n}", "v")
        failed = [r.getMessage() for r in caplog.records if "audit device" in r.getMessage()]
        assert len(failed) == 1 and "file:/dev/full,optional failed" in failed[0]
        clock.advance(timedelta(seconds=61))
        caplog.clear()
        vault.create_secret("app/next", "v")
        (again,) = [r.getMessage() for r in caplog.records if "audit device" in r.getMessage()]
        assert "5 failures not logged" in again
    finally:
        vault.close()


def test_file_device_reopens_after_request(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    vault = device_vault(f"sqlite:///{tmp_path / 'v.db'}", f"file:{log}")
    try:
        vault.create_secret("a/b", "v")
        log.rename(tmp_path / "audit.jsonl.1")  # logrotate moves it away ...
        vault.get_secret("a/b")  # ... the old file keeps getting entries until SIGHUP
        request_reopen()
        vault.get_secret("a/b")
    finally:
        vault.close()
    old = (tmp_path / "audit.jsonl.1").read_text().splitlines()
    new = log.read_text().splitlines()
    assert [json.loads(line)["action"] for line in new] == ["read"]
    assert json.loads(old[-1])["action"] == "read"


@pytest.fixture
def tcp_receiver() -> Iterator[tuple[int, list[bytes]]]:
    server = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def accept() -> None:
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(65536):
                got.append(data)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield server.getsockname()[1], got
    server.close()


def test_socket_and_syslog_devices(tmp_path: Path, tcp_receiver: tuple[int, list[bytes]]) -> None:
    port, tcp = tcp_receiver
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(5)
    syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslog.bind(str(tmp_path / "log.sock"))
    syslog.settimeout(5)
    specs = (
        f"socket:127.0.0.1:{port}",
        f"socket:127.0.0.1:{udp.getsockname()[1]},udp",
        f"syslog:{tmp_path / 'log.sock'}",
    )
    vault = device_vault(f"sqlite:///{tmp_path / 'v.db'}", *specs)
    try:
        vault.create_secret("a/b", CANARY)
        n = len(db_rows(f"sqlite:///{tmp_path / 'v.db'}"))
        datagrams = [json.loads(udp.recv(65536)) for _ in range(n)]
        assert [d["action"] for d in datagrams][-1] == "create"
        messages = [syslog.recv(65536).decode() for _ in range(n)]
        assert messages[-1].startswith("<86>1 ") and " strongroom " in messages[-1]
        assert '"action": "create"' in messages[-1] and CANARY not in messages[-1]
    finally:
        vault.close()
        udp.close()
        syslog.close()
    # The receiver's thread reads the stream on its own: wait until the last entry came.
    deadline = time.monotonic() + 15
    while not (text := b"".join(tcp).decode()).endswith("\n") or (
        json.loads(text.splitlines()[-1])["action"] != "create"
    ):
        assert time.monotonic() < deadline, f"the TCP receiver got {text!r}"
        time.sleep(0.01)  # polling interval only: the deadline decides
    assert CANARY not in text


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("ftp://x", "expected file:PATH"),
        ("file:", "expected file:PATH"),
        ("socket:nohost", "socket:HOST:PORT"),
        ("socket:h:99999", "socket:HOST:PORT"),
        ("file:/x,udp", "udp/tcp apply"),
    ],
)
def test_bad_specs_are_refused(spec: str, needle: str) -> None:
    with pytest.raises(errors.InvalidInput, match=needle):
        parse_device(spec)


def test_spec_syntax() -> None:
    d = parse_device("socket:127.0.0.1:514,udp,optional")
    assert (d.kind, d.target, d.udp, d.optional) == ("socket", "127.0.0.1:514", True, True)
    assert parse_device("syslog").target == "/dev/log"
    assert parse_device("file:/var/log/a,b.jsonl").target == "/var/log/a,b.jsonl"
