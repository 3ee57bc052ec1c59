"""Listing a folder as the vault grows: a folder of 1,000 keys among N other secrets.

    python bench/list_scale.py [--others 100000] [--backend sqlite|postgresql] [--runs 30]
                               [--pg-dsn postgresql://postgres@127.0.0.1:5432/test]

In-process, through the library, on a fresh database: 1,000 keys written through
`KVEngine.write` under `bench/folder1000/`, then N other secrets' rows inserted in bulk
(spread over 500 folders: a listing must not read them). Prints the median and p90 of a KV
listing of the folder (`kv.metadata.list`, what `LIST /v1/secret/metadata/...` runs) and of
the documented listing with every secret's metadata (`list_secrets`), each audited as a
request would be. A listing that reads only its folder costs the same for any N; one that
reads the whole mount grows with it (on PostgreSQL before migration 0007: 22.5 ms for
N = 100,000, docs/performance.md, "Listing a folder as the vault grows").
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from benchutil import DEFAULT_PG, backend

from strongroom import VaultConfig, open_vault

FOLDER = "bench/folder1000"
#: Rows inserted per transaction while filling.
CHUNK = 10_000


def timed(runs: int, fn: Callable[[], object]) -> tuple[float, float]:
    """Median and p90 wall time of `fn` in ms, after a few warm-up calls."""
    for _ in range(3):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.9 * len(samples)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--others", type=int, default=100_000, help="secrets outside the folder")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-dsn", default=DEFAULT_PG)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if args.others < 0 or args.runs < 1:
        parser.error("--others must be >= 0 and --runs >= 1")
    with backend(args.backend, args.pg_dsn) as dsn:
        vault = open_vault(dsn, VaultConfig())
        try:
            vault.unlock("bench-master-key-0123456789")
            for i in range(1000):
                vault.kv.write(f"{FOLDER}/k{i:06d}", {"v": "x"})
            now = datetime.now(UTC)
            for start in range(0, args.others, CHUNK):
                with vault.state.storage.write() as tx:
                    for i in range(start, min(args.others, start + CHUNK)):
                        tx.secrets.insert_secret(f"other{i % 500:03d}/k{i:07d}", None, 1, now, None)
            if args.backend == "postgresql":
                with vault.state.storage.write() as tx:
                    tx.conn.exec_driver_sql("ANALYZE vault_secrets")
            keys = vault.kv.metadata.list(FOLDER)
            infos = vault.list_secrets(f"{FOLDER}/")
            if len(keys) != 1000 or len(infos) != 1000:
                raise SystemExit(f"expected 1,000 keys, listed {len(keys)} and {len(infos)}")
            listings: list[tuple[str, Callable[[], object]]] = [
                ("kv list (LIST /v1/.../metadata/)", lambda: vault.kv.metadata.list(FOLDER)),
                ("list_secrets (with metadata)", lambda: vault.list_secrets(f"{FOLDER}/")),
            ]
            rows = [(name, timed(args.runs, fn)) for name, fn in listings]
        finally:
            vault.close()
    print(f"{args.backend}, a folder of 1,000 keys among {args.others:,} other secrets")
    print(f"{'listing':<34} {'p50 ms':>8} {'p90 ms':>8}")
    for name, (p50, p90) in rows:
        print(f"{name:<34} {p50:8.2f} {p90:8.2f}")


if __name__ == "__main__":
    main()
