"""Several worker processes share one lock state; SIGTERM shuts down without losing a write."""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from strongroom.http.balance import SLACK
from tests.integration.server_proc import MASTER_KEY, ServerProcess

pytestmark = pytest.mark.slow


def test_two_workers_unlock_and_lock_together(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path, workers=2, master_key=None).start()
    try:
        # Each request on a fresh connection, so the kernel spreads them over both workers.
        with proc.client() as api:
            assert api.post("/api/vault/unlock", json={"master_key": MASTER_KEY}).status_code == 200
            api.post("/api/vault/secrets", json={"path": "w/a", "value": "v"})
        for _ in range(20):
            with proc.client() as api:
                r = api.get("/api/vault/secrets/w/a")
                assert r.status_code == 200, r.text
        with proc.client() as api:
            assert api.post("/api/vault/lock").status_code == 200
        for _ in range(20):
            with proc.client() as api:
                assert api.get("/api/vault/secrets/w/a").status_code == 423
                assert api.get("/api/vault/health").json()["locked"] is True
        with proc.client() as api:
            logs_locked = api.get("/api/vault/status").json()["locked"]
            assert logs_locked is True
    finally:
        assert proc.stop() == 0, proc.output()


def test_auto_lock_applies_to_every_worker_and_health_is_not_activity(tmp_path: Path) -> None:
    proc = ServerProcess(
        tmp_path, workers=2, master_key=None, args=["--auto-lock-timeout", "2s"]
    ).start()
    try:
        with proc.client() as api:
            assert api.post("/api/vault/unlock", json={"master_key": MASTER_KEY}).status_code == 200
            api.post("/api/vault/secrets", json={"path": "w/b", "value": "v"})
        deadline = time.monotonic() + 30
        locked = False
        while time.monotonic() < deadline and not locked:
            with proc.client() as api:
                locked = api.get("/api/vault/health").json()["locked"]
            time.sleep(0.2)
        assert locked, "auto-lock never fired while only /health was polled"
        for _ in range(20):
            with proc.client() as api:
                assert api.get("/api/vault/secrets/w/b").status_code == 423
        with proc.client() as api:
            auto = api.post("/api/vault/unlock", json={"master_key": MASTER_KEY})
            assert auto.status_code == 200
            entries = api.get("/api/vault/audit", params={"action": "auto_lock"}).json()
            assert entries["count"] >= 1
    finally:
        assert proc.stop() == 0, proc.output()


def test_one_operation_is_one_audit_entry_with_two_workers(tmp_path: Path) -> None:
    """#11 item 14: siblings apply a relayed unlock, lock or auto-lock without auditing it."""
    proc = ServerProcess(
        tmp_path, workers=2, master_key=None, args=["--auto-lock-timeout", "2s"]
    ).start()

    def count(api: httpx.Client, action: str) -> int:
        found = api.get("/api/vault/audit", params={"action": action, "limit": 100}).json()
        return int(found["count"])

    try:
        with proc.client() as api:
            assert api.post("/api/vault/unlock", json={"master_key": MASTER_KEY}).status_code == 200
            assert api.post("/api/vault/lock").status_code == 200
            assert api.post("/api/vault/unlock", json={"master_key": MASTER_KEY}).status_code == 200
        deadline = time.monotonic() + 30
        while True:
            with proc.client() as api:
                if api.get("/api/vault/health").json()["locked"]:
                    break
            assert time.monotonic() < deadline, "auto-lock never fired"
            time.sleep(0.2)
        time.sleep(0.5)  # the audit entry of the auto-lock is written as the keys drop
        with proc.client() as api:
            assert api.post("/api/vault/unlock", json={"master_key": MASTER_KEY}).status_code == 200
            # The first unlock initialised the vault (its own entry), then three unlocks.
            assert (count(api, "unlock"), count(api, "lock"), count(api, "auto_lock")) == (3, 1, 1)
    finally:
        assert proc.stop() == 0, proc.output()


def test_sigterm_finishes_in_flight_writes(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path).start()
    with proc.client() as api:
        api.post("/api/vault/secrets", json={"path": "g/s", "value": "v0"})
    acknowledged: list[tuple[int, str]] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        with proc.client() as api:
            i = 0
            while not stop.is_set():
                value = f"w{n}-{i}"
                try:
                    r = api.put("/api/vault/secrets/g/s", json={"value": value})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    acknowledged.append((r.json()["version"], value))
                i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    status = proc.stop(signal.SIGTERM)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert status == 0, proc.output()
    assert "Traceback" not in proc.output()
    again = ServerProcess(tmp_path, dsn=proc.dsn).start()
    try:
        with again.client() as api:
            for number, value in acknowledged:
                r = api.get(f"/api/vault/secrets/g/s/versions/{number}")
                assert r.json()["value"] == value
    finally:
        assert again.stop() == 0


