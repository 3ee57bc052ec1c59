"""Two checkouts' CPU per request, alternated in-process: an A/B that a noisy machine resolves.

    python bench/ab_inprocess.py OLD/src [NEW/src] [--path /v1/secret/data/bench/one ...]
                                 [--conc 16] [--batch 2000] [--rounds 20] [--backend sqlite]

Starts one child process per checkout (`PYTHONPATH`; the same dependencies), each serving the
same vault through the server's ASGI app directly: no sockets, no HTTP parsing, nothing else
running in the child. The children take turns, `--rounds` times, each answering `--batch` GETs
of the `--path`s at `--conc` concurrent requests (the `Bench` role token of `vs_openbao.py`, a
policy check on every request; every answer must be a 200), and report the CPU time they
spent per request (all their threads: the event loop, the writer, the pool). Prints each
checkout's median and, per round, the ratio to the first checkout's batch of the same round:
its median and quartiles. Alternating batches of a second or so cancels the drift of a shared
VM that makes two `vs_openbao.py` cells minutes apart differ by 15-30 % (docs/decisions.md,
"Speed, round eleven"). It measures the server's own code only: use `vs_openbao.py` for what a
client sees.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchutil import DEFAULT_PG, backend
from vs_openbao import BODY, clean_env, prepare

HERE = Path(__file__).resolve()
SRC = HERE.parent.parent / "src"


def child() -> None:
    """Serve batches through the app: one per line on stdin, a JSON line back for each."""
    import uvloop

    from strongroom.config import Settings
    from strongroom.http.app import create_app

    paths = os.environ["AB_PATHS"].split(",")
    conc, batch = int(os.environ["AB_CONC"]), int(os.environ["AB_BATCH"])
    app = create_app(Settings.from_env(dict(os.environ)))
    headers = [(b"host", b"127.0.0.1"), (b"x-vault-token", os.environ["AB_TOKEN"].encode())]

    async def call(path: str, method: str = "GET", body: bytes = b"") -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8200),
            "state": {},
        }
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    async def main() -> None:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})
        lifespan = asyncio.ensure_future(
            app(
                {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put
            )
        )
        started = await outbox.get()
        if started["type"] != "lifespan.startup.complete":
            raise SystemExit(f"the app did not start: {started}")
        for path in set(paths):  # (a version to read; the path's write is allowed by `bench`)
            if (status := await call(path, "POST", BODY.encode())) != 200:
                raise SystemExit(f"writing {path}: {status}")
        loop = asyncio.get_running_loop()
        print("ready", flush=True)

        async def client(first: int, statuses: dict[int, int]) -> None:
            for i in range(batch // conc):
                status = await call(paths[(first + i) % len(paths)])
                statuses[status] = statuses.get(status, 0) + 1

        while (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            statuses: dict[int, int] = {}
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(client(i, statuses) for i in range(conc)))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            done = sum(statuses.values())
            print(json.dumps({"cpu_us": cpu / done * 1e6, "wall_us": wall / done * 1e6,
                              "statuses": statuses}), flush=True)  # fmt: skip
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await lifespan

    uvloop.run(main())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("checkouts", nargs="+", type=Path, help="src/ directories (1 or 2)")
    parser.add_argument("--path", action="append", help="GET path (repeatable; round-robin)")
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--batch", type=int, default=2000, help="requests per turn")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-dsn", default=os.environ.get("STRONGROOM_TEST_PG", DEFAULT_PG))
    args = parser.parse_args()
    if len(args.checkouts) == 1:
        args.checkouts.append(SRC)
    if len(args.checkouts) != 2 or args.checkouts[0].resolve() == args.checkouts[1].resolve():
        parser.error("give two different src/ directories (the second defaults to this one)")
    for src in args.checkouts:
        if not (src / "strongroom" / "__init__.py").is_file():
            parser.error(f"{src}: not a src/ directory holding the strongroom package")
    args.path = args.path or ["/v1/secret/data/bench/one"]
    if args.conc < 1 or args.batch < args.conc or args.rounds < 1:
        parser.error("need --conc >= 1, --batch >= --conc and --rounds >= 1")
    return args


def main() -> None:
    if os.environ.get("AB_CHILD"):
        child()
        return
    args = parse_args()
    with tempfile.TemporaryDirectory() as home, backend(args.backend, args.pg_dsn) as dsn:
        env = clean_env(
            HOME=home,
            VAULT_MASTER_KEY=secrets.token_urlsafe(32),
            VAULT_JWT_SECRET=secrets.token_urlsafe(48),
            DATABASE_URL=dsn,
        )
        env.update(
            AB_CHILD="1",
            AB_TOKEN=prepare(dsn, env),
            AB_PATHS=",".join(args.path),
            AB_CONC=str(args.conc),
            AB_BATCH=str(args.batch),
        )
        children = []
        try:
            for src in args.checkouts:
                proc = subprocess.Popen(
                    [sys.executable, str(HERE)],
                    env={**env, "PYTHONPATH": str(src.resolve())},
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                children.append(proc)
                assert proc.stdout is not None and proc.stdin is not None
                if proc.stdout.readline().strip() != "ready":
                    raise SystemExit(f"{src}: the child did not start")
            cpu: list[list[float]] = [[], []]
            for turn in range(args.rounds):
                for i in (0, 1) if turn % 2 == 0 else (1, 0):
                    proc = children[i]
                    assert proc.stdin is not None and proc.stdout is not None
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
                    answer = json.loads(proc.stdout.readline())
                    if set(answer["statuses"]) != {"200"}:
                        raise SystemExit(f"{args.checkouts[i]}: answers {answer['statuses']}")
                    cpu[i].append(answer["cpu_us"])
        finally:
            for proc in children:
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.wait(60)
    ratios = [b / a for a, b in zip(cpu[0], cpu[1], strict=True)]
    for src, values in zip(args.checkouts, cpu, strict=True):
        print(f"{src}: CPU per request median {statistics.median(values):.1f} us")
    low, _, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(
        f"second / first, per round: median {statistics.median(ratios):.3f} "
        f"(quartiles {low:.3f}-{high:.3f}, {len(ratios)} rounds)"
    )


if __name__ == "__main__":
    main()
