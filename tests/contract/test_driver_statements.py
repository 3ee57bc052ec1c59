"""Driver-level statements (`txbase.fetch_first`/`fetch_column`), the folder listing built on
them (`kv_paths`) and threads' own read connections (`Storage.pin_thread`), on every backend."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from strongroom import Vault, errors
from strongroom.clock import ManualClock
from strongroom.storage import NewAudit, Storage, VersionRow, open_storage
from strongroom.storage import tables as t
from strongroom.storage.queries_kv import _KV_PATHS, _KV_PATHS_RANGE, _KV_PATHS_UNDER
from strongroom.storage.queries_secrets import _GET_VERSION, _LIST_RANGE, _SECRET_BY_PATH, _under
from strongroom.storage.txbase import _compiled, fetch_column, fetch_first
from tests.conftest import PG_BASE
from tests.core.dbutil import raw_sql

NOW = datetime(2025, 11, 3, 10, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def storage(dsn: str) -> Iterator[Storage]:
    s = open_storage(dsn)
    yield s
    s.dispose()


def _same_row(fast: tuple[Any, ...] | None, slow: sa.Row[Any] | None) -> None:
    """The driver-level row equals SQLAlchemy's, value for value and type for type."""
    if slow is None:
        assert fast is None
        return
    assert fast is not None
    expected = tuple(slow)
    assert fast == expected
    assert [type(v) for v in fast] == [type(v) for v in expected]
    for value in fast:
        if isinstance(value, datetime):
            assert value.tzinfo is not None and value.utcoffset() == timedelta(0)


def test_fetch_first_matches_sqlalchemy(storage: Storage) -> None:
    with storage.write() as tx:
        sid = tx.secrets.insert_secret(
            "a/b", "desc", 7, NOW, NOW + timedelta(days=1), metadata={"team": "x", "é": "ü"}
        )
        plain = tx.secrets.insert_secret("plain", None, 1, NOW, None)
        tx.secrets.insert_version(VersionRow(sid, 1, "env1", 1, 7, NOW))
        tx.secrets.insert_version(VersionRow(sid, 2, "env2", 1, 7, NOW + timedelta(seconds=1)))
        tx.secrets.update_version(
            sid, 2, value=None, destroyed=True, deleted_at=NOW + timedelta(hours=1)
        )
    cases: list[tuple[sa.Select[Any], dict[str, Any]]] = [
        (_SECRET_BY_PATH, {"path": "a/b"}),
        (_SECRET_BY_PATH, {"path": "plain"}),
        (_SECRET_BY_PATH, {"path": "missing"}),
        (_GET_VERSION, {"sid": sid, "version": 1}),
        (_GET_VERSION, {"sid": sid, "version": 2}),
        (_GET_VERSION, {"sid": sid, "version": 3}),
        (_GET_VERSION, {"sid": plain, "version": 1}),
    ]
    with storage.read() as tx:
        for statement, params in cases:
            fast = fetch_first(tx.conn, statement, params)
            _same_row(fast, tx.conn.execute(statement, params).first())
            # Twice: the second run uses the compiled (and on PostgreSQL prepared) statement.
            assert fetch_first(tx.conn, statement, params) == fast
        row = fetch_first(tx.conn, _SECRET_BY_PATH, {"path": "a/b"})
        assert row is not None and NOW in row and NOW + timedelta(days=1) in row
        assert fetch_first(tx.conn, _SECRET_BY_PATH, {"path": "missing"}) is None
        found = tx.secrets.secret_by_path("a/b")
        assert found is not None and found.metadata == {"team": "x", "é": "ü"}
        assert found.created_at == NOW and found.expires_at == NOW + timedelta(days=1)
        destroyed = tx.secrets.get_version(sid, 2)
        assert destroyed is not None and destroyed.destroyed and destroyed.value is None
        assert destroyed.deleted_at == NOW + timedelta(hours=1)


