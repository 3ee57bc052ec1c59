"""`vaultctl server` start-up: --dev, missing or short JWT secret, wrong master key, the default
number of workers (one per CPU the process may run on)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from strongroom.config import default_workers
from tests.integration.server_proc import CHEAP_ARGON2, MASTER_KEY, ServerProcess, free_port


def run_server(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **CHEAP_ARGON2, **env}
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli.server", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_missing_or_short_jwt_secret_is_a_usage_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VAULT_JWT_SECRET"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "strongroom.cli.server",
            "--db-dsn",
            f"sqlite:///{tmp_path / 'v.db'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "VAULT_JWT_SECRET" in done.stderr
    done = run_server(["--db-dsn", f"sqlite:///{tmp_path / 'v.db'}"], {"VAULT_JWT_SECRET": "short"})
    assert done.returncode == 2 and "at least 32 bytes" in done.stderr
    assert "Traceback" not in done.stderr


def test_wrong_master_key_at_start_is_one_line(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path).start()
    assert first.stop() == 0
    for workers in ("1", "2"):
        done = run_server(
            ["--listen", f"127.0.0.1:{free_port()}", "--db-dsn", first.dsn, "--workers", workers],
            {"VAULT_JWT_SECRET": "j" * 40, "VAULT_MASTER_KEY": "not-the-key"},
        )
        assert done.returncode == 1, done.stderr
        assert "Error: invalid master key" in done.stderr and "Traceback" not in done.stderr
        assert MASTER_KEY not in done.stdout + done.stderr


#: `python -m strongroom.cli.server` on the CPUs given as the first argument (as `taskset` would).
PINNED = """
import os, runpy, sys
os.sched_setaffinity(0, {int(cpu) for cpu in sys.argv.pop(1).split(",")})
runpy.run_module("strongroom.cli.server", run_name="__main__")
"""


def test_help_shows_the_default_worker_count() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "strongroom", "server", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text = " ".join(done.stdout.split())  # however the help is wrapped
    assert f"[default: number of CPUs, here {default_workers()}; 1<=x<=64]" in text


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity call")
@pytest.mark.parametrize("count", [1, 2])
def test_default_workers_follow_the_cpus_the_server_may_run_on(tmp_path: Path, count: int) -> None:
    cpus = sorted(os.sched_getaffinity(0))[:count]
    first = ServerProcess(tmp_path).start()
    assert first.stop() == 0
    # A wrong key fails the start just after the banner, which names the number of workers.
    args = ["--db-dsn", first.dsn, "--listen", f"127.0.0.1:{free_port()}"]
    done = subprocess.run(
        [sys.executable, "-c", PINNED, ",".join(map(str, cpus)), *args],
        env={
            **os.environ,
            **CHEAP_ARGON2,
            "VAULT_JWT_SECRET": "j" * 40,
            "VAULT_MASTER_KEY": "not-the-key",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1 and "Error: invalid master key" in done.stderr, done.stderr
    workers = "1 worker" if len(cpus) == 1 else f"{len(cpus)} workers"
    assert f"({workers}, vault unlocked at start)" in done.stdout, done.stdout


def test_dev_mode_prints_a_master_key_and_an_admin_token(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **CHEAP_ARGON2}
    env.pop("VAULT_JWT_SECRET", None)
    env.pop("DATABASE_URL", None)
    log = tmp_path / "dev.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "strongroom.cli.server",
                "--dev",
                "--listen",
                f"127.0.0.1:{port}",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
        )
    try:
        token = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r"Admin token \(SuperAdmin, 24h\): (\S+)", log.read_text())
            if found:
                token = found.group(1)
                try:
                    r = httpx.get(
                        f"http://127.0.0.1:{port}/api/vault/status",
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        assert token is not None, log.read_text()
        assert r.json()["locked"] is False
        assert re.search(r"Master key: \S{20,}", log.read_text())
        count = default_workers()  # no --workers: one per CPU
        assert f"({count} worker{'s' if count > 1 else ''}, vault" in log.read_text()
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0
    assert not (tmp_path / "vault.db").exists()


def test_server_process_cannot_dump_core(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    try:
        assert server.proc is not None
        limits = Path(f"/proc/{server.proc.pid}/limits").read_text()
        core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
        assert core.split()[4:6] == ["0", "0"], core
    finally:
        server.stop()
