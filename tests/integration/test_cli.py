"""`vaultctl` as a user runs it (subprocess), on SQLite: the documented commands and formats."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from tests.integration.cli_support import MASTER_KEY, Vaultctl, one_error_line

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture
def vc(tmp_path: Path) -> Vaultctl:
    return Vaultctl(f"sqlite:///{tmp_path / 'vault.db'}", tmp_path)


def test_documented_flow(vc: Vaultctl) -> None:
    r = vc("unlock", "--master-key", MASTER_KEY, key=None)
    assert r.code == 0 and r.out == "Vault unlocked successfully\n"
    assert "visible in the process list" in r.err
    vc.ok(
        "create",
        "--path",
        "database/postgres/password",
        "--value",
        "my-secure-password",
        "--description",
        "PostgreSQL database password",
        "--user-id",
        "1",
    )
    vc.ok(
        "create",
        "--path",
        "api/stripe/secret-key",
        "--value",
        "sk_live_...",
        "--description",
        "Stripe API secret key",
        "--expires-in",
        "90d",
        "--user-id",
        "1",
    )
    assert vc.ok("get", "--path", "api/stripe/secret-key") == (
        "Path: api/stripe/secret-key\nValue: sk_live_...\n"
    )
    assert "version 2" in vc.ok(
        "update",
        "--path",
        "database/postgres/password",
        "--value",
        "new-password",
        "--user-id",
        "2",
    )

    listing = vc.ok("list")
    assert re.fullmatch(
        "Found 2 secret\\(s\\):\n\n"
        "Path: api/stripe/secret-key\n  Description: Stripe API secret key\n  Version: 1\n"
        f"  Created: {ISO}\n  Updated: {ISO}\n  Expires: {ISO}\n\n"
        "Path: database/postgres/password\n  Description: PostgreSQL database password\n"
        f"  Version: 2\n  Created: {ISO}\n  Updated: {ISO}\n",
        listing,
    ), listing
    assert vc.ok("list", "--prefix", "database/").startswith(
        "Found 1 secret(s):\n\nPath: database/postgres/password\n"
    )

    assert re.fullmatch(
        f"Found 2 version\\(s\\):\n\nVersion: 2\n  Updated: {ISO}\n  Updated By: User ID 2\n\n"
        f"Version: 1\n  Updated: {ISO}\n  Updated By: User ID 1\n",
        vc.ok("versions", "--path", "database/postgres/password"),
    )

    vc("get", "--path", "database/nope")  # a failed read is audited too
    audit = vc.ok("audit", "--path", "database/postgres/password", "--limit", "50")
    lines = audit.splitlines()
    assert lines[:2] == ["Found 3 audit log(s):", ""]
    assert re.fullmatch(f"✅ {ISO} - User ID 1 - versions - cli", lines[2])
    assert re.fullmatch(f"✅ {ISO} - User ID 2 - update - cli", lines[3])
    assert re.fullmatch(f"✅ {ISO} - User ID 1 - create - cli", lines[4])
    failed = vc.ok("audit", "--path", "database/nope").splitlines()
    assert re.fullmatch(f"❌ {ISO} - User ID 1 - read - cli", failed[2])

    assert vc.ok("cleanup") == "✅ Cleaned up 0 expired secret(s)\n"
    token = vc.ok("generate", "--length", "64").strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{86}", token)
    status = vc.ok("status")
    assert "Vault status: locked" in status and "Initialized: yes" in status
    assert "Vault locked successfully" in vc.ok("lock")
    vc.ok("delete", "--path", "api/stripe/secret-key", "--user-id", "1")
    one_error_line(vc("get", "--path", "api/stripe/secret-key"), 1, "secret not found")


def test_global_flags_before_or_after_command(vc: Vaultctl, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    r = vc(
        "--db-dsn",
        f"sqlite:///{other}",
        "--master-key",
        "k-before-9274615083",
        "create",
        "--path",
        "a/b",
        "--value",
        "v",
        key=None,
    )
    assert r.code == 0 and "visible in the process list" in r.err
    r = vc(
        "get",
        "--path",
        "a/b",
        "--db-dsn",
        f"sqlite:///{other}",
        "--master-key",
        "k-before-9274615083",
        key=None,
    )
    assert r.out == "Path: a/b\nValue: v\n"
    key_file = tmp_path / "key.txt"
    key_file.write_text("k-before-9274615083\n")
    r = vc(
        "--master-key-file",
        str(key_file),
        "get",
        "--path",
        "a/b",
        "--quiet",
        "--db-dsn",
        f"sqlite:///{other}",
        key=None,
    )
    assert r.code == 0 and r.out == "v\n" and r.err == ""
    # The default database is vault.db in the working directory.
    env_less = Vaultctl("", tmp_path, extra_env={"DATABASE_URL": ""})
    assert env_less("create", "--path", "d/e", "--value", "x").code == 0
    assert (tmp_path / "vault.db").is_file()


def test_json_output_has_stable_keys(vc: Vaultctl) -> None:
    created = json.loads(
        vc.ok(
            "create", "--path", "a/b", "--value", "v1", "--expires-in", "1h30m", "--format", "json"
        )
    )
    assert created["path"] == "a/b" and created["version"] == 1
    assert re.fullmatch(ISO, created["expires_at"])
    assert json.loads(vc.ok("get", "--path", "a/b", "--format", "json")) == {
        "path": "a/b",
        "value": "v1",
        "version": 1,  # issue 11 item 4: the version read, no longer null
    }
    listed = json.loads(vc.ok("list", "--format", "json"))
    assert listed["count"] == 1
    assert set(listed["secrets"][0]) == {
        "id",
        "path",
        "description",
        "created_by",
        "created_at",
        "updated_at",
        "version",
        "expires_at",
    }
    versions = json.loads(vc.ok("versions", "--path", "a/b", "--format", "json"))
    assert versions["count"] == 1 and versions["versions"][0]["updated_by"] == 1
    entries = json.loads(vc.ok("audit", "--format", "json"))["entries"]
    assert {e["action"] for e in entries} >= {"init", "unlock", "create", "read", "list"}
    assert all(re.fullmatch(ISO, e["timestamp"]) for e in entries)
    status = json.loads(vc.ok("status", "--format", "json"))
    assert status["locked"] is True and status["initialized"] is True
    assert json.loads(vc.ok("cleanup", "--format", "json"))["count"] == 0


def test_values_from_stdin_and_file(vc: Vaultctl, tmp_path: Path) -> None:
    vc.ok("create", "--path", "a/stdin", "--value", "-", input="from stdin\n")
    assert vc.ok("get", "--path", "a/stdin", "-q") == "from stdin\n"
    pem = tmp_path / "cert.pem"
    pem.write_text("-----BEGIN-----\nline 'two' $HOME\n-----END-----\n")
    vc.ok("create", "--path", "a/file", "--value-file", str(pem))
    value = json.loads(vc.ok("get", "--path", "a/file", "--format", "json"))["value"]
    assert value == pem.read_text()
    vc.ok("update", "--path", "a/file", "--value", "-", input="v2")
    assert vc.ok("get", "--path", "a/file", "-q") == "v2\n"


def test_rollback_and_get_version(vc: Vaultctl) -> None:
    vc.ok("create", "--path", "a/b", "--value", "one")
    vc.ok("update", "--path", "a/b", "--value", "two")
    assert vc.ok("get", "--path", "a/b", "--version", "1", "-q") == "one\n"
    assert "version 1 restored as version 3" in vc.ok("rollback", "--path", "a/b", "--version", "1")
    assert vc.ok("get", "--path", "a/b", "-q") == "one\n"
    one_error_line(vc("get", "--path", "a/b", "--version", "9"), 1, "version not found")


def test_audit_verify_and_export(vc: Vaultctl, tmp_path: Path) -> None:
    vc.ok("create", "--path", "a/b", "--value", "one")
    vc.ok("get", "--path", "a/b")
    r = vc("audit", "verify")
    assert r.code == 0 and re.fullmatch(r"chain intact: \d+ entries\n", r.out), r
    lines = vc.ok("audit", "export", "--since", "2000-01-01T00:00:00Z").splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    assert "create" in {e["action"] for e in entries}
    assert vc.ok("audit", "export", "--since", "2999-01-01T00:00:00Z") == ""
    with sqlite3.connect(tmp_path / "vault.db") as db:
        target = db.execute("SELECT id FROM vault_audit_logs WHERE action = 'create'").fetchone()
        db.execute("UPDATE vault_audit_logs SET user_id = 7 WHERE id = ?", target)
    r = vc("audit", "verify")
    assert r.code == 1 and f"chain broken at entry {target[0]}" in r.out


def test_run_sets_environment_and_returns_exit_code(vc: Vaultctl) -> None:
    vc.ok("create", "--path", "app/billing/db-password", "--value", "pw 'q' $x")
    vc.ok("create", "--path", "app/billing/api.key", "--value", "k1")
    vc.ok("create", "--path", "other/token", "--value", "t1")
    script = 'printf "%s|%s|%s|%s" "$DB_PASSWORD" "$API_KEY" "$TOKEN" "${VAULT_MASTER_KEY-unset}"'
    r = vc(
        "run",
        "--prefix",
        "app/billing/",
        "--env",
        "TOKEN=other/token",
        "--",
        "sh",
        "-c",
        script + "; exit 7",
    )
    assert r.code == 7, r
    assert r.out == "pw 'q' $x|k1|t1|unset"
    vc.ok("create", "--path", "app/billing/db_password", "--value", "clash")
    one_error_line(vc("run", "--prefix", "app/billing/", "--", "true"), 2, "DB_PASSWORD")
    one_error_line(
        vc("run", "--prefix", "other/", "--", "no-such-command-xyz"), 127, "command not found"
    )


def test_export_dotenv_round_trips_through_sh(vc: Vaultctl, tmp_path: Path) -> None:
    nasty = "a'b\"c $HOME `id` \\n\nline2 ; echo pwned # é"
    vc.ok("create", "--path", "app/nasty", "--value", nasty)
    vc.ok("create", "--path", "app/plain", "--value", "plain")
    out = tmp_path / "app.env"
    vc.ok("export", "--prefix", "app/", "--format", "dotenv", "--out", str(out))
    assert out.stat().st_mode & 0o777 == 0o600
    import subprocess

    shell = subprocess.run(
        ["sh", "-c", f'set -a; . "{out}"; printf %s "$NASTY"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout == nasty and shell.stderr == ""
    assert json.loads(vc.ok("export", "--prefix", "app/", "--format", "json")) == {
        "NASTY": nasty,
        "PLAIN": "plain",
    }
    import yaml

    assert yaml.safe_load(vc.ok("export", "--prefix", "app/", "--format", "yaml")) == {
        "NASTY": nasty,
        "PLAIN": "plain",
    }


def test_rotate_single_path_refuses_new_master_key(vc: Vaultctl) -> None:
    vc.ok("create", "--path", "a/b", "--value", "v")
    r = vc("rotate", "--path", "a/b", "--new-master-key", "another-key-0123456789")
    one_error_line(r, 2, "vault-wide", "--all")
    one_error_line(vc("rotate", "--all"), 2, "new master key")
    assert vc.ok("get", "--path", "a/b", "-q") == "v\n"


def test_rotate_path_and_all(vc: Vaultctl, tmp_path: Path) -> None:
    vc.ok("create", "--path", "a/b", "--value", "v")
    vc.ok("update", "--path", "a/b", "--value", "v2")
    assert "a/b" in vc.ok("rotate", "--path", "a/b", "--user-id", "1")
    new_key = tmp_path / "new.key"
    new_key.write_text("brand-new-master-key-0123\n")
    r = vc("rotate", "--all", "--new-master-key-file", str(new_key), "--user-id", "1")
    assert r.code == 0 and "Master key rotated successfully" in r.out, r
    one_error_line(vc("get", "--path", "a/b"), 1, "invalid master key")
    assert vc("get", "--path", "a/b", "-q", key="brand-new-master-key-0123").out == "v2\n"
    # Resuming a finished rotation (old key still in the environment) is a no-op.
    r = vc("rotate", "--all", "--resume", "--new-master-key-file", str(new_key))
    assert r.code == 0 and "Nothing to resume" in r.out, r
    new_key.write_text("short")
    one_error_line(
        vc(
            "rotate",
            "--all",
            "--new-master-key-file",
            str(new_key),
            key="brand-new-master-key-0123",
        ),
        2,
        "at least 16",
    )
