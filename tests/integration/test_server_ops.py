"""`vaultctl server` in operation: auto-unlock, readiness, the cleanup job and its gauges,
graceful shutdown, and several instances starting at once on one fresh PostgreSQL database."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.integration.server_proc import ServerProcess, token
from tests.rawsql import execute


def poll(predicate: Callable[[], object], what: str, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def health(server: ServerProcess, ready: bool = False) -> httpx.Response:
    return httpx.get(f"{server.url}/api/vault/health" + ("?ready=1" if ready else ""), timeout=10)


def actions(dsn: str) -> list[str]:
    return [r[0] for r in execute(dsn, "SELECT action FROM vault_audit_logs ORDER BY id")]


def assert_one_unlock_per_auto_lock(log: list[str], workers: int) -> None:
    """At least one `auto_unlock`, each after an `auto_lock`, and at most one per worker
    between two auto-locks (one Argon2 run per process per auto-lock)."""
    assert "auto_unlock" in log, log
    since_lock: int | None = None  # None: no auto-lock yet
    for action in log:
        if action == "auto_lock":
            since_lock = 0
        elif action == "auto_unlock":
            assert since_lock is not None, f"an auto-unlock before any auto-lock: {log}"
            since_lock += 1
            assert since_lock <= workers, f"more than {workers} auto-unlocks per auto-lock: {log}"


def metric(server: ServerProcess, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


@pytest.mark.parametrize("workers", [1, 2])
def test_auto_unlock_after_auto_lock(tmp_path: Path, workers: int) -> None:
    server = ServerProcess(
        tmp_path,
        workers=workers,
        args=["--auto-unlock", "--auto-lock-timeout", "1s", "--cleanup-interval", "0"],
    ).start()
    try:
        with server.client() as api:
            assert api.post("/api/vault/secrets", json={"path": "a/b", "value": "v"}).is_success
        poll(lambda: health(server).json()["locked"], "the auto-lock")
        ready = health(server, ready=True)
        assert ready.status_code == 200 and ready.json()["locked"] is True
        assert metric(server, "strongroom_auto_unlock_enabled") == 1.0
        # No token, no unlock.
        assert httpx.get(f"{server.url}/api/vault/secrets/a/b").status_code == 401
        assert health(server).json()["locked"] is True
        # Eight requests at once: all answered, at most one Argon2 run per process.
        with ThreadPoolExecutor(8) as pool, server.client() as api:
            codes = list(pool.map(lambda _: api.get("/api/vault/secrets/a/b"), range(8)))
        assert [r.status_code for r in codes] == [200] * 8
        assert codes[0].json()["value"] == "v"
        # The kernel may hand all eight connections to one worker, so a worker that got
        # none has not unlocked yet; no worker unlocks more than once per auto-lock. Under
        # load a second auto-lock may fall between two of the eight (1 s without a finished
        # request), so the bound holds between auto-locks, not over the whole test.
        assert_one_unlock_per_auto_lock(actions(server.dsn), workers)
        # /v1 too, after the next auto-lock: Vault clients get their answer, not 503.
        poll(lambda: health(server).json()["locked"], "the second auto-lock")
        v1 = httpx.get(
            f"{server.url}/v1/secret/data/a/b", headers={"X-Vault-Token": token()}, timeout=30
        )
        assert v1.status_code == 200, v1.text
        # An explicit lock stays: not ready, and requests are refused.
        with server.client() as api:
            assert api.post("/api/vault/lock").is_success
            assert api.get("/api/vault/secrets/a/b").status_code == 423
        assert health(server, ready=True).status_code == 503
    finally:
        assert server.stop() == 0, server.output()


def test_without_auto_unlock_an_auto_locked_server_is_not_ready(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, args=["--auto-lock-timeout", "1s"]).start()
    try:
        assert health(server, ready=True).status_code == 200
        poll(lambda: health(server).json()["locked"], "the auto-lock")
        assert health(server).status_code == 200  # alive
        not_ready = health(server, ready=True)
        assert not_ready.status_code == 503 and not_ready.json()["reason"] == "locked"
        v1 = httpx.get(f"{server.url}/v1/sys/health?ready=1", timeout=10)
        assert v1.status_code == 503
        with server.client() as api:
            assert api.get("/api/vault/secrets/a/b").status_code == 423
        assert metric(server, "strongroom_auto_unlock_enabled") == 0.0
        assert "auto_unlock" not in actions(server.dsn)
    finally:
        assert server.stop() == 0, server.output()


def test_auto_unlock_needs_a_key_source(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, master_key=None, args=["--auto-unlock"])
    with pytest.raises(RuntimeError, match="--auto-unlock needs a key source"):
        server.start()
    assert server.proc is not None and server.proc.returncode == 2


def test_cleanup_job_removes_expired_secrets_and_refreshes_gauges(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, args=["--cleanup-interval", "1s"]).start()
    try:
        with server.client() as api:
            for path, ttl in (("ttl/short", "1s"), ("ttl/long", "3d")):
                created = api.post(
                    "/api/vault/secrets", json={"path": path, "value": "v", "expires_in": ttl}
                )
                assert created.status_code == 201, created.text
        poll(
            lambda: "ttl/short" not in str(execute(server.dsn, "SELECT path FROM vault_secrets")),
            "the cleanup",
        )
        poll(lambda: metric(server, "strongroom_secrets_nearing_expiry") == 1.0, "the gauges")
        assert metric(server, "strongroom_secrets_expired") == 0.0
        rows = execute(
            server.dsn,
            "SELECT action, path, user_id FROM vault_audit_logs WHERE action IN ('cleanup', "
            "'delete') AND success",
        )
        assert ("delete", "ttl/short", 0) in [tuple(r) for r in rows]
        assert "ttl/long" in str(execute(server.dsn, "SELECT path FROM vault_secrets"))
    finally:
        assert server.stop() == 0, server.output()


def test_expired_gauge_with_cleanup_off(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, args=["--cleanup-interval", "0"])
    server.start()
    try:
        assert metric(server, "strongroom_secrets_expired") == 0.0
        assert "cleanup" not in actions(server.dsn)
    finally:
        assert server.stop() == 0, server.output()


def test_sigterm_finishes_in_flight_requests(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, args=["--shutdown-timeout", "20s"]).start()
    body = b'{"path": "slow/one", "value": "finished after SIGTERM"}'
    head = (
        f"POST /api/vault/secrets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token()}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + body[:10])  # in flight: the body is not complete yet
        time.sleep(0.3)  # let the server parse the head (no observable event to poll)
        assert server.proc is not None
        server.proc.terminate()

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            except OSError:
                return True
            return False

        poll(refused, "the listener to close")
        sock.sendall(body[10:])
        answer = sock.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 201"), answer
    assert server.proc.wait(timeout=30) == 0, server.output()
    assert "slow/one" in str(execute(server.dsn, "SELECT path FROM vault_secrets"))


def test_shutdown_timeout_bounds_a_stuck_request(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, args=["--shutdown-timeout", "1s"]).start()
    head = (
        f"POST /api/vault/secrets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token()}\r\nContent-Length: 100\r\n\r\n{{"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head)  # never completed
        time.sleep(0.3)
        started = time.monotonic()
        assert server.proc is not None
        server.proc.terminate()
        assert server.proc.wait(timeout=30) == 0, server.output()
    assert time.monotonic() - started < 15


@pytest.mark.postgres
def test_two_instances_start_at_once_on_a_fresh_database(tmp_path: Path, pg_dsn: str) -> None:
    servers = [
        ServerProcess(tmp_path / str(n), dsn=pg_dsn, args=["--cleanup-interval", "1s"])
        for n in range(2)
    ]
    for n in range(2):
        (tmp_path / str(n)).mkdir()
    errors: list[BaseException] = []

    def start(server: ServerProcess) -> None:
        try:
            server.start(deadline=120)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert execute(pg_dsn, "SELECT count(*) FROM vault_keys")[0][0] == 1
        assert actions(pg_dsn).count("init") == 1
        for server in servers:
            with server.client() as api:
                made = api.post(
                    "/api/vault/secrets",
                    json={"path": f"p/{server.port}", "value": "v", "expires_in": "1s"},
                )
                assert made.status_code == 201, made.text
            assert health(server, ready=True).status_code == 200
        # One leader runs the cleanup for both instances.
        poll(lambda: execute(pg_dsn, "SELECT count(*) FROM vault_secrets")[0][0] == 0, "cleanup")
        assert "cleanup" in actions(pg_dsn)
        cleaners = [s for s in servers if "cleanup removed" in s.output()]
        assert len(cleaners) == 1, [s.output() for s in servers]
    finally:
        for server in servers:
            assert server.stop() == 0, server.output()


def test_cleanup_job_unlocks_an_auto_locked_vault_only_when_needed(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path,
        args=["--auto-unlock", "--auto-lock-timeout", "1s", "--cleanup-interval", "1s"],
    ).start()
    try:
        with server.client() as api:
            made = api.post(
                "/api/vault/secrets", json={"path": "ttl/x", "value": "v", "expires_in": "10s"}
            )
            assert made.status_code == 201, made.text
        poll(lambda: health(server).json()["locked"], "the auto-lock")
        assert "auto_unlock" not in actions(server.dsn)  # nothing expired yet: stays locked
        poll(lambda: not execute(server.dsn, "SELECT path FROM vault_secrets"), "the cleanup")
        rows = [
            tuple(r)
            for r in execute(server.dsn, "SELECT action, user_id, path FROM vault_audit_logs")
        ]
        assert ("auto_unlock", 0, None) in rows and ("delete", 0, "ttl/x") in rows
    finally:
        assert server.stop() == 0, server.output()


class Gate:
    """A TCP proxy to PostgreSQL that the test can close: connections then hang (a network
    that swallows packets), and existing ones are cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.open = threading.Event()
        self.open.set()
        self.sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            if not self.open.is_set():
                continue  # accepted, never answered: the database "hangs"
            upstream = socket.create_connection(self.target)
            self.sockets.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.open.clear()
        for s in list(self.sockets):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restore(self) -> None:
        self.cut()  # the hung ones fail now, so the server reconnects through the open gate
        self.sockets.clear()
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.mark.postgres
def test_readiness_follows_the_database(tmp_path: Path, pg_dsn: str) -> None:
    gate = Gate(("127.0.0.1", 5432))
    dsn = pg_dsn.replace("127.0.0.1:5432", f"127.0.0.1:{gate.port}", 1)
    assert dsn != pg_dsn
    server = ServerProcess(tmp_path, dsn=dsn, args=["--cleanup-interval", "0"]).start()
    try:
        assert health(server, ready=True).status_code == 200
        gate.cut()
        started = time.monotonic()
        answer = health(server, ready=True)
        assert answer.status_code == 503 and answer.json()["reason"] == "database unavailable"
        assert time.monotonic() - started < 8
        assert health(server).status_code == 200  # alive all the same
        gate.restore()
        poll(lambda: health(server, ready=True).status_code == 200, "readiness again", 60)
    finally:
        gate.restore()
        assert server.stop() == 0, server.output()
        gate.close()
