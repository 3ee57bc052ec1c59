"""Soak test: `vaultctl server` under steady mixed load for N minutes, RSS printed every 30 s.

The load (wrk, one Lua script) mixes what a busy server sees: reads of a secret (most), reads of
a missing secret (404), writes (new versions), and requests with a bad token (401). Usage:

    python bench/soak.py [--dsn sqlite:///... | postgresql://...] [--minutes 10]
                         [--conns 64] [--workers 1] [--interval 30] [--probe [--trace]]

Prints one line per interval: elapsed time and the server's resident set size (all its
processes), then wrk's totals (requests/s, p50, p99, errors). RSS should be flat after warm-up.

`--probe` (one worker) runs the server through `bench/memprobe.py` and adds, per interval, the
memory SQLite's allocator holds, malloc's in-use and free bytes, and with `--trace` the bytes
Python code holds (tracemalloc; it slows the server down) and the top growing allocation sites.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from http_ops import JWT_SECRET, free_port, start_server

from strongroom.core.tokens import JWTAuth

MIX_LUA = """
local n = 0
request = function()
  n = n + 1
  local k = n % 20
  if k == 0 then
    wrk.headers["Content-Type"] = "application/json"
    return wrk.format("PUT", "/api/vault/secrets/soak/db/password", nil,
                      '{"value":"soak-value-' .. n .. '"}')
  elseif k == 1 then
    return wrk.format("GET", "/api/vault/secrets/soak/missing/" .. (n % 1000))
  elseif k == 2 then
    return wrk.format("GET", "/api/vault/secrets/soak/db/password",
                      {["Authorization"] = "Bearer not-a-token"})
  end
  return wrk.format("GET", "/api/vault/secrets/soak/db/password")
end
"""


def rss_kib(pid: int) -> int:
    """Resident set size of `pid` and its children (the workers), in KiB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=None)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--conns", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("--probe", action="store_true", help="memory breakdown (bench/memprobe)")
    parser.add_argument("--trace", action="store_true", help="with --probe: tracemalloc too")
    args = parser.parse_args()
    if args.probe and args.workers != 1:
        raise SystemExit("--probe needs --workers 1")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    folder = tempfile.mkdtemp(prefix="strongroom-soak-")
    dsn = args.dsn or f"sqlite:///{folder}/soak.db"
    port = free_port()
    probe = Path(folder) / "probe.jsonl"
    extra_env: dict[str, str] = {}
    launcher: tuple[str, ...] = ("-m", "strongroom.cli.server")
    if args.probe:
        extra_env = {
            "SOAK_PROBE_OUT": str(probe),
            "SOAK_PROBE_INTERVAL": str(args.interval),
            "SOAK_PROBE_TRACE": "1" if args.trace else "0",
        }
        launcher = (str(Path(__file__).with_name("memprobe.py")),)
    server = start_server(dsn, port, args.server_cpu, args.workers, extra_env, launcher)
    seconds = int(args.minutes * 60)
    try:
        token = JWTAuth(JWT_SECRET).issue(1, "Admin")[0]
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        httpx.post(
            f"{base}/api/vault/secrets",
            headers=headers,
            json={"path": "soak/db/password", "value": "v"},
        )
        script = Path(folder) / "mix.lua"
        script.write_text(MIX_LUA)
        cmd = ["taskset", "-c", args.load_cpu, "wrk", "-t1", f"-c{args.conns}"]
        cmd += [f"-d{seconds}s", "--latency", "-s", str(script)]
        cmd += ["-H", f"Authorization: Bearer {token}", base]
        print(f"backend {dsn.split(':', 1)[0]}, {args.workers} worker(s), c={args.conns}")
        print(f"{0:>6.0f}s  RSS {rss_kib(server.pid) / 1024:7.1f} MiB (before load)", flush=True)
        load = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        started = time.monotonic()
        while load.poll() is None:
            time.sleep(min(args.interval, max(0.1, seconds + 1 - (time.monotonic() - started))))
            elapsed = time.monotonic() - started
            print(f"{elapsed:>6.0f}s  RSS {rss_kib(server.pid) / 1024:7.1f} MiB", flush=True)
        out = load.communicate()[0]
        print(summary(out))
        if args.probe:
            print_probe(probe)
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def print_probe(probe: Path) -> None:
    """The memory probe's samples, one line each (MiB), and the growth sites of the last."""
    mib = 1024 * 1024
    samples = [json.loads(line) for line in probe.read_text().splitlines()]
    print("probe (seconds since server start; MiB): RSS, SQLite, malloc used/free, Python")
    for s in samples:
        python = s.get("python_traced")
        print(
            f"{s['t']:>6.0f}s  RSS {s['rss_kib'] / 1024:6.1f}"
            f"  sqlite {s['sqlite_bytes'] / mib:5.1f}"
            f"  malloc {s['malloc_in_use'] / mib:6.1f} / {s['malloc_free'] / mib:5.1f}"
            + (f"  python {python / mib:6.1f}" if python is not None else "")
        )
    for line in samples[-1].get("python_growth", []) if samples else []:
        print(f"  grown since warm-up: {line}")


def summary(out: str) -> str:
    """wrk's totals in one line."""
    found = {
        name: re.search(pattern, out)
        for name, pattern in {
            "rps": r"Requests/sec:\s+([\d.]+)",
            "p50": r"50%\s+([\d.]+\w+)",
            "p99": r"99%\s+([\d.]+\w+)",
            "non2xx": r"Non-2xx or 3xx responses: (\d+)",
            "socket": r"Socket errors: ([^\n]+)",
        }.items()
    }
    parts = [f"{m.group(1)} {k}" for k, m in found.items() if m]
    return "wrk: " + ", ".join(parts)


if __name__ == "__main__":
    main()
