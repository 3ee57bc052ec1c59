"""Which events a change produces, read straight from the outbox on each backend: one
`rotation.completed` per master-key rotation, and KV v2 deletes told apart from removals."""

from __future__ import annotations

import json

from strongroom import Vault
from tests.core.dbutil import raw_sql

NEW_KEY = "a-fresh-master-key-4812"


def outbox(dsn: str) -> list[dict[str, object]]:
    rows = raw_sql(dsn, "SELECT body FROM vault_outbox ORDER BY id")
    return [json.loads(r[0]) for r in rows]


def test_master_key_rotation_completes_once(dsn: str, vault: Vault) -> None:
    vault.events.add("http://127.0.0.1:9/never", events=["rotation.completed"])
    vault.create_secret("app/a", "v")
    vault.rotate_all(NEW_KEY)
    (event,) = outbox(dsn)
    assert event["event"] == "rotation.completed" and event["path"] is None
    vault.rotate_all("yet-another-master-key-77")
    assert len(outbox(dsn)) == 2  # a second rotation: a second event
    vault.rotate_secret("app/a")
    assert [e["path"] for e in outbox(dsn)] == [None, None, "app/a"]
