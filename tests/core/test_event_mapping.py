"""Which events a change produces, read straight from the outbox on each backend: one
`rotation.completed` per master-key rotation, and KV v2 deletes told apart from removals."""

from __future__ import annotations

import json

from strongroom import Vault, open_vault
from strongroom.clock import ManualClock
from tests.conftest import MASTER_KEY, fast_config
from tests.core.dbutil import raw_sql
from tests.core.test_rotation import fill, interrupted

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


def test_interrupted_rotation_completes_once_when_resumed(
    dsn: str, vault: Vault, clock: ManualClock
) -> None:
    vault.events.add("http://127.0.0.1:9/never", events=["rotation.completed"])
    fill(vault, 6, 2)
    interrupted(dsn, clock, MASTER_KEY, NEW_KEY, after=1)
    assert outbox(dsn) == []  # the atomic step committed, the rotation did not finish
    resumed = open_vault(dsn, fast_config(clock=clock))
    try:
        resumed.unlock(NEW_KEY)
        resumed.rotation.resume()
        assert [e["event"] for e in outbox(dsn)] == ["rotation.completed"]
        resumed.rotation.resume()  # nothing left to do: no second event
        assert len(outbox(dsn)) == 1
    finally:
        resumed.close()


def test_kv_deletes_are_told_apart(dsn: str, vault: Vault) -> None:
    vault.events.add(
        "http://127.0.0.1:9/never", events=["secret.deleted", "secret.version_deleted"]
    )
    for n in (1, 2, 3):
        vault.kv.write("app/k", {"n": n})
    vault.kv.delete_versions("app/k", [1])  # an older version: the secret stays readable
    vault.kv.destroy("app/k", [2])
    vault.kv.delete_latest("app/k")  # now a read of app/k fails
    vault.kv.destroy("app/k", [3])
    vault.kv.metadata.delete("app/k")  # the whole secret removed
    vault.kv.metadata.delete("app/never-there")  # nothing removed: no event
    vault.kv.metadata.write("meta/only", max_versions=3)  # a key with no version yet
    vault.kv.delete_latest("meta/only")  # no version touched: no event
    vault.delete_secret(vault.create_secret("plain", "v").path)
    got = [
        (e["event"], e["path"], e["version"], e.get("destroyed"), e.get("removed"))
        for e in outbox(dsn)
    ]
    assert got == [
        ("secret.version_deleted", "app/k", 3, False, False),
        ("secret.version_deleted", "app/k", 3, True, False),
        ("secret.deleted", "app/k", 3, False, False),
        ("secret.deleted", "app/k", 3, True, False),
        ("secret.deleted", "app/k", None, None, True),
        ("secret.deleted", "plain", None, None, True),
    ]