def test_a_dead_worker_stops_the_whole_server(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path, workers=2).start()
    assert proc.proc is not None
    try:
        workers = proc.children()
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        assert proc.proc.wait(timeout=60) == 1
        assert "exited unexpectedly" in proc.output()
    finally:
        proc.stop(signal.SIGKILL)


def test_workers_shut_down_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path, workers=2).start()
    assert proc.proc is not None
    try:
        workers = proc.children()
        assert len(workers) == 2
        proc.proc.kill()
        proc.proc.wait(timeout=30)
        deadline = time.monotonic() + 60
        alive = workers
        while alive and time.monotonic() < deadline:
            alive = [w for w in workers if _running(w)]
            time.sleep(0.1)
        assert alive == [], "workers kept running after their supervisor died"
    finally:
        proc.kill_leftovers()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_keep_alive_connections_are_spread_over_the_workers(tmp_path: Path) -> None:
    """A pool of keep-alive connections opened at once ends up half on each worker: a worker
    holding more answers with `Connection: close` and the pool reconnects (without
    `http.balance` the first worker to wake often kept all of them)."""
    proc = ServerProcess(tmp_path, workers=2).start()
    try:
        workers = proc.children()
        assert len(workers) == 2
        pool = [http.client.HTTPConnection("127.0.0.1", proc.port, timeout=30) for _ in range(16)]
        for conn in pool:
            conn.connect()  # all connected before the first request, as a pool warming up
        held: list[int] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for conn in pool:
                conn.request("GET", "/v1/sys/health")  # reconnects if the last answer closed
                response = conn.getresponse()
                response.read()
                assert response.status == 200
            held = [len(_connections_of(pid, proc.port)) for pid in workers]
            if sum(held) == 16 and max(held) - min(held) <= SLACK:
                break
        assert sum(held) == 16 and max(held) - min(held) <= SLACK, held
        for _ in range(3):  # balanced: kept as they are
            for conn in pool:
                conn.request("GET", "/v1/sys/health")
                response = conn.getresponse()
                response.read()
                assert response.getheader("connection", "").lower() != "close"
        for conn in pool:
            conn.close()
    finally:
        assert proc.stop() == 0, proc.output()


def _connections_of(pid: int, port: int) -> set[int]:
    """Socket inodes of `pid` that are established TCP connections to local `port`."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    established = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():  # (IPv6 disabled)
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # TCP_ESTABLISHED
                established.add(int(fields[9]))
    return inodes & established


def _affinities(pid: int) -> set[str]:
    """The CPU lists of every thread of process `pid`."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
        found.add(status.split("Cpus_allowed_list:", 1)[1].split()[0])
    return found


@pytest.mark.skipif(len(os.sched_getaffinity(0)) != 2, reason="needs exactly two CPUs")
def test_each_worker_and_all_its_threads_run_on_a_cpu_of_their_own(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path, workers=2).start()
    try:
        with proc.client() as api:  # (threads started: the pool and the writer)
            api.post("/api/vault/secrets", json={"path": "w/cpu", "value": "v"})
            assert api.get("/api/vault/secrets/w/cpu").status_code == 200
        workers = proc.children()
        assert len(workers) == 2
        first, second = sorted(os.sched_getaffinity(0))[:2]
        # The server answers once one worker listens: the other may still be starting, and
        # binds itself before it serves (poll until it has, or the deadline).
        deadline = time.monotonic() + 30
        while True:
            bound = [_affinities(pid) for pid in workers]
            if set().union(*bound) == {str(first), str(second)} or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert all(len(cpus) == 1 for cpus in bound), bound  # every thread on one CPU
        assert set().union(*bound) == {str(first), str(second)}, bound  # each on its own
    finally:
        assert proc.stop() == 0, proc.output()


def test_without_cpu_affinity_workers_keep_the_servers_cpus(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path, workers=2, args=["--no-cpu-affinity"]).start()
    try:
        workers = proc.children()
        assert len(workers) == 2
        for pid in workers:
            assert os.sched_getaffinity(pid) == os.sched_getaffinity(0)
    finally:
        assert proc.stop() == 0, proc.output()
