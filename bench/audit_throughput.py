"""Read throughput with durable audit entries: group commit vs one commit (fsync) per read (#3).

    .venv/bin/python bench/audit_throughput.py [--threads 16] [--reads 300] [--pg URL]

Every `get_secret` writes an audit entry and returns only once it is durable. With group commit
(the vault as shipped) the entries of concurrent readers share one transaction; the baseline
(`OneCommitPerRead`) gives each entry a write transaction of its own, as a naive implementation
would: one fsync per read. Both chain their entries identically and run the same read path.
SQLite runs with WAL and synchronous=FULL; PostgreSQL with fsync and synchronous_commit on.

Where the disk acknowledges a flush in well under a millisecond (a VM's cached disk), Python CPU,
not the flush, bounds both modes; `--fsync-ms 2` adds that much latency to every commit, while
the writer lock is held, to model a disk whose flush takes 2 ms.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from benchutil import DEFAULT_PG, backend

from strongroom import Vault, VaultConfig
from strongroom.core.audit import canonical
from strongroom.core.writer import Entries
from strongroom.storage import Storage, Tx, open_storage

KEY = "bench-master-key-0123456789"
SECRETS = 100
CONFIG = VaultConfig(
    argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1, auto_lock=False
)


class CountingStorage(Storage):
    """Counts write transactions (each is one commit, one fsync)."""

    commits = 0
    flush_delay = 0.0
    _lock = threading.Lock()

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with super().write() as tx:
            yield tx
            if self.flush_delay:
                time.sleep(self.flush_delay)  # the modelled flush, under the writer lock
        with self._lock:
            CountingStorage.commits += 1


class OneCommitPerRead(Vault):
    """Baseline: each audit entry is appended in a write transaction of its own."""

    def _audit(self, entries: Entries) -> None:
        items = entries if isinstance(entries, list) else [entries] if entries else []
        with self._storage.write() as tx:
            head = tx.audit.last_audit_mac()
            for entry in items:
                mac = self._chain_mac(canonical(head or self._genesis(), entry))
                tx.audit.insert_audit(entry, mac)
                head = mac or head


def measure(dsn: str, cls: type[Vault], threads: int, reads: int) -> tuple[float, int]:
    plain = open_storage(dsn)
    storage = CountingStorage(plain.engine, plain.label)
    vault = cls(storage, CONFIG)
    vault.unlock(KEY)
    try:
        if not vault.list_secrets("b/"):
            for i in range(SECRETS):
                vault.create_secret(f"b/{i}", f"value-{i}")
        for i in range(20):  # warm the pool and caches
            vault.get_secret(f"b/{i}")
        CountingStorage.commits = 0

        def reader(t: int) -> None:
            for i in range(reads):
                assert (
                    vault.get_secret(f"b/{(t * 7 + i) % SECRETS}")
                    == f"value-{(t * 7 + i) % SECRETS}"
                )

        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(reader, range(threads)))
        elapsed = time.perf_counter() - start
        assert vault.verify_audit().ok
        return elapsed, CountingStorage.commits
    finally:
        vault.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--reads", type=int, default=300, help="reads per thread")
    parser.add_argument("--pg", default=DEFAULT_PG)
    parser.add_argument(
        "--fsync-ms",
        type=float,
        default=0.0,
        help="extra latency per commit, modelling a slower flush",
    )
    args = parser.parse_args()
    CountingStorage.flush_delay = args.fsync_ms / 1000
    print(f"modelled extra flush latency per commit: {args.fsync_ms} ms")
    print(
        f"{'backend':<11} {'mode':<22} {'threads':>7} {'reads':>6} {'s':>6} {'reads/s':>8} "
        f"{'commits':>7} {'reads/commit':>12}"
    )
    for name in ("sqlite", "postgresql"):
        with backend(name, args.pg) as dsn:
            for label, cls, threads in (
                ("group commit", Vault, 1),
                ("group commit", Vault, args.threads),
                ("one commit per read", OneCommitPerRead, args.threads),
            ):
                total = threads * args.reads
                elapsed, commits = measure(dsn, cls, threads, args.reads)
                print(
                    f"{name:<11} {label:<22} {threads:>7} {total:>6} {elapsed:6.2f} "
                    f"{total / elapsed:8.0f} {commits:>7} {total / max(commits, 1):12.1f}"
                )


if __name__ == "__main__":
    main()
