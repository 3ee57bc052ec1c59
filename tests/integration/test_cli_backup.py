"""`vaultctl backup` / `restore` on SQLite: verified restore, refusals that write nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.integration.cli_support import Vaultctl, one_error_line


def test_backup_restore_round_trip_and_refusals(tmp_path: Path) -> None:
    src = Vaultctl(f"sqlite:///{tmp_path / 'src.db'}", tmp_path)
    src.ok("create", "--path", "a/one", "--value", "1")
    src.ok("update", "--path", "a/one", "--value", "2")
    src.ok("create", "--path", "a/two", "--value", "é\n'quoted'")
    backup = tmp_path / "vault.backup"
    summary = json.loads(src.ok("backup", "--out", str(backup), "--format", "json"))
    assert summary["counts"]["vault_secrets"] == 2
    assert summary["counts"]["vault_secret_versions"] == 3

    # A truncated file and an altered file are refused; the target stays empty.
    lines = backup.read_text().splitlines(keepends=True)
    truncated = tmp_path / "truncated.backup"
    truncated.write_text("".join(lines[:-3]))
    dst = Vaultctl(f"sqlite:///{tmp_path / 'dst.db'}", tmp_path)
    one_error_line(dst("restore", "--in", str(truncated)), 1, "truncated or corrupt")
    altered = tmp_path / "altered.backup"
    altered.write_text("".join(lines).replace('"user_id":1', '"user_id":5', 1))
    one_error_line(dst("restore", "--in", str(altered)), 1, "audit chain is broken at entry 1")
    # A change no key covers (a timestamp of the key row) is caught by the file digest.
    keys_line = next(i for i, line in enumerate(lines) if '"t":"vault_keys"' in line)
    lines[keys_line] = lines[keys_line].replace('"created_at":"2', '"created_at":"1', 1)
    altered.write_text("".join(lines))
    one_error_line(dst("restore", "--in", str(altered)), 1, "truncated or corrupt")
    one_error_line(dst("restore", "--in", str(tmp_path / "missing")), 2, "no such file")
    assert not (tmp_path / "dst.db").exists()  # verified before the target is even opened
    # A non-empty target is refused and left as it was.
    other = Vaultctl(f"sqlite:///{tmp_path / 'other.db'}", tmp_path)
    other.ok("create", "--path", "keep/me", "--value", "kept")
    one_error_line(other("restore", "--in", str(backup)), 1, "empty database")
    with sqlite3.connect(tmp_path / "other.db") as db:
        assert db.execute("SELECT path FROM vault_secrets").fetchall() == [("keep/me",)]

    assert "restored and verified" in dst.ok("restore", "--in", str(backup))
    assert dst.ok("get", "--path", "a/one", "--version", "1", "-q") == "1\n"
    assert dst.ok("get", "--path", "a/two", "-q") == "é\n'quoted'\n"
    actions = [e["action"] for e in json.loads(dst.ok("audit", "--format", "json"))["entries"]]
    assert "restore" in actions and "backup" not in actions[:1]
    one_error_line(src("backup", "--out", str(tmp_path / "no-dir" / "x")), 2, "cannot write")
