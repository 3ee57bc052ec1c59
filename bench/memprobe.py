"""Run `strongroom.cli.server` with a memory probe: where does the server's resident memory go?

`bench/soak.py --probe` starts the server through this module (one worker, so one process).
Every `SOAK_PROBE_INTERVAL` seconds a daemon thread appends one JSON line to `SOAK_PROBE_OUT`:

- `rss_kib`: the process's resident set size (/proc/self/status);
- `sqlite_bytes`: memory held by SQLite's own allocator in this process (`sqlite3_memory_used()`
  of the libsqlite3 that Python's `_sqlite3` links: page caches, schemas, statements);
- `malloc_in_use` / `malloc_free`: glibc's `mallinfo2()`: bytes handed out by malloc (Python's
  large objects, SQLite, OpenSSL...) and bytes free inside malloc's arenas (fragmentation);
- `python_traced`: bytes allocated by Python code (tracemalloc), when `SOAK_PROBE_TRACE=1`;
  the top growing allocation sites since the third sample (after warm-up) go in `python_growth`.

If `python_traced` is flat while RSS grows, nothing reachable from Python accumulates (no leak in
our code); `sqlite_bytes` and `malloc_free` then account for the rest.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import json
import os
import runpy
import threading
import time
import tracemalloc
from pathlib import Path

# Growth is reported against the third sample: the first minute of load is warm-up.
BASELINE_SAMPLE = 2


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _probe(out: Path, interval: float, trace: bool) -> None:
    sqlite = ctypes.CDLL("libsqlite3.so.0")
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = _MallInfo2
    baseline: tracemalloc.Snapshot | None = None
    started = time.monotonic()
    for count in itertools.count():
        if trace and count == BASELINE_SAMPLE:
            baseline = tracemalloc.take_snapshot()
        info = libc.mallinfo2()
        sample: dict[str, object] = {
            "t": round(time.monotonic() - started, 1),
            "rss_kib": _rss_kib(),
            "sqlite_bytes": sqlite.sqlite3_memory_used(),
            "malloc_in_use": info.uordblks + info.hblkhd,
            "malloc_free": info.fordblks,
        }
        if trace:
            sample["python_traced"] = tracemalloc.get_traced_memory()[0]
        if baseline is not None and count > BASELINE_SAMPLE:
            growth = tracemalloc.take_snapshot().compare_to(baseline, "lineno")[:5]
            sample["python_growth"] = [str(stat) for stat in growth]
        with out.open("a") as file:
            file.write(json.dumps(sample) + "\n")
        time.sleep(interval)


def main() -> None:
    trace = os.environ.get("SOAK_PROBE_TRACE") == "1"
    if trace:
        tracemalloc.start(1)
    out = Path(os.environ["SOAK_PROBE_OUT"])
    interval = float(os.environ.get("SOAK_PROBE_INTERVAL", "30"))
    threading.Thread(target=_probe, args=(out, interval, trace), daemon=True).start()
    runpy.run_module("strongroom.cli.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
