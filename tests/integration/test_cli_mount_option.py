"""`vaultctl --mount`: the secret commands, `export` and `run` at KV v2 and v1 mounts other than
`secret/`, locally (the library's `vault.kv`) and remotely (the server's `/v1/<mount>/` API)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.integration.cli_support import Vaultctl, one_error_line
from tests.integration.test_cli_remote import remote

__all__ = ["remote"]


def _scenario(vc: Vaultctl, enable: Callable[[str, str], None]) -> None:
    enable("team", "2")
    enable("old", "1")
    vc.ok("create", "--path", "app/db", "--value", "at-secret")
    for mount in ("team", "old"):
        assert vc.ok("create", "--path", "app/db", "--value", f"{mount}-1", "--mount", mount) == (
            "Secret created successfully: app/db\n"
        )
        vc.ok("create", "--path", "app/api-key", "--value", f"{mount}-k", "--mount", mount)
        one_error_line(
            vc("create", "--path", "app/db", "--value", "x", "--mount", mount), 1, "already exists"
        )
        assert vc.ok("update", "--path", "app/db", "--value", f"{mount}-2", "--mount", mount)
        assert vc.ok("get", "--path", "app/db", "--mount", mount, "-q") == f"{mount}-2\n"
        env = vc.ok("export", "--prefix", "app/", "--mount", mount, "--format", "json")
        assert json.loads(env) == {"API_KEY": f"{mount}-k", "DB": f"{mount}-2"}
        ran = vc.ok("run", "--prefix", "app/", "--mount", mount, "--", "sh", "-c", "printf %s $DB")
        assert ran == f"{mount}-2"
    # secret/ is untouched and lists only its own key; the default and --mount secret agree
    assert vc.ok("get", "--path", "app/db") == "Path: app/db\nValue: at-secret\n"
    assert vc.ok("list", "--mount", "secret") == vc.ok("list")
    assert json.loads(vc.ok("list", "--format", "json"))["count"] == 1
    # KV v2: versions, --version, rollback, JSON get with its version
    assert "Found 2 version(s)" in vc.ok("versions", "--path", "app/db", "--mount", "team")
    assert vc.ok("get", "--path", "app/db", "--mount", "team", "--version", "1", "-q") == (
        "team-1\n"
    )
    got = json.loads(vc.ok("get", "--path", "app/db", "--mount", "team", "--format", "json"))
    assert got == {"path": "app/db", "value": "team-2", "version": 2}
    assert "version 1 restored as version 3" in vc.ok(
        "rollback", "--path", "app/db", "--version", "1", "--mount", "team"
    )
    listed = json.loads(vc.ok("list", "--mount", "team", "--prefix", "app/d", "--format", "json"))
    assert [(s["path"], s["version"]) for s in listed["secrets"]] == [("app/db", 3)]
    # KV v1: paths only, no versions
    assert vc.ok("list", "--mount", "old").splitlines() == [
        "Found 2 secret(s):",
        "app/api-key",
        "app/db",
    ]
    one_error_line(vc("versions", "--path", "app/db", "--mount", "old"), 2, "keeps no versions")
    got = json.loads(vc.ok("get", "--path", "app/db", "--mount", "old", "--format", "json"))
    assert got == {"path": "app/db", "value": "old-2", "version": None}
    # deletes, unknown keys and mounts, refused options
    for mount in ("team", "old"):
        vc.ok("delete", "--path", "app/db", "--mount", mount)
        one_error_line(vc("get", "--path", "app/db", "--mount", mount), 1, "not found")
        one_error_line(vc("delete", "--path", "app/db", "--mount", mount), 1, "not found")
        one_error_line(vc("update", "--path", "app/db", "--value", "v", "--mount", mount), 1)
    one_error_line(
        vc("get", "--path", "app/db", "--mount", "nope"), 1, "no secrets engine is mounted at nope/"
    )
    one_error_line(vc("get", "--path", "x", "--mount", "a b"), 2, "invalid mount path")
    one_error_line(vc("list", "--mount", "nope"), 1, "nope/")
    one_error_line(
        vc("create", "--path", "x", "--value", "v", "--mount", "team", "--expires-in", "1h"),
        2,
        "secret/ only",
    )
    assert vc.ok("get", "--path", "app/db", "--mount", "secret", "-q") == "at-secret\n"


def test_mount_option_local(tmp_path: Path) -> None:
    vc = Vaultctl(f"sqlite:///{tmp_path / 'v.db'}", tmp_path)
    vc.ok("unlock")

    def enable(path: str, version: str) -> None:
        vc.ok("mount", "enable", path, "--version", version)

    _scenario(vc, enable)


def test_mount_option_remote(remote: tuple[Vaultctl, str]) -> None:
    vc, _ = remote
    env = vc.extra_env

    def enable(path: str, version: str) -> None:
        r = httpx.post(
            f"{env['VAULT_ADDR']}/v1/sys/mounts/{path}",
            headers={"X-Vault-Token": env["VAULT_TOKEN"]},
            json={"type": "kv", "options": {"version": version}},
        )
        assert r.status_code == 204, r.text

    _scenario(vc, enable)
