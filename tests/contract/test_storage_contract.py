"""One storage contract suite, run over SQLite and PostgreSQL (OpenBao's ExerciseBackend idea)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from strongroom import errors
from strongroom.storage import KeysRow, NewAudit, Storage, TermRow, VersionRow, open_storage

NOW = datetime(2025, 11, 3, 10, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def storage(dsn: str) -> Iterator[Storage]:
    s = open_storage(dsn)
    yield s
    s.dispose()


def test_migrations_are_idempotent(dsn: str) -> None:
    open_storage(dsn).dispose()
    open_storage(dsn).dispose()  # already at head: nothing to do, no error


def test_keys_and_terms_round_trip(storage: Storage) -> None:
    with storage.write() as tx:
        assert tx.keys.get_keys() is None
        tx.keys.put_keys(KeysRow("vid", b"\x00salt\xff", {"alg": "argon2id"}, "wrapped"), NOW)
        tx.keys.add_term(TermRow(1, "k1", NOW))
        assert tx.keys.reserve_encryptions(1, 10) == 10
        assert tx.keys.reserve_encryptions(1, 5) == 15
    with storage.write() as tx:
        tx.keys.put_keys(KeysRow("vid", b"salt2", {"alg": "argon2id"}, "rewrapped", {"t": 2}), NOW)
    with storage.read() as tx:
        keys = tx.keys.get_keys()
        assert keys == KeysRow("vid", b"salt2", {"alg": "argon2id"}, "rewrapped", {"t": 2})
        assert tx.keys.terms() == [TermRow(1, "k1", NOW, 15)]
        assert tx.keys.max_term() == 1


def test_secret_and_versions(storage: Storage) -> None:
    with storage.write() as tx:
        sid = tx.secrets.insert_secret("a/b", "desc", 1, NOW, NOW + timedelta(days=1))
        tx.secrets.insert_version(VersionRow(sid, 1, "env1", 1, 1, NOW))
        # A refused insert fails only the savepoint around it (every core job has one).
        with pytest.raises(errors.SecretExists), tx.savepoint():
            tx.secrets.insert_secret("a/b", None, 1, NOW, None)
        with pytest.raises(errors.VersionConflict), tx.savepoint():
            tx.secrets.insert_version(VersionRow(sid, 1, "dup", 1, 1, NOW))
        tx.secrets.insert_version(VersionRow(sid, 2, "env2", 1, 2, NOW))
        tx.secrets.update_secret(sid, version=2, updated_at=NOW)
    with storage.read() as tx:
        row = tx.secrets.secret_by_path("a/b")
        assert row is not None and row.version == 2 and row.expires_at == NOW + timedelta(days=1)
        assert row.created_at == NOW and row.created_at.tzinfo is not None
        found = tx.secrets.secret_with_version("a/b")
        assert found is not None and found[1] is not None and found[1].value == "env2"
        old = tx.secrets.secret_with_version("a/b", 1)
        assert old is not None and old[1] is not None and old[1].value == "env1"
        missing = tx.secrets.secret_with_version("a/b", 9)
        assert missing is not None and missing[1] is None
        assert [v.version for v in tx.secrets.versions(sid)] == [2, 1]
        assert tx.secrets.expired_secrets(NOW + timedelta(days=2))[0].path == "a/b"
        assert tx.secrets.expired_secrets(NOW) == []


def test_savepoint_undoes_only_its_block(storage: Storage) -> None:
    with storage.write() as tx:
        tx.secrets.insert_secret("kept", None, 1, NOW, None)
        with pytest.raises(RuntimeError), tx.savepoint():
            tx.secrets.insert_secret("undone", None, 1, NOW, None)
            raise RuntimeError("boom")
    with storage.read() as tx:
        assert [r.path for r in tx.secrets.list_secrets()] == ["kept"]


def test_prefix_is_literal(storage: Storage) -> None:
    with storage.write() as tx:
        for path in ["a_b/x", "aXb/y", "A_b/z", "a%/w"]:
            tx.secrets.insert_secret(path, None, 1, NOW, None)
    with storage.read() as tx:
        assert [r.path for r in tx.secrets.list_secrets("a_")] == ["a_b/x"]
        assert [r.path for r in tx.secrets.list_secrets("a%")] == ["a%/w"]
        assert [r.path for r in tx.secrets.list_secrets("")] == sorted(
            ["a_b/x", "aXb/y", "A_b/z", "a%/w"]
        )


def test_ids_are_never_reused(storage: Storage) -> None:
    with storage.write() as tx:
        first = tx.secrets.insert_secret("x/1", None, 1, NOW, None)
        tx.secrets.delete_secret(first)
        second = tx.secrets.insert_secret("x/2", None, 1, NOW, None)
    assert second > first


def test_audit_rows(storage: Storage) -> None:
    entry = NewAudit(NOW, None, "p", 1, "read", "cli", True, None, "r1")
    with storage.write() as tx:
        assert tx.audit.last_audit_mac() is None
        first = tx.audit.insert_audit(entry, "mac1")
        tx.audit.insert_audit(entry, "sha256:" + "0" * 64)
    with storage.read() as tx:
        assert tx.audit.last_audit_mac() == "sha256:" + "0" * 64
        rows = tx.audit.scan_audit(0, 10)
        assert [r.mac for r in rows] == ["mac1", "sha256:" + "0" * 64] and rows[0].id == first
        assert tx.audit.query_audit(path="p", limit=1)[0].id == rows[1].id
        assert tx.audit.query_audit(action="nope") == []


def test_unreachable_database_is_storage_unavailable() -> None:
    with pytest.raises(errors.StorageUnavailable):
        open_storage("postgresql://nobody@127.0.0.1:1/none")


@pytest.mark.parametrize(
    "dsn_text",
    ["mysql://x/y", "nonsense", "sqlite://", "sqlite:///:memory:", "sqlite:////no/such/dir/v.db"],
)
def test_bad_dsn_is_invalid_input(dsn_text: str) -> None:
    with pytest.raises(errors.InvalidInput):
        open_storage(dsn_text)


def test_sqlite_is_wal_and_durable(sqlite_dsn: str) -> None:
    s = open_storage(sqlite_dsn)
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    s.dispose()


def test_new_sqlite_files_are_owner_only(tmp_path: Path) -> None:
    s = open_storage(f"sqlite:///{tmp_path / 'v.db'}")
    with s.write() as tx:
        tx.secrets.insert_secret("a/b", None, 1, NOW, None)
    for name in ("v.db", "v.db-wal", "v.db-shm"):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0, name
    s.dispose()


def test_leadership_lease(dsn: str, storage: Storage) -> None:
    """One holder at a time on PostgreSQL (per schema); on SQLite the server designates one
    process, so the lease is always granted; expired secrets are counted."""
    other = open_storage(dsn)
    try:
        first = storage.try_lead("jobs")
        assert first is not None and first.is_held()
        second = other.try_lead("jobs")
        if storage.dialect == "postgresql":
            assert second is None
            unrelated = other.try_lead("another-job")
            assert unrelated is not None
            unrelated.release()
            first.release()
            second = other.try_lead("jobs")
        assert second is not None and second.is_held()
        second.release()
        first.release()  # idempotent
    finally:
        other.dispose()
    now = datetime(2030, 1, 1, tzinfo=UTC)
    with storage.read() as tx:
        assert tx.secrets.count_expired(now) == 0
