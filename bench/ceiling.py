"""The ceiling of an audited read on this machine: issue #16's minimal app beside OpenBao and us.

    python bench/ceiling.py [--quick] [--scenario read-one|read-random ...] [--conc N ...]
                            [--seconds S] [--repeats N] [--workers N] [--json OUT]

Issue #16 bounds what a Python server could serve with a minimal ASGI app that does the least
an audited KV v2 read must do, and nothing else:

- a token lookup (the SHA-256 of `X-Vault-Token`, compared in constant time);
- a SQLite point read and an AES-GCM decrypt bound to the key's path (AAD);
- an HMAC-chained audit row, group-committed once per event-loop tick on a WAL database with
  `synchronous=FULL`; the answer waits for its row's commit.

No policies, no lock state, no versions, no metrics, no request ids, no error handling beyond
403/404: it bounds speed, it is not a vault. It runs under uvicorn and uvloop, as
`vaultctl server` does, in three variants:

- `commit on loop` (httptools): the event loop commits each tick's batch itself (its fsync
  stalls every connection meanwhile: what `vaultctl server` does not do);
- `commit in thread` (httptools): one thread writes and commits the batches, one at a time,
  while the loop goes on, as `vaultctl server` does; the answers wait on a future;
- `commit in thread, our HTTP`: the same under `vaultctl server`'s own HTTP protocol
  (`strongroom.http.protocol`), to tell what the protocol costs from what the vault does.

This script starts OpenBao (raft, file audit), `vaultctl server` (SQLite, one worker) and the
three variants, each pinned to `--server-cpu`, and drives them with wrk on `--load-cpu` with
the read workloads of `vs_openbao.py` (the same Lua, the same alternation per cell). It prints
each server's requests per second, p99 and CPU per request, with each one's ratio to OpenBao
and Strongroom's to each ceiling. `--quick`: one run of 4 s per cell. `--workers N` compares
one worker with N instead, unpinned, for `vaultctl server` and the thread variant.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vs_openbao import (
    BODY,
    BY_NAME,
    DEFAULT_PG,
    LUA,
    LUA_PRELUDE,
    VALUE,
    Server,
    add_cell_options,
    cell_defaults,
    check,
    clean_env,
    fmt,
    folder_of,
    free_port,
    latency,
    median_run,
    openbao,
    pinned,
    process_group,
    run_until_interrupted,
    run_wrk,
    seed,
    strongroom,
    usable_cpus,
    wait_http,
)

HERE = Path(__file__).resolve()
PREFIX = "/v1/secret/data/bench/"
#: The variants: how a tick's batch of audit rows is committed, and under which protocol.
VARIANTS = {
    "loop": "Ceiling, commit on loop",
    "thread": "Ceiling, commit in thread",
    # the thread variant under `vaultctl server`'s own HTTP protocol (LIST, JSON refusals,
    # bounded heads, one write per answer): what our protocol costs, apart from the vault
    "ours": "Ceiling, commit in thread, our HTTP",
}
SCENARIOS = ("read-one", "read-random")
SCHEMA = """
CREATE TABLE IF NOT EXISTS secrets (path TEXT PRIMARY KEY, nonce BLOB, ciphertext BLOB);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, actor BLOB NOT NULL, path TEXT NOT NULL,
    mac BLOB NOT NULL
);
"""


# --------------------------------------------------------------------------------------------
# The app (`--serve`): run by uvicorn in a process of its own.
# --------------------------------------------------------------------------------------------


Batch = list[tuple[str, str, "asyncio.Future[None]"]]


class Ceiling:
    """The minimal audited read, as a raw ASGI app (see the module)."""

    def __init__(self, db: Path, token: str, secret: bytes, commit: str) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.commit = commit
        self.lock = os.open(f"{db}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self.actor = hashlib.sha256(token.encode()).digest()
        self.aead = AESGCM(secret[:32])
        self.mac_key = secret[32:]
        self.pending: Batch = []
        self.scheduled = False  # a `flush` is due at the loop's next turn
        self.busy = False  # a batch is being written (at most one at a time)
        self.writer = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        self.writer.execute("PRAGMA synchronous=FULL")
        self.reader = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="commit")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path: str = scope["path"]
        if path == "/v1/sys/health":
            return await respond(send, 200, b'{"initialized":true,"sealed":false}')
        token = next((v for k, v in scope["headers"] if k == b"x-vault-token"), b"")
        if not hmac.compare_digest(hashlib.sha256(token).digest(), self.actor):
            return await respond(send, 403, b'{"errors":["permission denied"]}')
        key = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
        row = self.reader.execute(
            "SELECT nonce, ciphertext FROM secrets WHERE path = ?", (key,)
        ).fetchone()
        if row is None:
            return await respond(send, 404, b'{"errors":[]}')
        value = self.aead.decrypt(row[0], row[1], key.encode())
        now = datetime.now(UTC).isoformat()
        await self.audited(now, key)
        await respond(
            send,
            200,
            b'{"data":{"data":%s,"metadata":{"created_time":"%s","version":1}}}'
            % (value, now.encode()),
        )

    def audited(self, at: str, key: str) -> asyncio.Future[None]:
        """A future answered once this read's audit row is committed."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self.pending.append((at, key, done))
        if not self.busy and not self.scheduled:  # the first of this turn: flush after it
            self.scheduled = True
            loop.call_soon(self.flush, loop)
        return done

    def flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write what is pending as one batch: here (`loop`) or in the commit thread."""
        self.scheduled = False
        if self.busy or not self.pending:
            return
        batch, self.pending = self.pending, []
        if self.commit == "loop":
            try:
                self.write(batch)
            except Exception as exc:
                self.settle(batch, exc, loop)
            else:
                self.settle(batch, None, loop)
            return
        self.busy = True

        def committed(outcome: Any) -> None:
            loop.call_soon_threadsafe(self.settle, batch, outcome.exception(), loop)

        self.pool.submit(self.write, batch).add_done_callback(committed)

    def write(self, batch: Batch) -> None:
        """Append a batch's rows to the chain and commit them (one fsync). The chain's head
        is read under the writer's lock, as `vaultctl server` reads it: other workers
        (`--workers`) append to the same chain."""
        fcntl.flock(self.lock, fcntl.LOCK_EX)  # (the writers of other workers queue here)
        try:
            self.writer.execute("BEGIN IMMEDIATE")
            try:
                head = self.writer.execute("SELECT mac FROM audit ORDER BY id DESC LIMIT 1")
                mac = (head.fetchone() or (b"\0" * 32,))[0]
                rows = []
                for at, key, _ in batch:
                    data = b"|".join((mac, at.encode(), self.actor, key.encode()))
                    mac = hmac.digest(self.mac_key, data, "sha256")
                    rows.append((at, self.actor, key, mac))
                self.writer.executemany(
                    "INSERT INTO audit (at, actor, path, mac) VALUES (?,?,?,?)", rows
                )
                self.writer.execute("COMMIT")
            except BaseException:
                self.writer.execute("ROLLBACK")
                raise
        finally:
            fcntl.flock(self.lock, fcntl.LOCK_UN)

    def settle(self, batch: Batch, error: BaseException | None, loop: Any) -> None:
        """Answer a batch's reads (on the loop), then write what queued meanwhile."""
        self.busy = False
        for _, _, done in batch:
            if done.done():
                continue  # (cancelled: its client went away)
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)
        self.flush(loop)


