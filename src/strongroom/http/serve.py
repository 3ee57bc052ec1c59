"""Run the server: one uvicorn process, or a supervisor with N worker processes sharing a socket.

With `--tls-cert` every process serves HTTPS from its own `ssl.SSLContext` (`http.tls`), and
SIGHUP reloads the certificate: a single process reloads it, a supervisor forwards SIGHUP to its
workers. Worker 0 is the one that may run the background jobs (`http.jobs`).

With several workers the supervisor binds the socket, spawns the workers (which keep keep-alive
connections spread among them: `http.balance`), and relays lock-state
changes between them (see `http.control`): it forwards one worker's unlock or lock to the others
and answers when all have applied it, and it decides auto-lock from the activity the workers
report. It never stores the master key. SIGTERM (or SIGINT) is forwarded to every worker; uvicorn
then stops accepting, lets in-flight requests finish (up to `graceful_timeout`), and the vault's
writer commits what is queued before the process exits. If a worker dies unexpectedly the
supervisor stops the others and exits 1, so a process manager restarts the server whole.

With a worker per CPU (the default), each binds itself to a CPU of its own (`bind_worker`;
`--no-cpu-affinity` turns it off).
A worker's threads (the event loop, the thread pool, the writer) hand the GIL to each other
all the time; spread over several CPUs, each hand-off wakes a thread on another CPU and its
caches are cold. Bound, PostgreSQL reads with two workers on two CPUs served +35-50 % (docs/
decisions.md, "Speed, round seven").
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import resource
import signal
import socket
import ssl
import time
from multiprocessing.connection import Connection, wait
from typing import Any

import uvicorn

from strongroom.config import Settings
from strongroom.core import open_vault
from strongroom.core.audit_devices import request_reopen
from strongroom.http.app import create_app
from strongroom.http.balance import Balance, BalancedServer, ConnectionTable
from strongroom.http.control import WorkerLink
from strongroom.http.deps import SERVER_ACTOR
from strongroom.http.protocol import VaultHTTPProtocol
from strongroom.http.tls import install_reload, server_context
from strongroom.http.uvserver import Server

__all__ = ["Supervisor", "bind_worker", "serve", "worker_cpu"]

PR_SET_DUMPABLE = 4
log = logging.getLogger("strongroom.http")


def _config(
    app: Any,
    settings: Settings,
    tls: ssl.SSLContext | None = None,
    protocol: type[VaultHTTPProtocol] = VaultHTTPProtocol,
) -> uvicorn.Config:
    factory = None if tls is None else (lambda config, default: tls)
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=protocol,
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=max(1, round(settings.graceful_timeout)),
        ssl_context_factory=factory,
    )


def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; return the exit status.

    Raises:
        StrongroomError: the database cannot be opened or the master key is wrong (before
            anything listens).
    """
    forbid_core_dumps()
    # Until the reload handler is in place (and in spawned workers until theirs is), SIGHUP
    # must not kill the server: ignored, a disposition the workers inherit.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if settings.workers == 1:
        tls = server_context(settings)
        vault = open_vault(settings.db_dsn, settings.vault_config())
        try:
            if settings.master_key is not None:
                vault.unlock(settings.master_key.reveal(), actor=SERVER_ACTOR)
        except BaseException:
            vault.close()
            raise
        server = Server(_config(create_app(settings, vault=vault), settings, tls))
        _exit_quietly_after_shutdown()
        install_reload(tls, settings)
        server.run()
        return 0 if server.started else 1
    return Supervisor(settings).run()


def forbid_core_dumps() -> None:
    """No core dumps and no same-user ptrace: an unlocked server's memory holds its keys
    (threats.md J1). Workers inherit both settings. Best effort where the OS refuses."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        log.warning("could not disable core dumps")
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        log.warning("could not mark the process non-dumpable")


def _exit_quietly_after_shutdown() -> None:
    """uvicorn re-raises SIGTERM/SIGINT once it has shut down gracefully; exit 0 then."""

    def done(signum: int, frame: object) -> None:
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, done)


def _report_interval(settings: Settings) -> float:
    return max(0.05, min(1.0, settings.auto_lock_timeout.total_seconds() / 10))


def worker_cpu(index: int, workers: int, allowed: set[int]) -> int | None:
    """The CPU worker `index` of `workers` is bound to among the `allowed` ones: each in turn,
    in CPU order, when the workers share the CPUs evenly (as many as CPUs, the default, or a
    multiple). None otherwise, and for one worker: the OS places them. (With fewer workers than
    CPUs, a CPU quota such as `--workers 2` on a node of 16, binding would put every such
    server's workers on the node's first CPUs; with 3 workers on 2 CPUs, one CPU would carry
    two workers for good.)"""
    if workers < 2 or workers % len(allowed):
        return None
    return sorted(allowed)[index % len(allowed)]


def bind_worker(index: int, workers: int) -> int | None:
    """Bind this process to its CPU (`worker_cpu`) and return it; None when it stays unbound
    (see `worker_cpu`, or no CPU affinity on this platform, or the kernel refused). Call it
    before the process starts a thread: threads inherit the calling thread's affinity."""
    if not hasattr(os, "sched_setaffinity"):  # (macOS, Windows)
        return None
    try:
        cpu = worker_cpu(index, workers, os.sched_getaffinity(0))
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
    except OSError as exc:  # e.g. a seccomp profile refusing it
        log.warning("worker %d not bound to a CPU: %s", index, exc)
        return None
    return cpu


