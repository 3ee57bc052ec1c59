"""Webhooks end to end: a real server, a real receiver on a loopback port. Signed expiry reminders
and change events, delivery after SIGKILL, retries, a hanging receiver, and refused input."""

from __future__ import annotations

import signal
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration import server_proc
from tests.integration.cli_support import Vaultctl, one_error_line
from tests.receiver import Receiver

FAST = {
    "STRONGROOM_WEBHOOK_INTERVAL": "0.1",
    "STRONGROOM_REMINDER_INTERVAL": "0.2",
    "STRONGROOM_WEBHOOK_RETRY_BASE": "0.1",
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def wait_for_metric(http: httpx.Client, line: str, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while line not in (text := http.get("/metrics").text):
        assert time.monotonic() < end, text
        time.sleep(0.05)


def add_hook(http: httpx.Client, url: str, **body: object) -> dict[str, object]:
    r = http.post("/api/vault/webhooks", json={"url": url, **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_signed_expiring_and_updated(tmp_path: Path, receiver: Receiver) -> None:
    server = server_proc.ServerProcess(tmp_path, env=FAST).start()
    try:
        with server.client() as http:
            hook = add_hook(http, receiver.url, events=["secret.expiring", "secret.updated"])
            secret = str(hook["secret"])
            r = http.post(
                "/api/vault/secrets",
                json={"path": "app/short", "value": "s3cret", "expires_in": "1h"},
            )
            assert r.status_code == 201
            (expiring,) = receiver.wait(1)
            assert expiring.verify(secret)
            body = expiring.json
            assert body["event"] == "secret.expiring" and body["path"] == "app/short"
            assert body["lead_days"] == 1 and body["version"] == 1
            assert http.put("/api/vault/secrets/app/short", json={"value": "v2"}).status_code == 200
            updated = receiver.wait(2)[1]
            assert updated.verify(secret) and updated.json["event"] == "secret.updated"
            assert updated.json["version"] == 2 and updated.json["actor"]["user_id"] == 1
            assert all(
                b"s3cret" not in d.body and b'v2"' not in d.body for d in receiver.deliveries
            )
            # The receiver has the event a moment before the sender records it.
            wait_for_metric(http, 'strongroom_webhook_deliveries_total{result="delivered"} 2.0')
            wait_for_metric(http, "strongroom_outbox_pending 0.0")
    finally:
        server.stop()


def test_event_committed_before_a_crash_is_delivered_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    # A sender that never runs in time: the event is committed, then the server is killed.
    slow = {**FAST, "STRONGROOM_WEBHOOK_INTERVAL": "3600"}
    server = server_proc.ServerProcess(tmp_path, env=slow).start()
    with server.client() as http:
        add_hook(http, receiver.url, events=["secret.created"])
        assert (
            http.post("/api/vault/secrets", json={"path": "a/b", "value": "v"}).status_code == 201
        )
    server.stop(signal.SIGKILL)
    assert receiver.attempts == 0
    server = server_proc.ServerProcess(tmp_path, dsn=server.dsn, env=FAST).start()
    try:
        (got,) = receiver.wait(1)
        assert got.json["event"] == "secret.created" and got.json["path"] == "a/b"
        with server.client() as http:
            deadline = time.monotonic() + 10
            while http.get("/api/vault/webhooks").json()["webhooks"][0]["pending"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert len(receiver.deliveries) == 1 and receiver.attempts == 1
    finally:
        server.stop()


def test_receiver_failing_three_times_gets_the_fourth(tmp_path: Path) -> None:
    receiver = Receiver(fail_first=3).start()
    server = server_proc.ServerProcess(tmp_path, env=FAST).start()
    try:
        with server.client() as http:
            add_hook(http, receiver.url, events=["secret.created"])
            http.post("/api/vault/secrets", json={"path": "a/b", "value": "v"})
            (got,) = receiver.wait(1)
            assert receiver.attempts == 4 and got.json["event"] == "secret.created"
            wait_for_metric(http, 'strongroom_webhook_deliveries_total{result="retry"} 3.0')
            wait_for_metric(http, 'strongroom_webhook_deliveries_total{result="delivered"} 1.0')
    finally:
        server.stop()
        receiver.stop()


def p99_of_reads(http: httpx.Client, n: int = 300) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        assert http.get("/api/vault/secrets/app/read").status_code == 200
        times.append(time.perf_counter() - start)
    return statistics.quantiles(times, n=100)[98]


def test_hanging_receiver_does_not_slow_reads(tmp_path: Path) -> None:
    hanging = Receiver(hang=30).start()
    env = {**FAST, "STRONGROOM_WEBHOOK_TIMEOUT": "20"}
    server = server_proc.ServerProcess(tmp_path, env=env).start()
    try:
        with server.client() as http:
            http.post("/api/vault/secrets", json={"path": "app/read", "value": "v"})
            p99_quiet = p99_of_reads(http)
            add_hook(http, hanging.url)
            for i in range(20):  # 20 events: the sender's 8 slots all hang on the receiver
                http.put("/api/vault/secrets/app/read", json={"value": f"v{i}"})
            deadline = time.monotonic() + 20
            while hanging.attempts < 8:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            p99_hanging = p99_of_reads(http)
        print(f"\nread p99: {p99_quiet * 1000:.1f} ms quiet, {p99_hanging * 1000:.1f} ms hanging")
        assert hanging.attempts == 8  # at most 8 in flight
        assert p99_hanging < max(3 * p99_quiet, p99_quiet + 0.05)
    finally:
        server.stop()
        hanging.server.server_close()


def test_bad_webhooks_are_clear_400s(tmp_path: Path) -> None:
    server = server_proc.ServerProcess(tmp_path).start()
    try:
        with server.client() as http:
            for url, needle in [
                ("ftp://example.com/", "http:// or https://"),
                ("gopher://127.0.0.1/", "http:// or https://"),
                ("http://169.254.169.254/latest/meta-data/", "link-local"),
                ("not a url", "http:// or https://"),
            ]:
                r = http.post("/api/vault/webhooks", json={"url": url})
                assert r.status_code == 400 and needle in r.json()["error"], (url, r.text)
            r = http.post("/api/vault/webhooks", json={"url": 5})
            assert r.status_code == 400
            r = http.post("/api/vault/webhooks", json={"url": "http://x/", "allow_link_local": "y"})
            assert r.status_code == 400
            r = http.post(
                "/api/vault/webhooks",
                json={"url": "http://169.254.169.254/", "allow_link_local": True},
            )
            assert r.status_code == 201 and "secret" in r.json()
            assert http.delete("/api/vault/webhooks/999").status_code == 404
            assert http.post("/api/vault/webhooks/999/test").status_code == 404
        with server.client("Reader") as reader:
            assert reader.get("/api/vault/webhooks").status_code == 403
            assert reader.post("/api/vault/webhooks", json={"url": "http://a/"}).status_code == 403
    finally:
        server.stop()


def test_cli_webhook_commands(tmp_path: Path, receiver: Receiver) -> None:
    vc = Vaultctl(f"sqlite:///{tmp_path / 'v.db'}", tmp_path)
    vc.ok("create", "--path", "a/b", "--value", "v")
    out = vc.ok("webhook", "add", "--url", receiver.url, "--event", "secret.updated")
    assert out.startswith("Webhook 1 added for ") and "Signing secret (shown once): " in out
    listed = vc.ok("webhook", "list")
    assert "ID: 1" in listed and "Events: secret.updated" in listed
    assert "Test event" in vc.ok("webhook", "test", "--id", "1")
    assert "Pending: 1" in vc.ok("webhook", "list")
    assert vc.ok("webhook", "remove", "--id", "1") == "Webhook 1 removed\n"
    one_error_line(vc("webhook", "remove", "--id", "1"), 1, "no webhook 1")
    r = vc("webhook", "add", "--url", "http://169.254.169.254/")
    one_error_line(r, 2, "link-local")


@pytest.mark.postgres
def test_one_sender_across_two_instances(tmp_path: Path, pg_dsn: str, receiver: Receiver) -> None:
    servers = [
        server_proc.ServerProcess(tmp_path / name, dsn=pg_dsn, env=FAST) for name in ("a", "b")
    ]
    for s in servers:
        (tmp_path / Path(s.log).parent.name).mkdir(exist_ok=True)
        s.start()
    try:
        with servers[0].client() as a, servers[1].client() as b:
            add_hook(a, receiver.url, events=["secret.created"])
            for i in range(10):
                http = a if i % 2 else b
                assert (
                    http.post(
                        "/api/vault/secrets", json={"path": f"p/{i}", "value": "v"}
                    ).status_code
                    == 201
                )
            got = receiver.wait(10)
            deadline = time.monotonic() + 10
            while a.get("/api/vault/webhooks").json()["webhooks"][0]["pending"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        ids = [d.json["id"] for d in receiver.deliveries]
        assert len(ids) == len(set(ids)) == 10  # each event once: one sender for both
        assert sorted(d.json["path"] for d in got) == sorted(f"p/{i}" for i in range(10))
    finally:
        for s in servers:
            s.stop()