def seed_db(db: Path, keys: Sequence[str], secret: bytes) -> None:
    """The schema, and each key's value encrypted under `secret` (bound to its path)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(secret[:32])
    value = json.dumps({"value": VALUE}).encode()
    rows = []
    for key in keys:
        nonce = secrets.token_bytes(12)
        rows.append((key, nonce, aead.encrypt(nonce, value, key.encode())))
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO secrets VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")


async def respond(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(port: int, db: Path, token: str, keys: Sequence[str], variant: str, workers: int) -> None:
    """Serve on 127.0.0.1:`port`; with several `workers`, that many forked processes, each on
    a socket of its own bound with SO_REUSEPORT (the kernel spreads the connections) and, when
    they share the allowed CPUs evenly, on a CPU of its own (as `vaultctl server` does). The
    parent exits, failing, as soon as a worker does: the benchmark stops the process group."""
    secret = secrets.token_bytes(64)  # the data key and the MAC key, for every worker
    seed_db(db, keys, secret)
    if workers == 1:
        run_worker(port, db, token, secret, variant)
        return
    allowed = sorted(os.sched_getaffinity(0))
    children = []
    for index in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if workers % len(allowed) == 0:
                    os.sched_setaffinity(0, {allowed[index % len(allowed)]})
                run_worker(port, db, token, secret, variant)
                code = 0
            finally:
                os._exit(code)
        children.append(pid)
    pid, status = os.wait()  # (a worker ends only when it fails: the group stops together)
    raise SystemExit(f"worker {pid} ended ({status}); see the log above")


def run_worker(port: int, db: Path, token: str, secret: bytes, variant: str) -> None:
    import uvicorn

    from strongroom.http.protocol import VaultHTTPProtocol

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        Ceiling(db, token, secret, "loop" if variant == "loop" else "thread"),
        loop="uvloop",
        http=VaultHTTPProtocol if variant == "ours" else "httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,  # (as `vaultctl server`: no proxy middleware, no Server header)
        proxy_headers=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


# --------------------------------------------------------------------------------------------
# The comparison.
# --------------------------------------------------------------------------------------------


@contextmanager
def ceiling(
    home: Path, cpu: str | None, variant: str, keys: Sequence[str], workers: int = 1
) -> Iterator[Server]:
    """The app in a process of its own (`--serve`), its keys written, answering."""
    home.mkdir()
    token = secrets.token_urlsafe(24)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = home / "ceiling.log"
    (home / "keys").write_text("\n".join(keys))
    args = [str(port), str(home / "ceiling.db"), variant, str(home / "keys"), str(workers)]
    cmd = pinned(cpu, [sys.executable, str(HERE), "--serve", *args])
    env = clean_env(CEILING_TOKEN=token)
    with process_group(cmd, log, env=env, cwd=home) as proc:
        wait_http(f"{url}/v1/sys/health", proc, log, lambda status: status == 200)
        yield Server(named(VARIANTS[variant], workers), url, token, proc.pid)


def named(name: str, workers: int) -> str:
    return name if workers == 1 else f"{name}, {workers} workers"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1 run of 4 s per cell")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="repeatable")
    add_cell_options(parser)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="N > 1: how both scale instead, unpinned: Strongroom and the ceiling (commit in "
        "thread) with one worker and with N, beside OpenBao",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return cell_defaults(args)


Ratio = tuple[str, str, str]  # (heading, numerator's server, denominator's server)


def table(rows: Sequence[dict[str, Any]], names: Sequence[str], ratios: Sequence[Ratio]) -> str:
    """Each server's rps (and its ratio to OpenBao's), then the `ratios` (heading, numerator,
    denominator), then each server's p99 and CPU per request."""
    head = ["scenario", "conc"]
    for name in names:
        head += [f"{name} rps"] + ([f"{name} / OpenBao"] if name != "OpenBao" else [])
    head += [heading for heading, _, _ in ratios]
    head += [f"{name} p99 ms" for name in names] + [f"{name} CPU µs/req" for name in names]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for row in rows:
        ob = row["OpenBao"]["rps"]
        cells = [row["label"], str(row["conc"])]
        for name in names:
            rps = row[name]["rps"]
            cells += [fmt(rps)] + ([f"{rps / ob:.2f}"] if name != "OpenBao" else [])
        cells += [f"{row[top]['rps'] / row[bottom]['rps']:.2f}" for _, top, bottom in ratios]
        cells += [latency(row[name]["p99_ms"]) for name in names]
        cells += [fmt(row[name]["cpu_us_per_req"]) for name in names]
        lines.append("| " + " | ".join(cells) + " |")
    errors = [
        f"{row['label']} c={row['conc']} {name}: {row[name]['errors']}"
        for row in rows
        for name in names
        if row[name]["errors"]
    ]
    if errors:
        lines += ["", "Errors (non-2xx responses or socket errors): " + "; ".join(errors)]
    return "\n".join(lines)