def worker_main(
    settings: Settings,
    sock: socket.socket,
    conn: Connection,
    index: int = 0,
    table: ConnectionTable | None = None,
) -> None:
    """Entry point of a worker process (worker `index`; worker 0 may run the jobs). With a
    `table`, it keeps its share of the keep-alive connections (`http.balance`)."""
    if settings.cpu_affinity:
        bind_worker(index, settings.workers)
    interval = _report_interval(settings)
    tls = server_context(settings)
    app = create_app(
        settings,
        link_factory=lambda vault: WorkerLink(conn, vault, interval),
        lead_jobs=index == 0,
    )
    _exit_quietly_after_shutdown()
    install_reload(tls, settings)
    if table is None:
        server = Server(_config(app, settings, tls))
    else:
        balance = Balance(table, index)
        protocol = VaultHTTPProtocol.balanced(balance)
        server = BalancedServer(_config(app, settings, tls, protocol), balance)
    server.run(sockets=[sock])


class Supervisor:
    """The parent of N workers: relays lock state, owns auto-lock, forwards signals."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._pending: dict[tuple[int, int], set[int]] = {}
        self._ops: dict[tuple[int, int], str] = {}
        self._unlocked = settings.master_key is not None
        self._last_activity = time.time()
        self._ready: set[int] = set()
        self._stopping = False

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.host, self.settings.port))
        sock.listen(2048)
        sock.set_inheritable(True)
        return sock

    def _prepare(self) -> None:
        """Create or migrate the database and initialise the vault once, before any worker
        starts, so workers never race each other doing it (SQLite cannot queue DDL)."""
        vault = open_vault(self.settings.db_dsn, self.settings.vault_config(auto_lock=False))
        try:
            if self.settings.master_key is not None:
                vault.unlock(self.settings.master_key.reveal(), actor=SERVER_ACTOR)
        finally:
            vault.close()

    def run(self) -> int:
        """Spawn the workers and supervise them until a stop signal; return the exit status.

        Raises:
            StrongroomError: the database cannot be opened or the master key is wrong.
        """
        self._prepare()
        sock = self._bind()
        ctx = multiprocessing.get_context("spawn")
        table = ConnectionTable(self.settings.workers)
        for index in range(self.settings.workers):
            parent, child = ctx.Pipe(duplex=True)
            proc = ctx.Process(
                target=worker_main,
                args=(self.settings, sock, child, index, table),
                daemon=False,
            )
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        sock.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        signal.signal(signal.SIGHUP, self._forward_hup)
        status = self._loop()
        self._shutdown()
        return status

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stopping = True

    def _forward_hup(self, signum: int, frame: object) -> None:
        """SIGHUP: every worker reloads its TLS certificate (`http.tls`) and reopens its audit
        files; so does this process."""
        request_reopen()
        for proc in self._procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGHUP)

    def _loop(self) -> int:
        sentinels = {p.sentinel: i for i, p in enumerate(self._procs)}
        while not self._stopping:
            ready = wait([*self._conns, *sentinels], timeout=0.2)
            for item in ready:
                if isinstance(item, int):
                    log.error("worker %d exited unexpectedly; stopping the server", sentinels[item])
                    return 1
                if not isinstance(item, Connection):
                    continue
                try:
                    message = item.recv()
                except (EOFError, OSError):
                    continue
                self._handle(self._conns.index(item), message)
            self._check_idle()
        return 0

    def _send(self, index: int, message: tuple[Any, ...]) -> None:
        try:
            self._conns[index].send(message)
        except OSError:
            log.error("worker %d is unreachable", index)

    def _handle(self, index: int, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            # Idle time counts from when the last worker came up, not from the spawn.
            self._ready.add(index)
            self._last_activity = time.time()
        elif kind == "activity":
            self._last_activity = max(self._last_activity, float(message[1]))
        elif kind == "bcast":
            _, bid, op, payload = message
            key = (index, bid)
            others = {i for i in range(len(self._conns)) if i != index}
            self._pending[key], self._ops[key] = others, op
            for i in others:
                self._send(i, ("apply", key, op, payload))
            self._maybe_done(key)
        elif kind == "ack":
            key = (int(message[1][0]), int(message[1][1]))
            self._pending.get(key, set()).discard(index)
            self._maybe_done(key)

    def _maybe_done(self, key: tuple[int, int]) -> None:
        if key in self._pending and not self._pending[key]:
            del self._pending[key]
            op = self._ops.pop(key)
            if op in ("unlock", "auto_unlock"):
                self._unlocked, self._last_activity = True, time.time()
            elif op == "lock":
                self._unlocked = False
            self._send(key[0], ("done", key[1]))

    def _check_idle(self) -> None:
        s = self.settings
        if len(self._ready) < len(self._conns):
            return
        idle = time.time() - self._last_activity
        if s.auto_lock and self._unlocked and idle >= s.auto_lock_timeout.total_seconds():
            self._unlocked = False
            for i in range(len(self._conns)):  # one worker audits it; the rest drop keys
                self._send(i, ("apply", None, "drop_keys" if i else "auto_lock", None))

    def _shutdown(self) -> None:
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn's graceful shutdown
        deadline = time.monotonic() + self.settings.graceful_timeout + 10
        for proc in self._procs:
            proc.join(timeout=max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()
