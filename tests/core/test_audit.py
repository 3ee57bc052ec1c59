"""The audit trail: entry fields, the hash chain against an attacker with SQL access, queries,
export, and fail-closed writes. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from strongroom import Vault, errors, open_vault
from strongroom.clock import ManualClock
from tests.conftest import MASTER_KEY, fast_config
from tests.core.dbutil import raw_script, raw_sql

CANARY = f"CANARY-{uuid.uuid4()}"


def audit_ids(dsn: str) -> list[int]:
    return [r[0] for r in raw_sql(dsn, "SELECT id FROM vault_audit_logs ORDER BY id")]


def chained_ids(dsn: str) -> list[int]:
    rows = raw_sql(dsn, "SELECT id FROM vault_audit_logs WHERE mac IS NOT NULL ORDER BY id")
    return [r[0] for r in rows]


def populate(vault: Vault) -> None:
    for i in range(4):
        vault.create_secret(
            f"app/s{i}", f"{CANARY}-{i}", user_id=7, ip="10.0.0.1", request_id=f"req-{i}"
        )
        vault.get_secret(f"app/s{i}", user_id=8)
    vault.update_secret("app/s0", CANARY + "-new")


# -- entries ------------------------------------------------------------------------------
def test_entry_fields(vault: Vault, clock: ManualClock) -> None:
    info = vault.create_secret("db/password", CANARY, user_id=7, ip="10.1.2.3", request_id="r-1")
    clock.advance(timedelta(seconds=5))
    vault.get_secret("db/password", user_id=9, ip="10.9.9.9", request_id="r-2")
    with pytest.raises(errors.SecretNotFound):
        vault.get_secret("db/missing", user_id=9, request_id="r-3")

    missing, read, create = vault.audit_logs(limit=3)
    assert (create.action, create.path, create.secret_id, create.user_id) == (
        "create",
        "db/password",
        info.id,
        7,
    )
    assert (create.ip_address, create.success, create.error, create.request_id) == (
        "10.1.2.3",
        True,
        None,
        "r-1",
    )
    assert (read.action, read.user_id, read.ip_address, read.request_id) == (
        "read",
        9,
        "10.9.9.9",
        "r-2",
    )
    assert read.timestamp - create.timestamp == timedelta(seconds=5)
    assert read.timestamp == clock.now()
    assert (missing.action, missing.success, missing.error, missing.secret_id) == (
        "read",
        False,
        "SecretNotFound",
        None,
    )
    assert create.id < read.id < missing.id


def test_no_secret_or_key_in_any_column(dsn: str, vault: Vault) -> None:
    populate(vault)
    vault.rotate_all("rotated-" + MASTER_KEY)
    rows = raw_sql(dsn, "SELECT * FROM vault_audit_logs")
    text = json.dumps([[str(c) for c in r] for r in rows])
    assert CANARY not in text
    assert MASTER_KEY not in text
    exported = json.dumps(list(vault.export_audit()))
    assert CANARY not in exported and MASTER_KEY not in exported


# -- the chain ------------------------------------------------------------------------------
def test_intact_chain(dsn: str, vault: Vault) -> None:
    populate(vault)
    result = vault.verify_audit()
    assert result.ok and result.first_bad_id is None
    assert result.entries == len(chained_ids(dsn)) == len(audit_ids(dsn))


@pytest.mark.parametrize(
    "column, value",
    [("action", "'delete'"), ("user_id", "99"), ("success", "0"), ("path", "'app/other'")],
)
def test_edited_row_detected_at_its_id(dsn: str, vault: Vault, column: str, value: str) -> None:
    populate(vault)
    ids = audit_ids(dsn)
    target = ids[len(ids) // 2]
    if column == "success" and not dsn.startswith("sqlite"):
        value = "false"
    raw_sql(dsn, f"UPDATE vault_audit_logs SET {column} = {value} WHERE id = ?", (target,))
    result = vault.verify_audit()
    assert not result.ok
    assert result.first_bad_id == target
    assert result.entries == ids.index(target) + 1


def test_deleted_row_detected_at_the_next_entry(dsn: str, vault: Vault) -> None:
    populate(vault)
    ids = audit_ids(dsn)
    victim = ids[3]
    raw_sql(dsn, "DELETE FROM vault_audit_logs WHERE id = ?", (victim,))
    result = vault.verify_audit()
    assert (result.ok, result.first_bad_id) == (False, ids[4])


def test_deleted_first_row_detected(dsn: str, vault: Vault) -> None:
    populate(vault)
    ids = audit_ids(dsn)
    raw_sql(dsn, "DELETE FROM vault_audit_logs WHERE id = ?", (ids[0],))
    assert vault.verify_audit().first_bad_id == ids[1]


def test_inserted_row_detected_at_its_id(dsn: str, vault: Vault) -> None:
    populate(vault)
    last_id, last_mac, stamp = raw_sql(
        dsn, "SELECT id, mac, timestamp FROM vault_audit_logs ORDER BY id DESC LIMIT 1"
    )[0]
    # A forged entry that reuses a genuine MAC (the attacker cannot compute a new one).
    raw_sql(
        dsn,
        "INSERT INTO vault_audit_logs (timestamp, secret_id, path, user_id, action, "
        "ip_address, success, error, request_id, mac) "
        "VALUES (?, NULL, 'app/s1', 1, 'read', 'cli', ?, NULL, NULL, ?)",
        (stamp, True, last_mac),
    )
    forged = audit_ids(dsn)[-1]
    assert forged > last_id
    vault.get_secret("app/s1")  # a genuine entry after the forgery
    result = vault.verify_audit()
    assert (result.ok, result.first_bad_id) == (False, forged)


def test_swapped_macs_detected(dsn: str, vault: Vault) -> None:
    populate(vault)
    ids = audit_ids(dsn)
    a, b = ids[2], ids[5]
    mac_a = raw_sql(dsn, "SELECT mac FROM vault_audit_logs WHERE id = ?", (a,))[0][0]
    mac_b = raw_sql(dsn, "SELECT mac FROM vault_audit_logs WHERE id = ?", (b,))[0][0]
    raw_sql(dsn, "UPDATE vault_audit_logs SET mac = ? WHERE id = ?", (mac_b, a))
    raw_sql(dsn, "UPDATE vault_audit_logs SET mac = ? WHERE id = ?", (mac_a, b))
    assert vault.verify_audit().first_bad_id == a


def test_nulled_mac_detected_at_that_entry(dsn: str, vault: Vault) -> None:
    populate(vault)
    ids = audit_ids(dsn)
    raw_sql(dsn, "UPDATE vault_audit_logs SET mac = NULL WHERE id = ?", (ids[2],))
    assert vault.verify_audit().first_bad_id == ids[2]


def test_unchained_entries_do_not_break_the_chain(dsn: str, clock: ManualClock) -> None:
    vault = open_vault(dsn, fast_config(clock=clock))
    try:
        vault.unlock(MASTER_KEY)
        vault.create_secret("a", "1")
        vault.lock()
        with pytest.raises(errors.InvalidMasterKey):
            vault.unlock("wrong-master-key-xxxxxx")
        with pytest.raises(errors.VaultLocked):
            vault.get_secret("a")
        vault.unlock(MASTER_KEY)
        vault.get_secret("a")
        result = vault.verify_audit()
        assert result.ok and result.unchained == 2
        assert result.entries == len(chained_ids(dsn))
        failed = vault.audit_logs(action="unlock", limit=5)
        assert [(e.success, e.error) for e in failed][:2] == [
            (True, None),
            (False, "InvalidMasterKey"),
        ]
    finally:
        vault.close()


def test_verify_needs_unlocked_vault(vault: Vault) -> None:
    vault.lock()
    with pytest.raises(errors.VaultLocked):
        vault.verify_audit()


def test_two_instances_write_one_chain(dsn: str, vault: Vault, clock: ManualClock) -> None:
    other = open_vault(dsn, fast_config(clock=clock))
    try:
        other.unlock(MASTER_KEY)
        for i in range(5):
            vault.create_secret(f"x/{i}", "v")
            other.get_secret(f"x/{i}")
            other.update_secret(f"x/{i}", "w")
        assert vault.verify_audit().ok and other.verify_audit().ok
    finally:
        other.close()


# -- queries ----------------------------------------------------------------------------------
def test_audit_logs_filters_newest_first(vault: Vault, clock: ManualClock) -> None:
    vault.create_secret("p/a", "1", user_id=1)
    vault.create_secret("p/b", "1", user_id=2)
    start = clock.now()
    clock.advance(timedelta(minutes=1))
    middle = clock.now()
    vault.get_secret("p/a", user_id=2)
    vault.update_secret("p/a", "2", user_id=1)
    vault.get_secret("p/b", user_id=2)

    by_path = vault.audit_logs(path="p/a")
    assert [e.action for e in by_path] == ["update", "read", "create"]
    assert [e.id for e in by_path] == sorted((e.id for e in by_path), reverse=True)
    assert {e.path for e in vault.audit_logs(user_id=2)} == {"p/a", "p/b"}
    assert all(e.user_id == 2 for e in vault.audit_logs(user_id=2))
    assert [e.path for e in vault.audit_logs(action="read")] == ["p/b", "p/a"]
    assert [e.action for e in vault.audit_logs(since=middle)] == ["read", "update", "read"]
    assert len(vault.audit_logs(since=start)) > 3
    assert [e.path for e in vault.audit_logs(action="read", user_id=2, path="p/b")] == ["p/b"]
    assert len(vault.audit_logs(limit=2)) == 2
    assert vault.audit_logs(limit=1)[0].path == "p/b"
    with pytest.raises(errors.InvalidInput):
        vault.audit_logs(limit=0)
    with pytest.raises(errors.InvalidInput):
        vault.audit_logs(since=middle.replace(tzinfo=None))


def test_export_since_oldest_first(vault: Vault, clock: ManualClock) -> None:
    vault.create_secret("e/a", "1", request_id="r-a")
    clock.advance(timedelta(minutes=10))
    cut = clock.now()
    vault.get_secret("e/a", ip="10.0.0.5")
    rows = list(vault.export_audit(since=cut))
    assert [r["action"] for r in rows] == ["read", "audit_export"]
    assert rows[0] == {
        "id": rows[0]["id"],
        "timestamp": "2025-11-03T10:10:00.000000Z",
        "secret_id": rows[0]["secret_id"],
        "path": "e/a",
        "user_id": 1,
        "action": "read",
        "ip_address": "10.0.0.5",
        "success": True,
        "error": None,
        "request_id": None,
        "mac": rows[0]["mac"],
    }
    assert len(str(rows[0]["mac"])) == 64  # HMAC-SHA256, hex
    everything = list(vault.export_audit())
    ids = [int(str(r["id"])) for r in everything]
    assert ids == sorted(ids)
    assert everything[0]["action"] == "init" and everything[0]["mac"]
    for row in everything:
        json.dumps(row)  # JSON-ready
    with pytest.raises(errors.InvalidInput):
        vault.export_audit(since=cut.replace(tzinfo=None))
    vault.lock()
    with pytest.raises(errors.VaultLocked):
        vault.export_audit()


def test_export_streams_many_batches(vault: Vault) -> None:
    vault.create_secret("many", "1")
    with ThreadPoolExecutor(16) as pool:  # concurrent calls share commits: fast
        list(pool.map(lambda _: vault.generate_token(8), range(1100)))
    assert sum(1 for _ in vault.export_audit()) == len(vault.audit_logs(limit=10_000))


# -- fail-closed ------------------------------------------------------------------------------
SQLITE_DENY = """
CREATE TRIGGER deny_audit BEFORE INSERT ON vault_audit_logs
BEGIN SELECT RAISE(ABORT, 'audit unavailable'); END;
"""
PG_DENY = """
CREATE FUNCTION deny_audit() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'audit unavailable'; END $$;
CREATE TRIGGER deny_audit BEFORE INSERT ON vault_audit_logs
FOR EACH ROW EXECUTE FUNCTION deny_audit();
"""


def test_fail_closed_when_audit_cannot_be_written(dsn: str, vault: Vault) -> None:
    vault.create_secret("fc/a", CANARY)
    before = raw_sql(dsn, "SELECT COUNT(*) FROM vault_audit_logs")[0][0]
    raw_script(dsn, SQLITE_DENY, PG_DENY)

    with pytest.raises(errors.StorageUnavailable):
        vault.update_secret("fc/a", "changed")
    with pytest.raises(errors.StorageUnavailable):
        vault.create_secret("fc/b", "new")
    with pytest.raises(errors.StorageUnavailable):
        vault.get_secret("fc/a")  # the value is never returned without its entry
    with pytest.raises(errors.StorageUnavailable):
        vault.rotate_secret("fc/a")
    with pytest.raises(errors.StorageUnavailable):
        vault.rotate_all("another-master-key-0123")

    assert raw_sql(dsn, "SELECT COUNT(*) FROM vault_secret_versions")[0][0] == 1
    assert raw_sql(dsn, "SELECT version FROM vault_secrets")[0][0] == 1
    assert raw_sql(dsn, "SELECT COUNT(*) FROM vault_secrets WHERE path = 'fc/b'")[0][0] == 0
    assert raw_sql(dsn, "SELECT rotation FROM vault_keys")[0][0] is None
    assert raw_sql(dsn, "SELECT COUNT(*) FROM vault_key_terms")[0][0] == 1
    assert raw_sql(dsn, "SELECT COUNT(*) FROM vault_audit_logs")[0][0] == before

    raw_sql(
        dsn,
        "DROP TRIGGER deny_audit" + ("" if dsn.startswith("sqlite") else " ON vault_audit_logs"),
    )
    assert vault.get_secret("fc/a") == CANARY
    assert [v.version for v in vault.list_versions("fc/a")] == [1]
    assert vault.verify_audit().ok
    # The master key did not change: a fresh instance still opens with it.
    with open_vault(dsn, fast_config()) as fresh:
        fresh.unlock(MASTER_KEY)