def test_fetch_column_matches_sqlalchemy(storage: Storage) -> None:
    with storage.write() as tx:
        for path in ["a", "a/b", "ab", "b"]:
            tx.secrets.insert_secret(path, None, 1, NOW, None)
    values = {"mount": 1, "now": NOW, "n": 1, "prefix": "a", "low": "a", "high": "b"}
    with storage.read() as tx:
        ranged = _KV_PATHS_RANGE[tx.conn.dialect.name]
        for statement in (_KV_PATHS, _KV_PATHS_UNDER, ranged):
            slow = list(tx.conn.execute(statement, values).scalars())
            assert fetch_column(tx.conn, statement, values) == slow
        assert fetch_column(tx.conn, _KV_PATHS, {"mount": 99, "now": NOW}) == []


# -- kv_paths -----------------------------------------------------------------------------------
#: Paths no API accepts (`~`, non-ASCII), written as rows: the listing must still be exact.
RAW_PATHS = [
    "a~",
    "a~/x",
    "a~b",
    "a}",
    "aé",
    "é/x",
    "é/y/z",
    "éa",
    "e/x",
    "team/é",
    "z/~",
    "😀/x",
    "😀é",
]
API_PATHS = ["a", "a/b", "a/b/c", "ab", "a.b", "team/x", "team/y/z", "team-x", "Z/1", "b"]
PREFIXES = [
    "",
    "a",
    "a/",
    "a~",
    "a/b",
    "team/",
    "team",
    "é/",
    "é",
    "e",
    "Z",
    "z/~",
    "tmp/",
    "q",
    "😀",
    "😀/",
]


def test_kv_paths_is_a_sorted_prefix_filter(vault: Vault, clock: ManualClock) -> None:
    for path in API_PATHS:
        vault.kv.write(path, {"v": 1})
    vault.create_secret("tmp/gone", "v", expires_in=timedelta(minutes=5))
    vault.create_secret("tmp/kept", "v", expires_in=timedelta(days=5))
    storage = vault.state.storage
    with storage.write() as tx:
        for path in RAW_PATHS:
            tx.secrets.insert_secret(path, None, 1, clock.now(), None)
        tx.secrets.insert_secret("a/expired", None, 1, clock.now(), clock.now())
    clock.advance(timedelta(hours=1))
    live = [*API_PATHS, *RAW_PATHS, "tmp/kept"]

    with storage.read() as tx:
        for prefix in PREFIXES:
            expected = sorted(p for p in live if p.startswith(prefix))
            got = tx.kv.kv_paths(prefix, clock.now(), 1)
            assert got == expected, prefix
        assert tx.kv.kv_paths("", clock.now(), 99) == []  # another mount's listing
        # At a time before the expiries, the expired ones are listed again.
        assert "tmp/gone" in tx.kv.kv_paths("tmp/", clock.now() - timedelta(hours=1), 1)


# -- pin_thread ---------------------------------------------------------------------------------
def test_pinned_thread_keeps_one_connection(storage: Storage) -> None:
    storage.pin_thread()
    with storage.read() as tx:
        first = tx.conn
        assert tx.keys.get_keys() is None
    with storage.read() as tx:
        assert tx.conn is first
    with pytest.raises(RuntimeError), storage.read() as tx:
        assert tx.conn is first
        raise RuntimeError("boom")
    assert first.closed  # dropped: it may be broken
    with storage.read() as tx:
        second = tx.conn
        assert second is not first
        assert tx.keys.max_term() is None or isinstance(tx.keys.max_term(), int)
    with storage.read() as tx:
        assert tx.conn is second
        driver = tx.conn.connection.driver_connection
    # Writes never use the pinned connection.
    with storage.write() as tx:
        assert tx.conn is not second
    storage.dispose()
    assert second.closed
    assert _driver_closed(driver)  # closed for real, not only returned to a pool


def _driver_closed(driver: Any) -> bool:
    if isinstance(driver, sqlite3.Connection):
        try:
            driver.execute("SELECT 1")
        except sqlite3.ProgrammingError:
            return True
        return False
    return bool(driver.closed)


def test_dispose_closes_connections_pinned_by_other_threads(storage: Storage) -> None:
    drivers: list[Any] = []

    def loop_thread() -> None:  # as a server's event loop: pinned, reading, then gone
        storage.pin_thread()
        for _ in range(2):
            with storage.read() as tx:
                drivers.append(tx.conn.connection.driver_connection)

    worker = threading.Thread(target=loop_thread)
    worker.start()
    worker.join()
    assert len(drivers) == 2 and drivers[0] is drivers[1]
    assert not _driver_closed(drivers[0])
    storage.dispose()
    assert _driver_closed(drivers[0])


