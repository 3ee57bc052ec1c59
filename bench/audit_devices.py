"""Cost of an audit device per audited read, in process (issue #14).

    .venv/bin/python bench/audit_devices.py [--n 5000] [--threads 16] [--rounds 3]

Runs `get_secret` N times from T threads on a SQLite vault, with no device and with a
`file:` device, alternating ROUNDS times, and prints reads per second of CPU time (the
process's own CPU, which holds on a shared machine where wall-clock rates do not) and of wall
time. The target: at most 10% fewer reads per second with the file device.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from strongroom import VaultConfig, open_vault

KEY = "bench-master-key-0123456789"


def measure(folder: Path, devices: tuple[str, ...], n: int, threads: int) -> tuple[float, float]:
    """(reads per CPU second, reads per wall second) for N reads from `threads` threads."""
    config = VaultConfig(
        auto_lock=False,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
        audit_devices=devices,
    )
    vault = open_vault(f"sqlite:///{folder / 'bench.db'}", config)
    vault.unlock(KEY)
    if not vault.list_secrets(prefix="bench/"):
        vault.create_secret("bench/db/password", "v")
    per_thread = n // threads

    def reads(_: int) -> None:
        for _ in range(per_thread):
            vault.get_secret("bench/db/password")

    cpu, wall = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(reads, range(threads)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    vault.close()
    done = per_thread * threads
    return done / cpu, done / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="strongroom-bench-"))
    device = (f"file:{folder / 'audit.jsonl'}",)
    results: dict[str, list[tuple[float, float]]] = {"none": [], "file": []}
    for _ in range(args.rounds):
        results["none"].append(measure(folder, (), args.n, args.threads))
        results["file"].append(measure(folder, device, args.n, args.threads))
    for name, rows in results.items():
        cpu = statistics.median(r[0] for r in rows)
        wall = statistics.median(r[1] for r in rows)
        print(f"{name:>5}: {cpu:8.0f} reads/CPU-s  {wall:8.0f} reads/s (median of {len(rows)})")
    base = statistics.median(r[0] for r in results["none"])
    with_file = statistics.median(r[0] for r in results["file"])
    print(f"file device: {100 * (1 - with_file / base):+.1f}% fewer reads per CPU second")


if __name__ == "__main__":
    main()
