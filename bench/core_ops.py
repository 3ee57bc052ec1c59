"""In-process latency of the core operations on SQLite and PostgreSQL (issue #2).

    .venv/bin/python bench/core_ops.py [--n 1000] [--pg postgresql://postgres@127.0.0.1/test]

Prints p50/p99 of create, get and update over N operations each, and the time to list 1,000
secrets, per backend. The design document claims create 15 ms, get 8 ms, update 18 ms, list 5 ms.
PostgreSQL runs in a throw-away schema. Argon2 runs with the production defaults (only at unlock).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from strongroom import VaultConfig, open_vault


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _timed(n: int, op: Callable[[int], object]) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        op(i)
        out.append(time.perf_counter() - start)
    return out


def run(dsn: str, n: int) -> dict[str, tuple[float, float]]:
    vault = open_vault(dsn, VaultConfig())
    vault.unlock("bench-master-key-0123456789")
    try:
        results = {
            "create": _timed(n, lambda i: vault.create_secret(f"bench/s{i:05d}", f"value-{i}")),
            "get": _timed(n, lambda i: vault.get_secret(f"bench/s{i:05d}")),
            "update": _timed(n, lambda i: vault.update_secret(f"bench/s{i:05d}", f"v2-{i}")),
        }
        listing = _timed(20, lambda i: vault.list_secrets("bench/"))
        assert len(vault.list_secrets("bench/")) == n
        table = {k: (_pct(v, 0.5), _pct(v, 0.99)) for k, v in results.items()}
        table[f"list {n}"] = (_pct(listing, 0.5), _pct(listing, 0.99))
        return table
    finally:
        vault.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    rows: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for op, (p50, p99) in run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.n).items():
            rows.append(("sqlite", op, p50, p99))
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in args.pg else "?"
        pg_dsn = f"{args.pg}{sep}options=-csearch_path%3D{schema}"
        for op, (p50, p99) in run(pg_dsn, args.n).items():
            rows.append(("postgresql", op, p50, p99))
    finally:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    claimed = {"create": 15.0, "get": 8.0, "update": 18.0}
    print(f"{'backend':<11} {'operation':<10} {'p50 ms':>8} {'p99 ms':>8} {'document':>9}")
    for backend, op, p50, p99 in rows:
        doc = claimed.get(op, 5.0)
        print(f"{backend:<11} {op:<10} {p50:8.3f} {p99:8.3f} {doc:8.1f}ms")


if __name__ == "__main__":
    main()