def _is_closed(conn: sa.Connection) -> bool:
    return conn.closed  # (a call: mypy would narrow the property across the test's steps)


def test_unpinned_threads_share_one_kept_connection_one_read_at_a_time(
    storage: Storage,
) -> None:
    """Threads without a connection of their own (a library caller's) read on the shared
    reader's, one read at a time: a read meanwhile (nested, or another thread's) uses the
    pool, and nothing is kept per thread."""
    with storage.read() as tx:
        first = tx.conn
        with storage.read() as inner:
            assert inner.conn is not first
            pooled = inner.conn
    assert pooled.closed  # back to the pool
    assert not _is_closed(first)
    seen: list[Any] = []

    def other_thread() -> None:
        with storage.read() as tx:
            seen.append(tx.conn)

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    assert seen == [first]
    assert not hasattr(storage._local, "conn")
    with pytest.raises(RuntimeError), storage.read() as tx:
        assert tx.conn is first
        raise RuntimeError("boom")
    assert _is_closed(first)  # dropped: it may be broken
    with storage.read() as tx:
        second = tx.conn
        assert second is not first
        driver = tx.conn.connection.driver_connection
    storage.dispose()
    assert second.closed
    assert _driver_closed(driver)  # closed for real, not only returned to a pool


def test_concurrent_unpinned_reads_each_see_their_own_rows(storage: Storage) -> None:
    """Threads reading at once: one at a time on the shared connection, the rest on the
    pool; every read gets its own answer, none fails."""
    with storage.write() as tx:
        for i in range(8):
            tx.secrets.insert_secret(f"s/{i}", f"d{i}", i, NOW, None)

    def reads(i: int) -> list[str | None]:
        found = []
        for _ in range(40):
            with storage.read() as tx:
                row = tx.secrets.secret_by_path(f"s/{i}")
                found.append(None if row is None else row.description)
                assert tx.secrets.secret_infos("s/")[i].description == f"d{i}"
        return found

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(reads, range(8)))
    assert results == [[f"d{i}"] * 40 for i in range(8)]


def test_dispose_during_a_shared_read_closes_its_connection_after(storage: Storage) -> None:
    with storage.read() as tx:
        conn = tx.conn
        driver = conn.connection.driver_connection
        storage.dispose()
        assert not _is_closed(conn)  # in use
        tx.secrets.secret_by_path("x")
    assert _is_closed(conn)
    assert _driver_closed(driver)
    with storage.read() as tx:  # a new one
        assert tx.conn is not conn
        assert tx.secrets.secret_by_path("x") is None


