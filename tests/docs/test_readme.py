"""README.md's examples work, copy-pasted in order, against the server `make run` starts.

The test builds a throw-away "clone" (the real `scripts/run-local.sh`, `.venv` linked to this
one), starts the server with that script as `make run` does (on a free port instead of 8080, with
cheap Argon2 parameters), then runs every fenced `bash` and `python` block of the README in one
shell, in order, as a reader would paste them. A block preceded by `<!-- readme-test: skip -->`
(the `make` block itself) is not run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.cli_support import base_env
from tests.integration.server_proc import CHEAP_ARGON2, free_port

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"(<!-- readme-test: skip[^\n]*-->\n)?```(bash|python)\n(.*?)```", re.S)
DEFAULT_LISTEN = "127.0.0.1:8080"


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced bash/python block that is not marked skip, in order."""
    return [(lang, code) for skip, lang, code in FENCE.findall(text) if not skip]


def as_script(blocks: list[tuple[str, str]], listen: str) -> str:
    """One bash script: bash blocks verbatim, python blocks fed to the venv's `python`."""
    parts = ["set -euo pipefail"]
    for lang, code in blocks:
        code = code.replace(DEFAULT_LISTEN, listen)
        if lang == "bash":
            parts.append(code)
        else:
            parts.append(f"python - <<'README_PYTHON'\n{code}README_PYTHON")
    return "\n".join(parts) + "\n"


@pytest.fixture
def clone(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder laid out like a clone after `make install`, with `make run`'s server running."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "run-local.sh", tmp_path / "scripts" / "run-local.sh")
    venv = Path(sys.prefix)
    (tmp_path / ".venv").symlink_to(venv, target_is_directory=True)
    listen = f"127.0.0.1:{free_port()}"
    env = {**base_env(), **CHEAP_ARGON2, "LISTEN": listen}
    env.pop("STRONGROOM_AUTO_LOCK", None)
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "scripts/run-local.sh"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                if (
                    httpx.get(f"http://{listen}/api/vault/health", timeout=2).json()["locked"]
                    is False
                ):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.05)
        else:
            pytest.fail(f"make run's server did not start: {log.read_text()}")
        assert (tmp_path / ".strongroom" / "master.key").is_file()
        yield tmp_path, listen
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_readme_names_where_make_run_keeps_the_master_key() -> None:
    text = (ROOT / "README.md").read_text()
    assert ".strongroom/master.key" in text
    assert "/run/secrets" not in text


def test_readme_examples_run_in_order_after_make_run(clone: tuple[Path, str]) -> None:
    folder, listen = clone
    blocks = readme_blocks((ROOT / "README.md").read_text())
    assert [lang for lang, _ in blocks].count("python") >= 1 and len(blocks) >= 4
    script = folder / "readme.sh"
    script.write_text(as_script(blocks, listen))
    env = {**base_env(), "HOME": str(folder)}
    for name in ("STRONGROOM_ARGON2_TIME_COST", "STRONGROOM_ARGON2_MEMORY_KIB"):
        env.pop(name, None)  # as a reader's shell: the vault's own parameters apply
    done = subprocess.run(
        ["bash", str(script)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, (out, done.stderr)
    assert "Traceback" not in done.stderr and '"error"' not in out, (out, done.stderr)
    assert '"message":"Secret created successfully"' in out  # the curl write
    assert '"value":"s3cret"' in out  # the curl read
    assert "s3cret\napp/python/api-key 2 " in out  # the Python example
    assert "Path: app/cli/db-password\nValue: cli-s3cret\n" in out  # vaultctl get
    assert "\ncli-s3cret\n" in out  # vaultctl run ... printenv
    assert "Backup written successfully: vault.backup" in out
    assert re.search(r"chain intact: \d+ entries", out)
    assert re.search(r"password\s+s3cret", out)  # bao kv get
    assert (folder / "vault.backup").is_file()
