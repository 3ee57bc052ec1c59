"""HTTP throughput of `vaultctl server`: GET and PUT of /api/vault/secrets/... with wrk.

The server runs pinned to one core, wrk to another (taskset), so the figure is "requests per
second on one core". Usage:

    python bench/http_ops.py [--dsn sqlite:///... | postgresql://...] [--seconds 10]
                             [--server-cpu 0] [--load-cpu 1] [--workers 1] [--recorded]
                             [--audit-device file:/tmp/audit.jsonl ...]

Needs `wrk` (Debian package `wrk`). Prints one line per scenario: requests/s, p50, p99, and the
server's CPU time per request (utime+stime of its process tree from /proc, the figure that holds
on a noisy machine where requests/s does not).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from vs_openbao import CLK_TCK, cpu_ticks, tree

from strongroom.core.tokens import JWTAuth

JWT_SECRET = "bench-jwt-secret-0123456789-0123456789"
MASTER_KEY = "bench-master-key"
PUT_LUA = """
wrk.method = "PUT"
wrk.body = '{"value":"a-new-secret-value"}'
wrk.headers["Content-Type"] = "application/json"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    dsn: str,
    port: int,
    cpu: str,
    workers: int,
    extra_env: dict[str, str] | None = None,
    launcher: tuple[str, ...] = ("-m", "strongroom.cli.server"),
    devices: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **(extra_env or {}),
        "VAULT_JWT_SECRET": JWT_SECRET,
        "VAULT_MASTER_KEY": MASTER_KEY,
        "STRONGROOM_ARGON2_TIME_COST": "1",
        "STRONGROOM_ARGON2_MEMORY_KIB": "1024",
        "STRONGROOM_ARGON2_PARALLELISM": "1",
    }
    cmd = [
        "taskset",
        "-c",
        cpu,
        sys.executable,
        *launcher,
        "--listen",
        f"127.0.0.1:{port}",
        "--db-dsn",
        dsn,
        "--workers",
        str(workers),
        "--no-auto-lock",
        *(f"--audit-device={d}" for d in devices),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if not httpx.get(f"http://127.0.0.1:{port}/api/vault/health").json()["locked"]:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def wrk(
    url: str, token: str, conns: int, seconds: int, cpu: str, script: str | None, server: int
) -> str:
    cmd = [
        "taskset",
        "-c",
        cpu,
        "wrk",
        "-t1",
        f"-c{conns}",
        f"-d{seconds}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
    ]
    if script:
        cmd += ["-s", script]
    before = sum(cpu_ticks(tree(server)).values())
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    ticks = sum(cpu_ticks(tree(server)).values()) - before
    done = re.search(r"(\d+) requests in", out)
    count = int(done.group(1)) if done else 0
    cpu_us = ticks / CLK_TCK * 1e6 / count if count else float("nan")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rate = float(rps.group(1)) if rps else 0.0
    return (
        f"{rate:>9.0f} req/s  p50 {p50.group(1) if p50 else '?':>8}"
        f"  p99 {p99.group(1) if p99 else '?':>8}  CPU {cpu_us:>6.0f} us/req"
        + (f"  NON-2xx {errors.group(1)}" if errors else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=None)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--recorded", action="store_true", help="use a recorded token instead of a JWT"
    )
    parser.add_argument("--audit-device", action="append", default=[], help="repeatable")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    folder = tempfile.mkdtemp(prefix="strongroom-bench-")
    dsn = args.dsn or f"sqlite:///{folder}/bench.db"
    port = free_port()
    server = start_server(
        dsn, port, args.server_cpu, args.workers, devices=tuple(args.audit_device)
    )
    try:
        token = JWTAuth(JWT_SECRET).issue(1, "Admin")[0]
        if args.recorded:
            from strongroom import open_vault

            vault = open_vault(dsn)
            token = vault.tokens.create(1, "Admin", ttl=timedelta(hours=1)).token
            vault.close()
        base = f"http://127.0.0.1:{port}/api/vault/secrets"
        headers = {"Authorization": f"Bearer {token}"}
        httpx.post(base, headers=headers, json={"path": "bench/db/password", "value": "v"})
        script = Path(folder) / "put.lua"
        script.write_text(PUT_LUA)
        url = f"{base}/bench/db/password"
        print(
            f"backend {dsn.split(':', 1)[0]}, server on cpu {args.server_cpu} "
            f"({args.workers} worker), wrk on cpu {args.load_cpu}, {args.seconds}s each, "
            f"{'recorded token' if args.recorded else 'JWT'}"
            + (f", audit devices {args.audit_device}" if args.audit_device else "")
        )
        for name, lua in (("GET", None), ("PUT", str(script))):
            for conns in (1, 16):
                line = wrk(url, token, conns, args.seconds, args.load_cpu, lua, server.pid)
                print(f"{name} c={conns:<3} {line}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
