"""`core.events.EventStore` (`tx.events`) and the audit sink's `insert_audits_returning`, on
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from strongroom.core.events import EventStore
from strongroom.core.writer import AuditSink
from strongroom.storage import NewAudit, Storage, open_storage

NOW = datetime(2025, 11, 3, 10, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def storage(dsn: str) -> Iterator[Storage]:
    s = open_storage(dsn)
    yield s
    s.dispose()


def test_webhooks_outbox_and_reminders(storage: Storage) -> None:
    with storage.write() as tx:
        store: EventStore = tx.events
        wid = store.add_webhook(
            "http://127.0.0.1/h", ("secret.created",), "app/", "n1", False, 1, NOW
        )
        other = store.add_webhook("http://127.0.0.1/o", (), "", "n2", True, 1, NOW)
        store.enqueue(
            [
                {
                    "webhook_id": wid,
                    "event_id": f"e{i}",
                    "event": "secret.created",
                    "body": "{}",
                    "created_at": NOW,
                    "next_attempt_at": NOW + timedelta(seconds=i),
                }
                for i in range(3)
            ]
        )
        sid = tx.secrets.insert_secret("app/x", None, 1, NOW, NOW + timedelta(days=2))
    with storage.read() as tx:
        store = tx.events
        hooks = store.webhooks(with_counts=True)
        assert [(h.id, h.events, h.path_prefix, h.pending) for h in hooks] == [
            (wid, ("secret.created",), "app/", 3),
            (other, (), "", 0),
        ]
        due = store.due(NOW + timedelta(seconds=1), 10)
        assert [d.event_id for d in due] == ["e0", "e1"]
        assert store.pending_count() == 3
        assert store.current_version(sid) == 1 and store.current_version(sid + 100) is None
        assert [(i, p) for i, p, _, _ in store.expiring(NOW + timedelta(days=3), 10)] == [
            (sid, "app/x")
        ]
    with storage.write() as tx:
        store = tx.events
        store.settle(due[0].id, "delivered", 1, NOW, NOW, None)
        store.settle(due[1].id, "failed", 5, NOW, None, "receiver answered 500")
        store.remember([(sid, NOW + timedelta(days=2), 7)], NOW)
    with storage.read() as tx:
        store = tx.events
        (first, _) = store.webhooks(with_counts=True)
        assert (first.pending, first.failed) == (1, 1)
        assert store.last_failure(wid) == "receiver answered 500"
        assert store.reminded([sid]) == {(sid, NOW + timedelta(days=2), 7)}
    with storage.write() as tx:  # pending stays; delivered goes; failed once old enough
        assert tx.events.prune(NOW, 10) == 1
        assert tx.events.prune(NOW + timedelta(seconds=1), 10) == 1
        assert tx.events.prune(NOW + timedelta(days=1), 10) == 0
        assert tx.events.pending_count() == 1
    with storage.write() as tx:
        assert tx.events.remove_webhook(wid) and not tx.events.remove_webhook(wid)
    with storage.read() as tx:
        assert tx.events.pending_count() == 0


def test_insert_audits_returning_gives_ids_in_order(storage: Storage) -> None:
    entries: list[tuple[NewAudit, str | None]] = [
        (NewAudit(NOW, None, f"p/{i}", 1, "read", "cli", True, None, None), f"mac{i}")
        for i in range(5)
    ]
    with storage.write() as tx:
        sink: AuditSink = tx.audit
        ids = sink.insert_audits_returning(entries)
        assert sink.insert_audits_returning([]) == []
    assert ids == sorted(ids) and len(set(ids)) == 5
    with storage.read() as tx:
        rows = tx.audit.scan_audit(0, 10)
    assert [(r.id, r.path, r.mac) for r in rows] == [
        (i, f"p/{n}", f"mac{n}") for n, i in enumerate(ids)
    ]