@pytest.mark.parametrize("pinned", [False, True], ids=["shared", "pinned"])
def test_a_kept_read_connection_whose_rollback_failed_is_replaced(
    storage: Storage, monkeypatch: pytest.MonkeyPatch, pinned: bool
) -> None:
    """A refused read (not found) whose rollback then fails (a disk I/O error) drops the kept
    connection it ran on: the next read runs on a new one (the shared connection stayed
    closed in place, and every later read failed with an untranslated error)."""
    if pinned:
        storage.pin_thread()
    with storage.read() as tx:
        first = tx.conn

    def failing_rollback(self: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patched:
        patched.setattr(sa.engine.Connection, "rollback", failing_rollback)
        with pytest.raises(errors.SecretNotFound), storage.read() as tx:
            tx.conn.exec_driver_sql("SELECT 1")  # (SQLAlchemy's transaction: its rollback)
            raise errors.SecretNotFound()
    for _ in range(2):
        with storage.read() as tx:
            assert tx.conn is not first
            assert tx.secrets.secret_by_path("x") is None


def test_driver_errors_are_storage_unavailable(storage: Storage, dsn: str) -> None:
    """A statement run on the driver directly fails like any other: StorageUnavailable (a
    503), not the driver's own exception (a 500)."""
    raw_sql(dsn, "ALTER TABLE vault_secret_versions RENAME TO gone_versions")
    try:
        with pytest.raises(errors.StorageUnavailable), storage.read() as tx:
            tx.secrets.get_version(1, 1)
    finally:
        raw_sql(dsn, "ALTER TABLE gone_versions RENAME TO vault_secret_versions")


# -- driver-level writes (`execute_many`, `insert_one`) and savepoints ----------------------------


def test_driver_writes_read_back_as_sqlalchemy_wrote_them(storage: Storage) -> None:
    """Rows written on the driver (secret, version, current version, audit batch) read back
    through SQLAlchemy with the values and types SQLAlchemy's own inserts give."""
    entry = NewAudit(NOW, None, "a/b", 7, "create", "127.0.0.1", True, None, "rid-1")
    failed = NewAudit(NOW, 3, None, 8, "read", "::1", False, "PermissionDenied", None)
    with storage.write() as tx:
        sid = tx.secrets.insert_secret(
            "a/b", "desc", 7, NOW, None, metadata={"é": "ü"}, version=0, mount_id=1
        )
        other = tx.secrets.insert_secret("c", None, 1, NOW, NOW + timedelta(days=1))
        tx.secrets.insert_version(VersionRow(sid, 1, "env1", 1, 7, NOW, None, False))
        tx.secrets.set_current_version(sid, 1, NOW + timedelta(seconds=5))
        tx.audit.insert_audits([(entry, "mac-1"), (failed, "mac-2")])
    assert other == sid + 1
    with storage.read() as tx:
        row = tx.secrets.secret_by_path("a/b")
        stored = tx.secrets.get_version(sid, 1)
        audits = tx.conn.execute(
            sa.select(t.audit_logs).order_by(t.audit_logs.c.id.desc()).limit(2)
        ).all()
    assert row is not None and row.id == sid and row.version == 1
    assert row.metadata == {"é": "ü"} and row.description == "desc"
    assert row.updated_at == NOW + timedelta(seconds=5) and row.updated_at.tzinfo is not None
    assert stored == VersionRow(sid, 1, "env1", 1, 7, NOW, None, False)
    newest, older = audits
    assert (older.path, older.success, older.error, older.mac) == ("a/b", True, None, "mac-1")
    assert (newest.secret_id, newest.success, newest.error) == (3, False, "PermissionDenied")
    assert older.timestamp == NOW and older.timestamp.tzinfo is not None
    assert newest.success is False and newest.id == older.id + 1


def test_duplicates_fail_alone_under_a_savepoint(storage: Storage) -> None:
    """A refused insert (a taken path, an existing version number) fails only its savepoint:
    the transaction goes on and commits the rest."""
    with storage.write() as tx:
        sid = tx.secrets.insert_secret("dup", None, 1, NOW, None)
        tx.secrets.insert_version(VersionRow(sid, 1, "env1", 1, 1, NOW))
        with pytest.raises(errors.SecretExists), tx.savepoint():
            tx.secrets.insert_secret("dup", None, 2, NOW, None)
        with pytest.raises(errors.VersionConflict), tx.savepoint():
            tx.secrets.insert_version(VersionRow(sid, 1, "again", 1, 1, NOW))
        tx.secrets.insert_version(VersionRow(sid, 2, "env2", 1, 1, NOW))
    with storage.read() as tx:
        assert [v.value for v in tx.secrets.versions(sid)] == ["env2", "env1"]
        row = tx.secrets.secret_by_path("dup")
        assert row is not None and row.created_by == 1


def test_nested_savepoints_undo_only_the_inner_block(storage: Storage) -> None:
    with storage.write() as tx:
        with tx.savepoint():
            tx.secrets.insert_secret("outer", None, 1, NOW, None)
            with pytest.raises(RuntimeError), tx.savepoint():
                tx.secrets.insert_secret("inner", None, 1, NOW, None)
                raise RuntimeError("undo the inner block")
            tx.secrets.insert_secret("after", None, 1, NOW, None)
        with pytest.raises(errors.InvalidInput), tx.savepoint():
            tx.secrets.insert_secret("too-big", None, 2**70, NOW, None)
    with storage.read() as tx:
        paths = {p for p in ("outer", "inner", "after", "too-big") if tx.secrets.secret_by_path(p)}
    assert paths == {"outer", "after"}


@pytest.mark.postgres
def test_postgresql_reads_hold_no_transaction(pg_dsn: str) -> None:
    """On PostgreSQL a read runs in autocommit: its connection is idle between statements,
    not "idle in transaction" holding a snapshot (and no BEGIN/COMMIT round trips)."""
    storage = open_storage(pg_dsn)
    with storage.read() as tx:
        tx.secrets.secret_by_path("nothing")
        pid = tx.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        state = raw_sql(pg_dsn, "SELECT state FROM pg_stat_activity WHERE pid = ?", (pid,))
    storage.dispose()
    assert state == [("idle",)]


def test_sqlite_folder_listing_reads_a_range_of_the_path_index(sqlite_dsn: str) -> None:
    """A folder's listing reads only that folder's paths, in index order: not the whole mount
    through the index on mount_id, sorted afterwards (its cost grew with the mount's size)."""
    storage = open_storage(sqlite_dsn)
    try:
        with storage.read() as tx:
            compiled = _compiled(tx.conn.dialect, _KV_PATHS_RANGE["sqlite"])
            values = {"mount": 1, "now": NOW, "low": "a/", "high": "a0"}
            plan = tx.conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + compiled.sql, compiled.params(values)
            ).all()
    finally:
        storage.dispose()
    details = " ".join(str(row[-1]) for row in plan)
    assert "(path>? AND path<?)" in details, details
    assert "TEMP B-TREE" not in details, details


