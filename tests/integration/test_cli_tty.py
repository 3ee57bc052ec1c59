"""`vaultctl` on a terminal (a pseudo-terminal): hidden master-key prompt, progress bar."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.cli_support import MASTER_KEY, Vaultctl, base_env

PROMPTS = ("Master key: ", "Repeat for confirmation: ")


def run_on_tty(
    args: list[str], env: dict[str, str], cwd: Path, answers: list[str], timeout: float = 60.0
) -> tuple[int, str]:
    """Run vaultctl with stdin/stdout/stderr on a pty, answering each prompt in turn."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "strongroom", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    os.close(slave)
    output, sent = b"", 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            text = output.decode(errors="replace")
            if sent < len(answers) and sum(text.count(p) for p in PROMPTS) > sent:
                os.write(master, answers[sent].encode() + b"\r")
                sent += 1
            if not ready and proc.poll() is not None:
                break
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, output.decode(errors="replace")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a POSIX pseudo-terminal")
def test_prompt_is_hidden_and_progress_shows_on_a_tty(tmp_path: Path) -> None:
    env = base_env()
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'vault.db'}"
    # A new vault asks twice (a typo would lock the data away forever).
    code, out = run_on_tty(["unlock"], env, tmp_path, [MASTER_KEY, MASTER_KEY])
    assert code == 0, out
    assert "Master key: " in out and "Repeat for confirmation: " in out
    assert "Vault unlocked successfully" in out
    assert MASTER_KEY not in out  # not echoed
    code, out = run_on_tty(["create", "--path", "a/b", "--value", "v"], env, tmp_path, [MASTER_KEY])
    assert code == 0 and "Repeat" not in out, out
    code, out = run_on_tty(
        ["backup", "--out", str(tmp_path / "b.backup")], env, tmp_path, [MASTER_KEY]
    )
    assert code == 0 and "Backing up" in out, out
    # Piped, the same command prints nothing extra on stderr.
    piped = Vaultctl(env["DATABASE_URL"], tmp_path)("backup", "--out", str(tmp_path / "c"))
    assert piped.code == 0 and piped.err == ""
