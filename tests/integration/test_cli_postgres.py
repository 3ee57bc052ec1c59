"""`vaultctl` on PostgreSQL, and backup/restore between SQLite and PostgreSQL (subprocess)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.cli_support import MASTER_KEY, Vaultctl, one_error_line

pytestmark = pytest.mark.postgres


def _seed(vc: Vaultctl) -> None:
    vc.ok(
        "create",
        "--path",
        "database/postgres/password",
        "--value",
        "pw-1",
        "--description",
        "PostgreSQL database password",
        "--user-id",
        "1",
    )
    vc.ok("update", "--path", "database/postgres/password", "--value", "pw-2", "--user-id", "2")
    vc.ok(
        "create",
        "--path",
        "api/stripe/secret-key",
        "--value",
        "sk 'live' $x\nline",
        "--expires-in",
        "90d",
    )


def _everything(vc: Vaultctl) -> tuple[object, ...]:
    listed = json.loads(vc.ok("list", "--format", "json"))["secrets"]
    versions = vc.ok("get", "--path", "database/postgres/password", "--version", "1", "-q")
    export = json.loads(vc.ok("export", "--prefix", "", "--format", "json"))
    return listed, versions, export


def test_key_flows_on_postgres(pg_dsn: str, tmp_path: Path) -> None:
    vc = Vaultctl(pg_dsn, tmp_path)
    assert vc.ok("unlock") == "Vault unlocked successfully\n"
    _seed(vc)
    assert vc.ok("get", "--path", "database/postgres/password") == (
        "Path: database/postgres/password\nValue: pw-2\n"
    )
    assert vc.ok("list", "--prefix", "database/").startswith("Found 1 secret(s):")
    assert re.search(
        r"Version: 2\n  Updated: .*Z\n  Updated By: User ID 2",
        vc.ok("versions", "--path", "database/postgres/password"),
    )
    assert "chain intact" in vc.ok("audit", "verify")
    one_error_line(
        vc("get", "--path", "database/x", key="wrong-key-0123456789"), 1, "invalid master key"
    )


def test_backup_sqlite_to_postgres_and_back(pg_dsn: str, tmp_path: Path) -> None:
    sqlite = Vaultctl(f"sqlite:///{tmp_path / 'a.db'}", tmp_path)
    _seed(sqlite)
    expected = _everything(sqlite)
    first = tmp_path / "one.backup"
    assert "Backup written successfully" in sqlite.ok("backup", "--out", str(first))
    assert first.stat().st_mode & 0o777 == 0o600
    assert first.read_text().count("pw-2") == 0  # values stay encrypted

    pg = Vaultctl(pg_dsn, tmp_path)
    one_error_line(
        pg("restore", "--in", str(first), key="wrong-key-0123456789"), 1, "invalid master key"
    )
    assert "restored and verified" in pg.ok("restore", "--in", str(first))
    assert _everything(pg) == expected
    one_error_line(pg("restore", "--in", str(first)), 1, "empty database")
    pg.ok("create", "--path", "after/restore", "--value", "new")  # sequences continue

    second = tmp_path / "two.backup"
    pg.ok("backup", "--out", str(second))
    back = Vaultctl(f"sqlite:///{tmp_path / 'b.db'}", tmp_path)
    back.ok("restore", "--in", str(second))
    assert back.ok("get", "--path", "after/restore", "-q") == "new\n"
    assert back.ok("get", "--path", "api/stripe/secret-key", "-q") == "sk 'live' $x\nline\n"
    assert "chain intact" in back.ok("audit", "verify")
    assert MASTER_KEY not in second.read_text()
