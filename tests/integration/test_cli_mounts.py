"""`vaultctl mount list|enable|disable|tune|move` as subprocesses: output, JSON, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.cli_support import Vaultctl, one_error_line


@pytest.fixture
def vc(tmp_path: Path) -> Vaultctl:
    v = Vaultctl(f"sqlite:///{tmp_path / 'v.db'}", tmp_path)
    v.ok("unlock")
    return v


def test_mount_commands(vc: Vaultctl) -> None:
    assert vc.ok("mount", "enable", "team", "--description", "team a").strip() == (
        "Enabled kv v2 at team/"
    )
    vc.ok("mount", "enable", "kv1", "--version", "1", "--max-lease-ttl", "1h")
    assert vc.ok("mount", "list").splitlines() == [
        "Found 3 mount(s):",
        "  kv1/  kv v1",
        "  secret/  kv v2  key/value secret storage",
        "  team/  kv v2  team a",
    ]
    listed = json.loads(vc.ok("mount", "list", "--format", "json"))
    assert listed["count"] == 3
    assert listed["mounts"][0]["config"]["max_lease_ttl"] == 3600
    tuned = json.loads(vc.ok("mount", "tune", "kv1", "--version", "2", "--format", "json"))
    assert tuned["version"] == 2
    assert vc.ok("mount", "move", "team", "team-b").strip() == "Moved team/ to team-b/"
    assert vc.ok("mount", "disable", "team-b").strip() == "Disabled team-b/ (0 secret(s) deleted)"
    one_error_line(vc("mount", "disable", "secret"), 2, "cannot disable secret/")
    one_error_line(vc("mount", "enable", "sys/x"), 2, "reserved path sys/")
    one_error_line(vc("mount", "enable", "kv1"), 1, "path is already in use at kv1/")
    one_error_line(vc("mount", "move", "kv1", "secret"), 1, "path is already in use at secret/")
    one_error_line(vc("mount", "tune", "nothing", "--description", "x"), 1, "no secrets engine")
    remote = vc("--addr", "http://127.0.0.1:1", "--token", "t", "mount", "list")
    assert remote.code == 2 and "works on the database directly" in remote.err
    names = [m["path"] for m in json.loads(vc.ok("mount", "list", "--format", "json"))["mounts"]]
    assert names == ["kv1/", "secret/"]
