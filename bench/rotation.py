"""Master-key rotation of 10,000 secrets x 3 versions on SQLite and PostgreSQL (#3).

    .venv/bin/python bench/rotation.py [--secrets 10000] [--versions 3] [--mounts 1] [--pg URL]

The database is filled in bulk through the vault's own encryption (30,000 API writes would take
longer than the rotation itself), then `rotate_all` runs in a fresh child process with the
production Argon2id parameters (t=3, 64 MiB, p=4: two runs, one to refuse the current key and
one to wrap the root key under the new one). Reported: wall time, the child's peak RSS, and the
peak of Python allocations during a second rotation under tracemalloc. For comparison, the time
the design document's scheme would spend in Argon2id alone (one run per decrypt and per encrypt)
is estimated from one measured run. With `--mounts N` the secrets are spread over `secret/` and
N-1 more KV v2 mounts (every mount is re-encrypted; a key of another mount is bound to it).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from benchutil import DEFAULT_PG, backend

from strongroom import VaultConfig, open_vault
from strongroom.core.secrets import encode_value
from strongroom.crypto.kdf import KDFParams, derive_kek, new_salt
from strongroom.storage import Tx, tables

KEYS = ["bench-master-key-0123456789", "bench-rotated-key-0123456789", "bench-third-key-012345678"]
FILL = VaultConfig(
    argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1, auto_lock=False
)


def fill(dsn: str, secrets: int, versions: int, mounts: int = 1) -> None:
    """Create the vault (production KDF) and bulk-insert secrets and versions, secret `i` in
    mount `i % mounts` (0: `secret/`)."""
    vault = open_vault(dsn, VaultConfig(auto_lock=False))
    vault.unlock(KEYS[0])
    ids = [1] + [vault.mounts.enable(f"m{n}", "kv-v2").id for n in range(1, mounts)]

    def stored(i: int) -> tuple[str, int]:
        mount_id = ids[i % len(ids)]
        key = f"bench/{i:06d}"
        return (key if mount_id == 1 else f"{mount_id}:{key}"), mount_id

    def run(tx: Tx, start: int, stop: int) -> tuple[None, None]:
        now = vault.state.clock.now()
        chunk = [stored(i) for i in range(start, stop)]
        tx.conn.execute(
            sa.insert(tables.secrets),
            [
                {
                    "path": path,
                    "mount_id": mount_id,
                    "description": None,
                    "created_by": 1,
                    "created_at": now,
                    "updated_at": now,
                    "version": versions,
                    "expires_at": None,
                    "metadata": "{}",
                    "max_versions": 0,
                    "cas_required": False,
                    "delete_version_after": 0,
                }
                for path, mount_id in chunk
            ],
        )
        s = tables.secrets
        query = sa.select(s.c.id, s.c.path).where(s.c.path.in_([p for p, _ in chunk]))
        rows = []
        for sid, path in tx.conn.execute(query):
            for n in range(1, versions + 1):
                envelope, term = vault.state.encrypt(
                    tx, encode_value({"value": f"{path}#{n}"}), sid, path, n
                )
                rows.append(
                    {
                        "secret_id": sid,
                        "version": n,
                        "value": envelope,
                        "key_term": term,
                        "updated_by": 1,
                        "updated_at": now,
                        "deleted_at": None,
                        "destroyed": False,
                    }
                )
        tx.conn.execute(sa.insert(tables.secret_versions), rows)
        return None, None

    def chunk(start: int, stop: int) -> Callable[[Tx], tuple[None, None]]:
        return lambda tx: run(tx, start, stop)

    try:
        for start in range(0, secrets, 2000):
            vault.state.submit(chunk(start, min(secrets, start + 2000)), lambda exc: None)
    finally:
        vault.close()


def child(dsn: str) -> dict[str, Any]:
    """Runs in a fresh process: time one rotation, then trace a second one."""
    vault = open_vault(dsn, VaultConfig(auto_lock=False))
    vault.unlock(KEYS[0])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = vault.rotate_all(KEYS[1])
    wall = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    vault.rotate_all(KEYS[2])
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert vault.get_secret_version("bench/000000", 2) == "bench/000000#2"
    vault.close()
    return {
        "wall": wall,
        "versions": result.reencrypted,
        "secrets": result.secrets,
        "rss_before_kib": rss_before,
        "rss_peak_kib": rss_after,
        "traced_peak_bytes": traced_peak,
    }


def argon2_seconds() -> float:
    start = time.perf_counter()
    derive_kek("x" * 20, new_salt(), KDFParams())
    return time.perf_counter() - start


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--mounts", type=int, default=1, help="KV mounts, secret/ included")
    parser.add_argument("--pg", default=DEFAULT_PG)
    args = parser.parse_args()
    per_argon = min(argon2_seconds() for _ in range(3))
    print(
        f"{'backend':<11} {'versions':>8} {'wall s':>7} {'versions/s':>10} "
        f"{'RSS after unlock MiB':>20} {'peak RSS MiB':>12} {'traced peak MiB':>15}"
    )
    for name in ("sqlite", "postgresql"):
        with backend(name, args.pg) as dsn:
            fill(dsn, args.secrets, args.versions, args.mounts)
            out = subprocess.run(
                [sys.executable, __file__, "--child", dsn],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            r = json.loads(out)
            print(
                f"{name:<11} {r['versions']:>8} {r['wall']:7.2f} "
                f"{r['versions'] / r['wall']:10.0f} {r['rss_before_kib'] / 1024:20.1f} "
                f"{r['rss_peak_kib'] / 1024:12.1f} "
                f"{r['traced_peak_bytes'] / 2**20:15.2f}"
            )
    total = args.secrets * args.versions
    print(
        f"one Argon2id run (t=3, 64 MiB, p=4): {per_argon * 1000:.0f} ms; the design "
        f"document's per-operation KDF would spend ~{2 * total * per_argon / 60:.0f} min in "
        f"Argon2id alone re-encrypting {total} versions (one run per decrypt and per encrypt)"
    )


if __name__ == "__main__":
    main()