def contenders(
    args: argparse.Namespace, folder: Path, pin: str | None, keys: Sequence[str]
) -> tuple[list[Any], list[Ratio]]:
    """The servers to start (context managers) and the ratios to print: pinned, OpenBao, ours
    and both ceilings; with `--workers N`, unpinned, OpenBao, and ours and the thread
    ceiling with one worker and with N."""
    wanted: list[Any] = [openbao(folder / "openbao", pin)]
    if args.workers == 1:
        wanted.append(strongroom(folder / "strongroom", pin, "sqlite", DEFAULT_PG, 1))
        wanted += [ceiling(folder / variant, pin, variant, keys) for variant in VARIANTS]
        return wanted, [(f"Strongroom / {n}", "Strongroom", n) for n in VARIANTS.values()]
    ratios = []
    for workers in (1, args.workers):
        wanted.append(ceiling(folder / f"thread{workers}", pin, "thread", keys, workers))
        name, home = named("Strongroom", workers), folder / f"strongroom{workers}"
        wanted.append(strongroom(home, pin, "sqlite", DEFAULT_PG, workers, name=name))
    for name in ("Strongroom", VARIANTS["thread"]):
        many = named(name, args.workers)
        ratios.append((f"{many} / {name}", many, name))
    return wanted, ratios


