"""Bad input to `vaultctl`: one clear stderr line, the right exit code, nothing stored changes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.integration.cli_support import Vaultctl, one_error_line


@pytest.fixture
def vc(tmp_path: Path) -> Vaultctl:
    vc = Vaultctl(f"sqlite:///{tmp_path / 'vault.db'}", tmp_path)
    vc.ok("create", "--path", "a/b", "--value", "original")
    return vc


def _state(vc: Vaultctl) -> object:
    """Every stored row except the audit log (failed attempts are audited), and the value."""
    with sqlite3.connect(vc.cwd / "vault.db") as db:
        rows = [
            db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("vault_keys", "vault_key_terms", "vault_secrets", "vault_secret_versions")
        ]
    return rows, vc.ok("get", "--path", "a/b", "-q")


def test_bad_input_changes_nothing(vc: Vaultctl, tmp_path: Path) -> None:
    before = _state(vc)
    # Missing required flags and values: usage errors.
    one_error_line(vc("create", "--value", "x"), 2, "Missing option '--path'", "--help")
    one_error_line(vc("create", "--path", "a/c"), 2, "--value")
    # Wrong master key: operation failed.
    one_error_line(
        vc("update", "--path", "a/b", "--value", "evil", key="wrong-key-0123456789"),
        1,
        "invalid master key",
    )
    # No master key at all, no terminal to ask on.
    one_error_line(vc("get", "--path", "a/b", key=None), 2, "VAULT_MASTER_KEY")
    # Unknown and invalid paths.
    one_error_line(vc("update", "--path", "a/nope", "--value", "x"), 1, "secret not found")
    one_error_line(vc("create", "--path", "../etc/passwd", "--value", "x"), 2, "invalid path")
    # Unreadable files.
    one_error_line(
        vc("update", "--path", "a/b", "--value-file", str(tmp_path / "missing")),
        2,
        "cannot read value file",
    )
    one_error_line(
        vc("get", "--path", "a/b", "--master-key-file", str(tmp_path / "nokey")),
        2,
        "cannot read key file",
    )
    # Malformed duration names the accepted forms.
    one_error_line(
        vc("create", "--path", "a/d", "--value", "x", "--expires-in", "3 weeks"),
        2,
        "--expires-in",
        "30s, 15m, 24h, 7d, 90d",
    )
    # Duplicate create.
    one_error_line(vc("create", "--path", "a/b", "--value", "x"), 1, "already exists")
    assert _state(vc) == before


def test_closed_and_empty_stdin(vc: Vaultctl) -> None:
    import subprocess

    r = vc("update", "--path", "a/b", "--value", "-", stdin=subprocess.DEVNULL)
    one_error_line(r, 2, "value must not be empty")
    # `<&-`: standard input closed altogether.
    import shlex
    import sys

    cmd = " ".join(
        shlex.quote(a)
        for a in [sys.executable, "-m", "strongroom", "update", "--path", "a/b", "--value", "-"]
    )
    proc = subprocess.run(
        ["sh", "-c", f"{cmd} <&-"],
        capture_output=True,
        text=True,
        env=vc.env(vc.key),
        cwd=vc.cwd,
        check=False,
    )
    assert proc.returncode == 2, proc
    assert proc.stderr.strip() == "Error: --value -: standard input is closed"
    assert vc.ok("get", "--path", "a/b", "-q") == "original\n"


def test_debug_shows_traceback(vc: Vaultctl) -> None:
    r = vc("get", "--path", "a/nope", "--debug")
    assert (
        r.code == 1 and "Traceback" in r.err and r.err.rstrip().endswith("Error: secret not found")
    )
    # Database that cannot be opened: one line, exit 1.
    bad = Vaultctl("sqlite:////nonexistent-dir/x/vault.db", vc.cwd)
    one_error_line(bad("status"), 2, "does not exist")
    one_error_line(bad("status", "--db-dsn", "mysql://u@h/db"), 2, "unsupported DSN")
