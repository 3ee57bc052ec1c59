"""`vaultctl` in remote mode: the same commands against a real `vaultctl server` subprocess."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cli_support import Vaultctl, base_env, one_error_line


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[tuple[Vaultctl, str]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = base_env()
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "strongroom.cli.server", "--listen", f"127.0.0.1:{port}", "--dev"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    deadline, token, key = time.monotonic() + 60, "", ""
    while time.monotonic() < deadline and not token:
        text = (tmp_path / "server.log").read_text()
        for line in text.splitlines():
            if line.startswith("Admin token"):
                token = line.rsplit(": ", 1)[1]
            if line.startswith("Master key"):
                key = line.rsplit(": ", 1)[1]
        time.sleep(0.05)
    assert token, (tmp_path / "server.log").read_text()
    vc = Vaultctl(
        "sqlite:///unused.db",
        tmp_path,
        key=None,
        extra_env={"VAULT_ADDR": f"http://127.0.0.1:{port}", "VAULT_TOKEN": token},
    )
    try:
        yield vc, key
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_same_commands_over_http(remote: tuple[Vaultctl, str], tmp_path: Path) -> None:
    vc, key = remote
    assert "Server: http://127.0.0.1" in vc.ok("status")
    vc.ok("create", "--path", "a/b", "--value", "remote-v", "--description", "d")
    assert vc.ok("get", "--path", "a/b") == "Path: a/b\nValue: remote-v\n"
    vc.ok("update", "--path", "a/b", "--value", "v2")
    assert vc.ok("list").startswith("Found 1 secret(s):\n\nPath: a/b\n  Description: d\n")
    assert "- update - 127.0.0.1" in vc.ok("audit", "--path", "a/b")
    assert "Vault locked successfully" in vc.ok("lock")
    one_error_line(vc("get", "--path", "a/b"), 1, "vault is locked")
    key_file = tmp_path / "key"
    key_file.write_text(key)
    assert vc.ok("unlock", "--master-key-file", str(key_file)) == "Vault unlocked successfully\n"
    assert vc.ok("run", "--prefix", "a/", "--", "sh", "-c", "printf %s $B") == "v2"
    one_error_line(vc("backup", "--out", str(tmp_path / "x")), 2, "database directly")
    one_error_line(vc("get", "--path", "a/b", "--token", "not-a-jwt"), 1)


def test_versions_rotation_and_housekeeping_over_http(remote: tuple[Vaultctl, str]) -> None:
    vc, _ = remote
    vc.ok("create", "--path", "db/pw", "--value", "one")
    vc.ok("update", "--path", "db/pw", "--value", "two")
    assert vc.ok("versions", "--path", "db/pw").startswith("Found 2 version(s):")
    assert vc.ok("get", "--path", "db/pw", "--version", "1", "-q") == "one\n"
    vc.ok("rollback", "--path", "db/pw", "--version", "1")
    assert vc.ok("get", "--path", "db/pw", "-q") == "one\n"
    assert "db/pw" in vc.ok("rotate", "--path", "db/pw")
    assert vc.ok("audit", "verify").startswith("chain intact: ")
    assert len(vc.ok("generate", "--length", "16", "-q").strip()) >= 16
    assert "Cleaned up 0 expired secret(s)" in vc.ok("cleanup")
    vc.ok("delete", "--path", "db/pw")
    one_error_line(vc("get", "--path", "db/pw"), 1, "secret not found")
