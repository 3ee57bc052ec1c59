"""`vaultctl audit export` shows progress on a terminal, and nothing extra when piped."""

from __future__ import annotations

from pathlib import Path

from tests.integration.cli_support import MASTER_KEY, Vaultctl, base_env
from tests.integration.test_cli_tty import run_on_tty


def test_export_progress_on_a_tty_only(tmp_path: Path) -> None:
    vc = Vaultctl(f"sqlite:///{tmp_path / 'v.db'}", tmp_path)
    vc.ok("create", "--path", "a/b", "--value", "v")
    env = {**base_env(), "DATABASE_URL": vc.dsn, "VAULT_MASTER_KEY": MASTER_KEY}
    out_file = tmp_path / "audit.jsonl"
    code, out = run_on_tty(["audit", "export", "-o", str(out_file)], env, tmp_path, [])
    assert code == 0, out
    assert "exporting audit entries" in out and "anchor written to" in out, out
    piped = vc("audit", "export")
    assert piped.code == 0 and "exporting" not in piped.err
    assert piped.err.startswith("exported ") and piped.out.count("\n") >= 3
