"""Reads in a large vault: read-random over a folder of 1,000 keys and over one of N keys (default
1,000,000), both in the same SQLite vault, served by one `vaultctl server` (issue #16: "with 1M
secrets in SQLite, reads stay within 20 % of the 1,000-key figure").

The vault is filled in-process through the library (`KVEngine.write`, group-committed and
audited like any write: about 3,500 keys a second here, so a million take about five minutes);
`--db` keeps it, and a later run with the same `--db` and `--keys` reuses it. Then the server runs
pinned to `--server-cpu`, wrk to `--load-cpu`, with the same non-admin token, Lua workload and
reporting as `vs_openbao.py` (OpenBao is not run: the target compares Strongroom with itself).

    python bench/large_vault.py [--keys N] [--db FILE] [--conc 16] [--seconds 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import vs_openbao as vb

from strongroom import open_vault
from strongroom.core import VaultConfig

SMALL = 1_000
#: Writes queued at once while filling (the writer batches up to 256 a commit).
IN_FLIGHT = 2_000


def fill(dsn: str, master_key: str, folders: dict[str, int]) -> None:
    """Initialise the vault and write `keys` keys into each folder (`bench/<folder>/k%06d`)."""
    vault = open_vault(dsn, VaultConfig(auto_lock=False))
    try:
        vault.unlock(master_key)
        value = json.loads(vb.BODY)["data"]
        for folder, keys in folders.items():
            started, queued = time.monotonic(), deque[Future[Any]]()
            for i in range(keys):
                path = f"bench/{folder}/k{i:06d}"
                queued.append(vault.state.write_detached(partial(vault.kv.write, path, value)))
                if len(queued) >= IN_FLIGHT:
                    queued.popleft().result()
                if i and i % 100_000 == 0:
                    print(
                        f"  {folder}: {i:,} keys, {i / (time.monotonic() - started):,.0f}/s",
                        flush=True,
                    )
            while queued:
                queued.popleft().result()
    finally:
        vault.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys in the large folder")
    parser.add_argument("--db", type=Path, help="SQLite file to fill (or reuse) and keep")
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0, help="per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell (alternating)")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if not SMALL < args.keys <= 1_000_000:
        parser.error(f"--keys must be from {SMALL + 1:,} to 1,000,000 (paths are k000000-k999999)")
    if args.repeats < 1 or args.seconds < 1 or args.conc < 1:
        parser.error("--repeats, --seconds and --conc must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found (apt-get install wrk)")
    server_cpu, load_cpu = vb.usable_cpus(args.server_cpu, args.load_cpu)
    signal.signal(signal.SIGTERM, vb.interrupted)
    large = vb.folder_of(args.keys)
    small = vb.folder_of(SMALL)
    with tempfile.TemporaryDirectory(prefix="strongroom-large-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        db = (args.db or folder / "vault.db").resolve()
        marker = db.with_name(db.name + ".bench.json")  # the master key and what is in it
        meta = json.loads(marker.read_text()) if marker.exists() and db.exists() else None
        if meta is None or meta.get("keys") != args.keys:
            if db.exists():
                raise SystemExit(
                    f"{db} exists but was not filled by this bench with --keys {args.keys:,} "
                    "(or its filling was interrupted): remove it, or name another --db"
                )
            meta = {"keys": args.keys, "master_key": secrets.token_urlsafe(32)}
            print(f"filling {db}: {SMALL:,} + {args.keys:,} keys ...", flush=True)
            started = time.monotonic()
            try:
                fill(f"sqlite:///{db}", meta["master_key"], {small: SMALL, large: args.keys})
            except BaseException:
                for part in db.parent.glob(db.name + "*"):
                    part.unlink(missing_ok=True)  # half a vault is no use to the next run
                raise
            meta["fill_seconds"] = round(time.monotonic() - started, 1)
            marker.write_text(json.dumps(meta))
            print(f"filled in {meta['fill_seconds']:,} s", flush=True)
        size_mb = sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 1e6
        server = stack.enter_context(
            vb.strongroom(
                folder / "server",
                server_cpu,
                "sqlite",
                "",
                1,
                existing=(f"sqlite:///{db}", meta["master_key"]),
            )
        )
        vb.check(server, [f"{small}/k000000", f"{large}/k{args.keys - 1:06d}"], {})
        scripts = {}
        for name, keys in ((small, SMALL), (large, args.keys)):
            values = {"body": vb.BODY, "seed": 7, "folder": name, "keys": keys, "run": name}
            scripts[name] = folder / f"{name}.lua"
            scripts[name].write_text(vb.LUA_PRELUDE % values + vb.LUA["read-random"] % values)
        for script in scripts.values():  # warm-up of both
            vb.run_wrk(server, script, args.conc, min(2.0, args.seconds), load_cpu, folder)
        runs: dict[str, list[vb.Run]] = {small: [], large: []}
        for repeat in range(args.repeats):
            for name in (small, large) if repeat % 2 == 0 else (large, small):
                runs[name].append(
                    vb.run_wrk(server, scripts[name], args.conc, args.seconds, load_cpu, folder)
                )
        cells = {name: vb.median_run(measured) for name, measured in runs.items()}
        ratio = cells[large].rps / cells[small].rps if cells[small].rps else float("nan")
        print(
            f"\nread random, c={args.conc}, one worker on CPU {server_cpu}, wrk on CPU {load_cpu}, "
            f"median of {args.repeats} x {args.seconds:g} s; database {size_mb:,.0f} MB\n"
        )
        print("| folder | rps | p50 ms | p99 ms | CPU µs/req | RSS MB | errors |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, keys in ((small, SMALL), (large, args.keys)):
            run = cells[name]
            print(
                f"| {keys:,} keys | {vb.fmt(run.rps)} | {vb.latency(run.p50_ms)} | "
                f"{vb.latency(run.p99_ms)} | {vb.fmt(run.cpu_us_per_req)} | "
                f"{vb.fmt(run.rss_mb)} | {run.errors} |"
            )
        print(f"\n{args.keys:,} keys / {SMALL:,} keys: {ratio:.2f}x the requests per second")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "keys": args.keys,
                        "conc": args.conc,
                        "database_mb": size_mb,
                        "fill_seconds": meta.get("fill_seconds"),
                        "ratio": ratio,
                        "small": asdict(cells[small]),
                        "large": asdict(cells[large]),
                    },
                    indent=2,
                )
            )


if __name__ == "__main__":
    main()
