"""Outgoing events in the core, on each backend: the outbox is written with the change, the sender
delivers it signed to a real receiver, retries with back-off, and reminders are remembered."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from strongroom import Vault, errors, open_vault
from strongroom.clock import ManualClock
from strongroom.core.webhook_sender import Sender, SendOptions
from tests.conftest import MASTER_KEY, fast_config
from tests.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def sender(vault: Vault, **options: object) -> Sender:
    return Sender(vault.state, SendOptions(**options))  # type: ignore[arg-type]


def test_change_events_delivered_signed(vault: Vault, receiver: Receiver) -> None:
    hook = vault.events.add(receiver.url, events=["secret.created", "secret.updated"])
    vault.create_secret("app/db", "s3cret-value", request_id="req-9")
    vault.update_secret("app/db", "s3cret-value-2")
    vault.create_secret("other/x", "v")
    s = sender(vault)
    try:
        assert s.run() == 3
        s.drain()
    finally:
        s.close()
    # Deliveries run concurrently: arrival order is not promised (docs/events.md).
    got = {(d.json["event"], d.json["path"]): d for d in receiver.wait(3)}
    assert set(got) == {
        ("secret.created", "app/db"),
        ("secret.updated", "app/db"),
        ("secret.created", "other/x"),
    }
    created = got["secret.created", "app/db"]
    first = created.json
    assert first["version"] == 1 and first["request_id"] == "req-9"
    assert set(first) >= {"id", "event", "path", "version", "time", "actor"}
    assert got["secret.updated", "app/db"].json["version"] == 2
    assert all(d.verify(hook.secret) for d in got.values())
    assert not created.verify("wrong-secret")
    assert all(b"s3cret" not in d.body for d in got.values())
    assert created.headers["X-Strongroom-Delivery"] == first["id"]
    assert vault.events.pending() == 0


def test_prefix_filter_and_removal(vault: Vault, receiver: Receiver) -> None:
    hook = vault.events.add(receiver.url, path_prefix="app/")
    vault.create_secret("other/x", "v")
    vault.create_secret("app/y", "v")
    assert vault.events.pending() == 1
    vault.events.remove(hook.webhook.id)
    assert vault.events.pending() == 0
    with pytest.raises(errors.NotFound):
        vault.events.remove(hook.webhook.id)


def test_retries_with_backoff_then_delivered(
    vault: Vault, receiver: Receiver, clock: ManualClock
) -> None:
    receiver.fail_first = 3
    vault.events.add(receiver.url, events=["secret.updated"])
    vault.create_secret("app/db", "v1")
    vault.update_secret("app/db", "v2")
    s = sender(vault, retry_base=timedelta(seconds=10))
    try:
        for n, wait in enumerate((10, 20, 40)):
            assert s.run() == 1
            s.drain()
            assert receiver.attempts == n + 1
            assert s.run() == 0  # not due yet
            clock.advance(timedelta(seconds=wait))
        assert s.run() == 1
        s.drain()
    finally:
        s.close()
    assert [d.json["event"] for d in receiver.wait(1)] == ["secret.updated"]
    assert receiver.attempts == 4
    (listed,) = vault.events.list()
    assert listed.pending == 0 and listed.failed == 0


def test_gives_up_after_max_age(vault: Vault, receiver: Receiver, clock: ManualClock) -> None:
    receiver.fail_first = 1000
    vault.events.add(receiver.url, events=["secret.created"])
    vault.create_secret("app/db", "v1")
    s = sender(vault, retry_base=timedelta(hours=4), max_age=timedelta(hours=24))
    try:
        while s.run():
            s.drain()
            clock.advance(timedelta(hours=40))
    finally:
        s.close()
    (listed,) = vault.events.list()
    assert listed.failed == 1 and listed.pending == 0


def test_expiry_reminders_once_per_lead_time(
    vault: Vault, receiver: Receiver, clock: ManualClock
) -> None:
    vault.events.add(receiver.url, events=["secret.expiring", "secret.expired"])
    vault.create_secret("app/short", "v", expires_in=timedelta(hours=12))
    vault.create_secret("app/long", "v", expires_in=timedelta(days=20))
    vault.create_secret("app/never", "v")
    assert vault.events.remind() == 2  # short: lead 1 day; long: lead 30 days
    assert vault.events.remind() == 0  # remembered (in the database: survives a restart)
    clock.advance(timedelta(days=14))  # long is 6 days away: the 7-day reminder
    assert vault.events.remind() == 2  # short expired; long at 7 days
    s = sender(vault)
    try:
        s.run()
        s.drain()
    finally:
        s.close()
    got = [(d.json["event"], d.json["path"], d.json.get("lead_days")) for d in receiver.wait(4)]
    assert sorted(got, key=str) == sorted(
        [
            ("secret.expiring", "app/short", 1),
            ("secret.expiring", "app/long", 30),
            ("secret.expired", "app/short", None),
            ("secret.expiring", "app/long", 7),
        ],
        key=str,
    )


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[fe80::1]/x", "link-local"),
        # IPv6 forms that reach an IPv4 address: mapped, NAT64, 6to4 (review finding).
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://[::ffff:a9fe:a9fe]/", "link-local"),
        ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),
        ("http://[2002:a9fe:a9fe::1]/", "link-local"),
        ("http://0.0.0.0:8080/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://metadata.google.internal/x", "metadata"),
        ("http:///nohost", "no host"),
        ("", "non-empty"),
    ],
)
def test_bad_urls_refused(vault: Vault, url: str, needle: str) -> None:
    with pytest.raises(errors.InvalidInput, match=needle):
        vault.events.add(url)


def test_link_local_allowed_with_flag(vault: Vault) -> None:
    added = vault.events.add("http://169.254.169.254/hook", allow_link_local=True)
    assert added.webhook.allow_link_local
    with pytest.raises(errors.InvalidInput, match="unknown event"):
        vault.events.add("http://127.0.0.1/x", events=["secret.nope"])


def test_reminders_are_not_repeated_after_a_restart(dsn: str, clock: ManualClock) -> None:
    vault = open_vault(dsn, fast_config(clock=clock, auto_lock=False))
    vault.unlock(MASTER_KEY)
    vault.events.add("http://127.0.0.1:9/never", events=["secret.expiring"])
    vault.create_secret("app/x", "v", expires_in=timedelta(days=10))
    clock.advance(timedelta(days=3, hours=1))  # 7 days minus an hour left: the 7-day reminder
    assert vault.events.remind() == 1
    vault.close()
    again = open_vault(dsn, fast_config(clock=clock, auto_lock=False))
    try:
        assert again.events.remind() == 0  # remembered in vault_reminders, not in memory
        clock.advance(timedelta(days=6))  # under a day left: the 1-day reminder, once
        assert again.events.remind() == 1
        assert again.events.remind() == 0
        assert again.events.pending() == 2
    finally:
        again.close()


def test_nothing_sent_while_locked_then_everything_after_unlock(
    vault: Vault, receiver: Receiver
) -> None:
    vault.events.add(receiver.url)
    vault.create_secret("app/db", "v1", expires_in=timedelta(hours=12))
    vault.lock()
    s = sender(vault)
    try:
        assert vault.events.remind() == 1  # the scheduler needs no key
        assert s.run() == 0  # the signing keys derive from the vault's keys
        assert vault.events.pending() == 3  # created, locked, expiring: kept, not lost
        vault.unlock(MASTER_KEY)
        assert s.run() == 4
        s.drain()
    finally:
        s.close()
    got = sorted(d.json["event"] for d in receiver.wait(4))
    assert got == ["secret.created", "secret.expiring", "vault.locked", "vault.unlocked"]


def test_delivery_connects_to_the_address_it_checked(
    vault: Vault, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name resolves to the receiver when checked and to the metadata
    service afterwards; a delivery resolves once and connects where its check passed."""
    import socket

    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "127.0.0.1"] + ["169.254.169.254"] * 10)
    calls: list[str] = []

    def rebinding(host: str, *args: object, **kwargs: object) -> object:
        if host != "rebind.invalid":
            return real(host, *args, **kwargs)  # type: ignore[arg-type]
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), 0))]

    port = receiver.url.rsplit(":", 1)[1].split("/", 1)[0]
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    vault.events.add(f"http://rebind.invalid:{port}/hook", events=["secret.created"])
    vault.create_secret("app/rebind", "v")
    vault.create_secret("app/rebound", "v")
    s = sender(vault, retry_base=timedelta(hours=1))
    try:
        assert s.run() == 2
        s.drain()
    finally:
        s.close()
    # One resolution at add, one per delivery; the first delivery went to the receiver it
    # checked, the second resolved to the metadata address and was refused, not sent.
    assert calls == ["rebind.invalid"] * 3
    [delivery] = receiver.wait(1)
    assert delivery.headers["Host"] == f"rebind.invalid:{port}"
    assert vault.events.pending() == 1
    [hook] = vault.events.list()
    assert "link-local" in (hook.last_error or "")