@pytest.mark.postgres
def test_postgresql_listings_read_a_range_of_the_bytewise_path_index(pg_dsn: str) -> None:
    """On PostgreSQL a folder's listing reads only that folder's paths, through
    `idx_vault_secrets_mount_path` (migration 0007): the unique index on path follows the
    database's collation, so substr read every secret of the mount (13 ms for a folder of
    1,000 among 100,000, growing with the vault)."""
    storage = open_storage(pg_dsn)
    try:
        with storage.write() as tx:
            for i in range(3000):
                tx.secrets.insert_secret(f"f{i % 30:02d}/k{i:05d}", None, 1, NOW, None)
        with storage.read() as tx:
            tx.conn.exec_driver_sql("ANALYZE vault_secrets")
            plans = []
            for statement, values in (
                (_KV_PATHS_RANGE["postgresql"], {"mount": 1, "now": NOW}),
                (_LIST_RANGE["postgresql"], {"mount": 1}),
                (  # (as `list_paths` and `list_secrets`)
                    _under(
                        sa.select(t.secrets.c.path).where(t.secrets.c.mount_id == 1),
                        "f07/",
                        "postgresql",
                    ),
                    {},
                ),
            ):
                compiled = _compiled(tx.conn.dialect, statement)
                params = compiled.params({**values, "low": "f07/", "high": "f070"})
                explained = tx.conn.exec_driver_sql("EXPLAIN " + compiled.sql, params).all()
                plans.append(" ".join(str(row[0]) for row in explained))
            assert tx.kv.kv_paths("f07/", NOW + timedelta(days=1)) == [
                f"f07/k{i:05d}" for i in range(7, 3000, 30)
            ]
            infos = tx.secrets.secret_infos("f07/")
            assert [i.path for i in infos] == [f"f07/k{i:05d}" for i in range(7, 3000, 30)]
    finally:
        storage.dispose()
    for plan in plans:
        assert "idx_vault_secrets_mount_path" in plan, plan
        assert "Seq Scan" not in plan, plan


def _chain(exc: BaseException | None) -> str:
    """Every message of an exception and its causes."""
    seen = []
    while exc is not None:
        seen.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(seen)


def test_driver_errors_carry_no_values(storage: Storage, dsn: str) -> None:
    """A driver-level statement that fails says which statement, never the values it bound
    (envelopes, paths, addresses), as SQLAlchemy's own errors do with `hide_parameters`."""
    with storage.write() as tx:
        sid = tx.secrets.insert_secret("hidden", None, 1, NOW, None)
    raw_sql(dsn, "ALTER TABLE vault_secret_versions RENAME TO gone_versions")
    try:
        with pytest.raises(errors.StorageUnavailable) as caught, storage.write() as tx:
            tx.secrets.insert_version(VersionRow(sid, 1, "ENVELOPE-CIPHERTEXT-X", 1, 1, NOW))
    finally:
        raw_sql(dsn, "ALTER TABLE gone_versions RENAME TO vault_secret_versions")
    told = _chain(caught.value)
    assert "vault_secret_versions" in told and "ENVELOPE-CIPHERTEXT-X" not in told