def start(stack: ExitStack, wanted: Sequence[Any], paths: Sequence[str]) -> list[Server]:
    """Start the servers at once (each stopped with `stack`); seed OpenBao and ours with
    `paths` (the ceilings wrote theirs); check that every one reads them with its token."""
    print(f"starting {len(wanted)} servers ...", flush=True)
    with ThreadPoolExecutor(len(wanted)) as pool:
        starting = [pool.submit(stack.enter_context, manager) for manager in wanted]
        servers = [future.result() for future in starting]
    for server in servers:
        if paths and not server.name.startswith(tuple(VARIANTS.values())):
            print(f"seeding {server.name}: {len(paths)} keys ...", flush=True)
            seed(server, paths)
        check(server, ["one", *paths[:100]], {})
    return servers


def measure(
    args: argparse.Namespace,
    servers: Sequence[Server],
    chosen: Sequence[tuple[Any, int]],
    folder: Path,
    wrk_cpu: str | None,
) -> list[dict[str, Any]]:
    """Each cell's median run per server, the servers alternating their order per repeat."""
    rows = []
    for scenario, conc in chosen:
        runs: dict[str, list[Any]] = {server.name: [] for server in servers}
        for repeat in range(args.repeats):
            for server in servers if repeat % 2 == 0 else servers[::-1]:
                values = {
                    "body": BODY,
                    "seed": secrets.randbelow(2**31),
                    "folder": folder_of(scenario.keys),
                    "keys": scenario.keys,
                    "run": uuid.uuid4().hex[:8],
                }
                script = folder / f"{values['run']}.lua"
                script.write_text(LUA_PRELUDE % values + LUA[scenario.script] % values)
                runs[server.name].append(
                    run_wrk(server, script, conc, args.seconds, wrk_cpu, folder)
                )
        row: dict[str, Any] = {"scenario": scenario.name, "label": scenario.label, "conc": conc}
        row |= {name: asdict(median_run(measured)) for name, measured in runs.items()}
        rows.append(row)
        print(
            f"  {scenario.label} c={conc}: "
            + ", ".join(f"{s.name} {fmt(row[s.name]['rps'])} rps" for s in servers),
            flush=True,
        )
    return rows


def serve_from_argv() -> None:
    """`--serve PORT DB VARIANT KEYS_FILE WORKERS` (`ceiling`), the token from the environment."""
    port, db, variant, keys, workers = sys.argv[2:7]
    names = Path(keys).read_text().split("\n")
    serve(int(port), Path(db), os.environ["CEILING_TOKEN"], names, variant, int(workers))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    server_cpu, load_cpu = usable_cpus(args.server_cpu, args.load_cpu)
    pin, wrk_cpu = (server_cpu, load_cpu) if args.workers == 1 else (None, None)
    where = f"servers on CPU {server_cpu}, wrk on CPU {load_cpu}" if pin else "unpinned"
    chosen = [
        (BY_NAME[name], conc)
        for name in args.scenario or SCENARIOS
        for conc in args.conc or BY_NAME[name].conc
    ]
    folders = {folder_of(s.keys): s.keys for s, _ in chosen if s.keys}
    paths = [f"{name}/k{i:06d}" for name, keys in folders.items() for i in range(keys)]
    keys = ["one", *paths]
    started, start_date = time.monotonic(), datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="strongroom-ceiling-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        wanted, ratios = contenders(args, folder, pin, keys)
        servers = start(stack, wanted, paths)
        warmup = folder / "warmup.lua"
        warmup.write_text(LUA_PRELUDE % {"body": BODY, "seed": 1} + LUA["read-one"])
        for server in servers if args.warmup > 0 else []:
            run_wrk(server, warmup, 16, args.warmup, wrk_cpu, folder)
        print(
            f"{len(chosen)} cells x {args.repeats} run(s) x {args.seconds:g} s x "
            f"{len(servers)} servers; {where}",
            flush=True,
        )
        rows = measure(args, servers, chosen, folder, wrk_cpu)
    meta = {
        "date": start_date.strftime("%Y-%m-%d %H:%M UTC"),
        "where": where,
        "workers": args.workers,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    print()
    print(f"{meta['date']}, median of {args.repeats} x {args.seconds:g} s per cell, {where}")
    print()
    print(table(rows, [server.name for server in servers], ratios))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve_from_argv()
    else:
        run_until_interrupted(main)
