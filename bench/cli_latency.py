"""Latency of one `vaultctl get`, remote (`--addr`) and local (on the database), issue #16.

    python bench/cli_latency.py [--runs 20] [--dsn sqlite:///... | postgresql://...]

Remote: a `vaultctl server` on a free loopback port (the figure is the CLI's, the server answers
a read in about a millisecond). Local: the same command on the database, which pays one Argon2
unlock with the production parameters; that unlock is measured in-process and subtracted, so the
"overhead" column is what the CLI itself costs. Prints median and p90 wall time and the median
CPU time (user + system) of each invocation. Targets: remote median <= 150 ms; local overhead
<= 100 ms.

The package's bytecode is compiled first, as `pip install` does: in an editable checkout run with
PYTHONDONTWRITEBYTECODE set, every invocation would otherwise compile ~90 modules (~100 ms).
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from benchutil import backend
from http_ops import JWT_SECRET, free_port, start_server

import strongroom
from strongroom.core.tokens import JWTAuth
from strongroom.crypto.kdf import KDFParams, derive_kek, new_salt

VAULTCTL = [sys.executable, "-m", "strongroom"]
LOCAL_KEY = "bench-cli-master-key-0123456789"


def timed(cmd: list[str], env: dict[str, str], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of `runs` invocations of `cmd` (each must succeed)."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
        )
    return walls, cpus


def row(name: str, walls: list[float], cpus: list[float], extra: str = "") -> str:
    p90 = sorted(walls)[int(0.9 * (len(walls) - 1))]
    return (
        f"{name:<22} median {statistics.median(walls) * 1000:7.1f} ms  "
        f"p90 {p90 * 1000:7.1f} ms  cpu {statistics.median(cpus) * 1000:6.1f} ms{extra}"
    )


def remote(runs: int) -> str:
    port = free_port()
    with backend("sqlite", "") as dsn:
        server = start_server(dsn, port, os.environ.get("BENCH_SERVER_CPU", "0"), 1)
        try:
            addr = f"http://127.0.0.1:{port}"
            token, _ = JWTAuth(JWT_SECRET).issue(1, "SuperAdmin")
            created = httpx.post(
                f"{addr}/api/vault/secrets",
                json={"path": "bench/cli", "value": "v"},
                headers={"Authorization": f"Bearer {token}"},
            )
            created.raise_for_status()
            env = {**os.environ, "VAULT_ADDR": addr, "VAULT_TOKEN": token}
            walls, cpus = timed([*VAULTCTL, "get", "--path", "bench/cli"], env, runs)
        finally:
            server.terminate()
            server.wait(30)
    return row("remote get (--addr)", walls, cpus)


def local(runs: int, dsn: str | None) -> str:
    params = KDFParams()
    start = time.perf_counter()
    derive_kek(LOCAL_KEY, new_salt(), params)
    argon2 = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        target = dsn or f"sqlite:///{Path(tmp) / 'cli.db'}"
        env = {**os.environ, "VAULT_MASTER_KEY": LOCAL_KEY, "DATABASE_URL": target}
        subprocess.run(
            [*VAULTCTL, "create", "--path", "bench/cli", "--value", "v"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        walls, cpus = timed([*VAULTCTL, "get", "--path", "bench/cli"], env, runs)
    overhead = statistics.median(walls) - argon2
    return row(
        "local get",
        walls,
        cpus,
        f"  (Argon2 unlock {argon2 * 1000:.0f} ms, overhead {overhead * 1000:.0f} ms)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--dsn", default=None, help="database for the local run")
    args = parser.parse_args()
    compileall.compile_dir(Path(strongroom.__file__).parent, quiet=1)
    print(remote(args.runs))
    print(local(args.runs, args.dsn))


if __name__ == "__main__":
    main()