def test_a_prebuilt_statement_needs_every_value() -> None:
    """A value missing from a call is an error, not a NULL bound in its place."""
    compiled = _compiled(sa.create_engine("sqlite://").dialect, _GET_VERSION)
    with pytest.raises(KeyError, match="version"):
        compiled.params({"sid": 1})


@pytest.mark.postgres
@pytest.mark.parametrize("through", ["sqlalchemy", "driver"])
def test_a_connection_lost_inside_a_savepoint_is_storage_unavailable(
    pg_dsn: str, through: str
) -> None:
    """The server ends the connection in the middle of a job's savepoint: the write fails as
    StorageUnavailable (a 503), counted as a lost connection, and the next write works."""
    import psycopg

    storage = open_storage(pg_dsn)
    try:
        with storage.write() as tx:
            sid = tx.secrets.insert_secret("lost", None, 1, NOW, None)
        with pytest.raises(errors.StorageUnavailable), storage.write() as tx, tx.savepoint():
            pid = tx.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with psycopg.connect(PG_BASE, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            if through == "sqlalchemy":
                tx.secrets.update_secret(sid, description="x")
            else:
                tx.secrets.insert_version(VersionRow(sid, 1, "env", 1, 1, NOW))
        assert storage.health.counts().get("connection_lost") == 1
        with storage.write() as tx:
            tx.secrets.insert_version(VersionRow(sid, 1, "env", 1, 1, NOW))
    finally:
        storage.dispose()


@pytest.mark.postgres
def test_after_a_postgresql_restart_one_read_fails_not_one_per_pooled_connection(
    pg_dsn: str,
) -> None:
    """A read through the driver that finds its connection ended invalidates the whole pool,
    as SQLAlchemy's own execute does: the next reads reconnect instead of each failing on
    another dead pooled connection."""
    import psycopg

    app = f"sr-restart-{uuid.uuid4().hex[:8]}"
    storage = open_storage(f"{pg_dsn}&application_name={app}")
    try:
        held = [storage.engine.connect() for _ in range(5)]  # five connections in the pool
        for conn in held:
            conn.exec_driver_sql("SELECT 1")
            conn.close()
        with psycopg.connect(PG_BASE, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (app,),
            ).fetchone()
        assert ended is not None and ended[0] >= 5
        failures = 0
        for _ in range(6):
            try:
                with storage.read() as tx:
                    tx.secrets.secret_by_path("nothing")
            except errors.StorageUnavailable:
                failures += 1
        assert failures == 1
    finally:
        storage.dispose()


@pytest.mark.postgres
def test_after_a_restart_threads_with_their_own_connections_fail_once_in_all(
    pg_dsn: str,
) -> None:
    """Pool threads that keep their own connection (the server's, on PostgreSQL): after the
    database ended every connection, the first read to find out fails, and the other threads
    replace theirs before reading instead of each failing one request."""
    import psycopg

    app = f"sr-pinned-{uuid.uuid4().hex[:8]}"
    storage = open_storage(f"{pg_dsn}&application_name={app}")
    threads = 4
    barrier = threading.Barrier(threads)
    turn = threading.Lock()
    failures: list[str] = []

    def read(wait: bool) -> None:
        if wait:
            barrier.wait(10)  # every thread of the pool takes one task
        with turn:
            try:
                with storage.read() as tx:
                    tx.secrets.secret_by_path("nothing")
            except errors.StorageUnavailable as exc:
                failures.append(str(exc))
        if wait:
            barrier.wait(10)

    try:
        with ThreadPoolExecutor(threads, initializer=storage.pin_thread) as pool:
            list(pool.map(read, [True] * threads))  # each thread opens its own connection
            assert failures == []
            with psycopg.connect(PG_BASE, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = %s",
                    (app,),
                )
            list(pool.map(read, [True] * threads))
        assert len(failures) == 1, failures
    finally:
        storage.dispose()
