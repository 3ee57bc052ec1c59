"""Transactions begun and ended on the driver: the writer's kept connection
(`Storage.write(keep=True)`) and reads on a thread's own connection (`Storage.pin_thread`), on
every backend, against the real database."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strongroom import Vault, errors
from strongroom.storage import Storage, Tx, open_storage
from strongroom.storage import tables as t
from strongroom.storage.base import NewAudit
from strongroom.storage.sqlite import BUSY_TIMEOUT_MS
from strongroom.storage.txbase import WriterBusy
from tests.conftest import PG_BASE
from tests.core.dbutil import raw_sql, sqlite_path

NOW = datetime(2025, 11, 3, 10, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def storage(dsn: str) -> Iterator[Storage]:
    s = open_storage(dsn)
    yield s
    s.dispose()


#: A secret row written by another connection (raw SQL, bypassing strongroom).
_RAW_INSERT = (
    "INSERT INTO vault_secrets (path, created_by, created_at, updated_at, version,"
    " max_versions, cas_required, delete_version_after)"
    " VALUES ('{path}', 1, '2025-01-01 00:00:00', '2025-01-01 00:00:00', 1, 0, 0, 0)"
)


# -- helpers ------------------------------------------------------------------------------------


def _paths(dsn: str) -> list[str]:
    """The secrets' paths, read on a fresh connection of its own (committed rows only)."""
    return [str(row[0]) for row in raw_sql(dsn, "SELECT path FROM vault_secrets ORDER BY path")]


def _sqlite_paths(dsn: str) -> list[str]:
    """As `_paths`, on a plain sqlite3 connection opened here and closed at once."""
    conn = sqlite3.connect(sqlite_path(dsn))
    try:
        return [row[0] for row in conn.execute("SELECT path FROM vault_secrets ORDER BY path")]
    finally:
        conn.close()


def _kept(storage: Storage) -> Connection | None:
    """The connection the writer keeps (read anew each time: not narrowed by mypy)."""
    return storage._kept


def _driver(tx: Tx) -> Any:
    return tx.conn.connection.driver_connection


def _backend_pid(tx: Tx) -> int:
    """The PostgreSQL backend of a transaction's connection, asked on the driver (a SQLAlchemy
    statement would join the transaction through SQLAlchemy, which is another path)."""
    row = _driver(tx).execute("SELECT pg_backend_pid()").fetchone()
    return int(row[0])


def _sa_insert(conn: Connection, path: str) -> None:
    """A SQLAlchemy Core INSERT (not the driver-level statements the query groups use)."""
    conn.execute(
        sa.insert(t.secrets).values(path=path, created_by=1, created_at=NOW, updated_at=NOW)
    )


def _text_update(conn: Connection, path: str, description: str) -> None:
    conn.execute(
        sa.text("UPDATE vault_secrets SET description = :d WHERE path = :p"),
        {"d": description, "p": path},
    )


def _driver_closed(driver: Any) -> bool:
    if isinstance(driver, sqlite3.Connection):
        try:
            driver.execute("SELECT 1")
        except sqlite3.ProgrammingError:
            return True
        return False
    return bool(driver.closed)


def _sqlite_lock_free(dsn: str) -> bool:
    """Whether another connection can take SQLite's write lock right now (not waiting)."""
    conn = sqlite3.connect(sqlite_path(dsn), timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return False
    else:
        conn.execute("ROLLBACK")
        return True
    finally:
        conn.close()


def _pg_state(pid: int) -> str | None:
    rows = raw_sql(PG_BASE, "SELECT state FROM pg_stat_activity WHERE pid = ?", (pid,))
    return str(rows[0][0]) if rows else None


def _wait_for(what: str, condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


# -- write(keep=True): one connection, committed for real ---------------------------------------


def test_kept_writes_reuse_one_connection_and_commit(storage: Storage, dsn: str) -> None:
    with storage.write(keep=True) as tx:
        first, driver = tx.conn, _driver(tx)
        pid = _backend_pid(tx) if storage.dialect == "postgresql" else None
        tx.secrets.insert_secret("one", None, 1, NOW, None)
    assert _kept(storage) is first and not first.closed
    assert _paths(dsn) == ["one"]  # committed: a fresh connection sees it
    with storage.write(keep=True) as tx:
        assert tx.conn is first and _driver(tx) is driver
        if pid is not None:
            assert _backend_pid(tx) == pid
        tx.secrets.insert_secret("two", None, 1, NOW, None)
    assert _paths(dsn) == ["one", "two"]
    if storage.dialect == "sqlite":
        assert _sqlite_paths(dsn) == ["one", "two"]
        assert not driver.in_transaction
        assert _sqlite_lock_free(dsn)  # the kept connection holds no write lock between writes
    else:
        assert pid is not None and not driver.info.transaction_status
        assert _pg_state(pid) == "idle"  # not "idle in transaction" holding the advisory lock
    # Reads see it too, and a third write still runs on the same connection.
    with storage.read() as tx:
        assert tx.secrets.secret_by_path("two") is not None
    with storage.write(keep=True) as tx:
        assert tx.conn is first
    assert _kept(storage) is first


#: Values a client-side bound statement must carry exactly (`txbase.WithCommit`): quotes,
#: backslashes, placeholders, dollar quotes, a statement separator, non-ASCII.
_AWKWARD = [
    "it's",
    "back\\slash\\",
    "%s %(path)s %%",
    "$$x$$; DROP TABLE vault_secrets; --",
    "é ü 秘密 \U0001f511",
]


def _audit_rows(dsn: str) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in raw_sql(
            dsn,
            "SELECT secret_id, path, user_id, action, ip_address, success, error, request_id,"
            " mac FROM vault_audit_logs ORDER BY id",
        )
    ]


def test_kept_write_commits_its_audit_rows_exactly(storage: Storage, dsn: str) -> None:
    """A batch's audit rows, on PostgreSQL held back and sent with the COMMIT in one query
    bound on the client: every value arrives as it was, in order, with the rest of the
    transaction, and the connection is left idle for the next write."""
    entries: list[tuple[NewAudit, str | None]] = [
        (NewAudit(NOW, i, text, i, "read", text[:64], i % 2 == 0, None, text[:64]), f"m{i}")
        for i, text in enumerate(_AWKWARD)
    ]
    entries.append((NewAudit(NOW, None, None, 0, "lock", "::1", False, "Err", None), None))
    pid = None
    with storage.write(keep=True) as tx:
        if storage.dialect == "postgresql":
            pid = _backend_pid(tx)
        tx.secrets.insert_secret("with-audit", None, 1, NOW, None)
        tx.audit.insert_audits(entries, last=True)
        if storage.dialect == "postgresql":
            assert tx.with_commit is not None
            # Held back: not even this transaction has them yet.
            assert (
                tx.conn.execute(sa.select(sa.func.count()).select_from(t.audit_logs)).scalar() == 0
            )
        else:
            assert tx.with_commit is None
    assert _paths(dsn) == ["with-audit"]
    stored = _audit_rows(dsn)
    assert stored == [
        (
            e.secret_id,
            e.path,
            e.user_id,
            e.action,
            e.ip_address,
            e.success,
            e.error,
            e.request_id,
            mac,
        )
        for e, mac in entries
    ]
    times = raw_sql(dsn, "SELECT timestamp FROM vault_audit_logs ORDER BY id")
    assert len(times) == len(entries)
    if storage.dialect == "postgresql":
        assert all(row[0] == NOW for row in times)  # to the microsecond, as UTC
        assert pid is not None and _pg_state(pid) == "idle"
        # Committed by the batch's own transaction, not beside it: the same xmin.
        writers = raw_sql(
            dsn,
            "SELECT xmin::text FROM vault_secrets UNION SELECT xmin::text FROM vault_audit_logs",
        )
        assert len(writers) == 1
    with storage.write(keep=True) as tx:  # the same connection goes on
        tx.audit.insert_audits(
            [(NewAudit(NOW, None, "next", 1, "read", "::1", True, None, None), "m")], last=True
        )
    assert len(_audit_rows(dsn)) == len(entries) + 1


_BOOM_TRIGGER = (
    "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF NEW.mac = 'BOOM' THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL;"
    " END $$",
    "CREATE CONSTRAINT TRIGGER boom AFTER INSERT ON vault_audit_logs DEFERRABLE INITIALLY"
    " DEFERRED FOR EACH ROW EXECUTE FUNCTION boom()",
)


@pytest.mark.postgres
@pytest.mark.parametrize("refused", ["insert", "commit"])
def test_kept_write_whose_audit_rows_are_refused_commits_nothing(pg_dsn: str, refused: str) -> None:
    """A held-back row the database refuses, at its INSERT (an action longer than its column:
    PostgreSQL checks a VARCHAR's length, SQLite does not) or at the COMMIT itself (a
    deferred constraint trigger), fails the whole transaction as StorageUnavailable: nothing
    of it is stored, the kept connection is dropped, and the next write runs."""
    import psycopg

    storage = open_storage(pg_dsn)
    try:
        with storage.write(keep=True) as tx:
            first = tx.conn
        ok = NewAudit(NOW, None, "p", 1, "read", "::1", True, None, None)
        if refused == "insert":
            bad = (NewAudit(NOW, None, "p", 1, "x" * 51, "::1", True, None, None), "m2")
        else:
            with psycopg.connect(pg_dsn, autocommit=True) as admin:
                for statement in _BOOM_TRIGGER:
                    admin.execute(statement)
            bad = (ok, "BOOM")
        with pytest.raises(errors.StorageUnavailable), storage.write(keep=True) as tx:
            tx.secrets.insert_secret("doomed", None, 1, NOW, None)
            tx.audit.insert_audits([(ok, "m1"), bad], last=True)
        assert _paths(pg_dsn) == [] and _audit_rows(pg_dsn) == []
        assert first.closed and _kept(storage) is None
        with storage.write(keep=True) as tx:
            tx.secrets.insert_secret("after", None, 1, NOW, None)
            tx.audit.insert_audits([(ok, "m3")], last=True)
        assert _paths(pg_dsn) == ["after"] and [r[-1] for r in _audit_rows(pg_dsn)] == ["m3"]
    finally:
        storage.dispose()


@pytest.mark.postgres
def test_nothing_runs_after_rows_held_for_the_commit(pg_dsn: str) -> None:
    """Rows held back for the COMMIT are the transaction's last statement: reading the chain
    head, more rows or a savepoint after them is refused (each would run before them), and
    the refusal rolls the whole transaction back."""
    storage = open_storage(pg_dsn)
    entry = (NewAudit(NOW, None, "p", 1, "read", "::1", True, None, None), "m")
    try:
        for after in ("head", "rows", "savepoint"):
            with pytest.raises(RuntimeError, match="held for the COMMIT"):
                with storage.write(keep=True) as tx:
                    tx.secrets.insert_secret(f"doomed-{after}", None, 1, NOW, None)
                    tx.audit.insert_audits([entry], last=True)
                    if after == "head":
                        tx.audit.batch_head()
                    elif after == "rows":
                        tx.audit.insert_audits([entry])
                    else:
                        with tx.savepoint():
                            pass
        assert _paths(pg_dsn) == [] and _audit_rows(pg_dsn) == []
        with storage.write(keep=True) as tx:  # without `last`: sent at once, more may follow
            tx.audit.insert_audits([entry])
            assert tx.audit.batch_head()[1] == "m"
    finally:
        storage.dispose()


class _Abort(Exception):
    """Ends a write on purpose."""


def test_kept_write_savepoints_undo_only_their_blocks(storage: Storage, dsn: str) -> None:
    """Savepoints of the writer's kept transaction (on PostgreSQL their RELEASE goes with the
    next savepoint statement, `txbase.savepoint(chain=...)`): a block that fails, by a bug
    or by the database refusing a statement (which aborts the transaction on PostgreSQL),
    is undone alone, nested blocks included, after blocks that ended and before others."""
    with storage.write(keep=True) as tx:
        for i in range(3):
            with tx.savepoint():
                tx.secrets.insert_secret(f"job-{i}", None, 1, NOW, None)
        with pytest.raises(errors.Conflict), tx.savepoint():
            tx.secrets.insert_secret("refused-first", None, 1, NOW, None)
            tx.secrets.insert_secret("job-0", None, 1, NOW, None)  # taken: refused
        with pytest.raises(_Abort), tx.savepoint():
            tx.secrets.insert_secret("outer-before", None, 1, NOW, None)
            with tx.savepoint():
                tx.secrets.insert_secret("inner", None, 1, NOW, None)
            tx.secrets.insert_secret("outer-after", None, 1, NOW, None)
            raise _Abort
        with pytest.raises(errors.Conflict), tx.savepoint():
            with tx.savepoint():
                tx.secrets.insert_secret("inner-2", None, 1, NOW, None)
            tx.secrets.insert_secret("job-1", None, 1, NOW, None)  # refused after a block ended
        with tx.savepoint():
            tx.secrets.insert_secret("last", None, 1, NOW, None)
    assert _paths(dsn) == ["job-0", "job-1", "job-2", "last"]


@pytest.mark.postgres
def test_kept_write_savepoints_do_not_pile_up(pg_dsn: str) -> None:
    """The ended savepoints of the kept transaction are released by its next savepoint
    statement: they do not pile up (PostgreSQL slows down every backend once a transaction
    holds more than 64 subtransactions)."""
    import psycopg

    storage = open_storage(pg_dsn)
    outcome: list[str] = []
    try:
        with pytest.raises((_Abort, errors.StrongroomError)), storage.write(keep=True) as tx:
            assert tx.with_commit is not None
            for i in range(5):
                with tx.savepoint():
                    with tx.savepoint():
                        tx.secrets.insert_secret(f"n-{i}", None, 1, NOW, None)
            driver = _driver(tx)
            for _ in range(2):  # the last pair, inner and outer: their RELEASEs are due
                driver.execute("RELEASE SAVEPOINT strongroom_job")
            try:
                driver.execute("RELEASE SAVEPOINT strongroom_job")
            except psycopg.errors.InvalidSavepointSpecification:
                outcome.append("none left")
            else:
                outcome.append("another was left open")
            raise _Abort
    finally:
        storage.dispose()
    assert outcome == ["none left"]


def test_an_ordinary_write_does_not_take_the_kept_connection(storage: Storage) -> None:
    with storage.write(keep=True) as tx:
        kept = tx.conn
    with storage.write() as tx:
        assert tx.conn is not kept
        tx.secrets.insert_secret("pooled", None, 1, NOW, None)
    with storage.write(keep=True) as tx:
        assert tx.conn is kept
        assert tx.secrets.secret_by_path("pooled") is not None


@pytest.mark.parametrize("failure", ["exception", "duplicate"])
def test_a_failed_kept_write_rolls_back_and_the_next_opens_a_new_connection(
    storage: Storage, dsn: str, failure: str
) -> None:
    with storage.write(keep=True) as tx:
        first = tx.conn
        tx.secrets.insert_secret("kept", None, 1, NOW, None)
    expected: type[BaseException] = RuntimeError if failure == "exception" else errors.Conflict
    with pytest.raises(expected), storage.write(keep=True) as tx:
        assert tx.conn is first
        tx.secrets.insert_secret("doomed-driver", None, 1, NOW, None)
        _sa_insert(tx.conn, "doomed-sqlalchemy")
        if failure == "exception":
            raise RuntimeError("the batch failed")
        tx.secrets.insert_secret("kept", None, 1, NOW, None)  # taken: the database refuses
    assert first.closed and _kept(storage) is None
    assert _paths(dsn) == ["kept"]
    if storage.dialect == "sqlite":
        assert _sqlite_lock_free(dsn)
    with storage.write(keep=True) as tx:
        second = tx.conn
        assert second is not first
        tx.secrets.insert_secret("after", None, 1, NOW, None)
    assert _kept(storage) is second
    assert _paths(dsn) == ["after", "kept"]


def test_a_failed_kept_write_fails_alone(storage: Storage, dsn: str) -> None:
    """A failure does not leave anything behind for the next write: a write after it commits
    only its own rows (nothing of the failed block joins it)."""
    with pytest.raises(RuntimeError), storage.write(keep=True) as tx:
        tx.secrets.insert_secret("doomed", None, 1, NOW, None)
        raise RuntimeError("boom")
    for _ in range(2):
        with storage.write(keep=True) as tx:
            tx.secrets.insert_secret(f"ok-{uuid.uuid4().hex[:6]}", None, 1, NOW, None)
    assert [p for p in _paths(dsn) if not p.startswith("ok-")] == []
    assert len(_paths(dsn)) == 2


def test_sqlalchemy_statements_join_the_kept_write(storage: Storage, dsn: str) -> None:
    with storage.write(keep=True) as tx:
        first = tx.conn
    with storage.write(keep=True) as tx:
        assert tx.conn is first
        tx.secrets.insert_secret("driver", None, 1, NOW, None)
        _sa_insert(tx.conn, "core")
        _text_update(tx.conn, "driver", "by text()")
        # The SQLAlchemy statements see the driver's uncommitted row, and the driver sees
        # theirs: one transaction.
        assert tx.secrets.secret_by_path("core") is not None
        description = tx.conn.execute(
            sa.select(t.secrets.c.description).where(t.secrets.c.path == "driver")
        ).scalar_one()
        assert description == "by text()"
        assert _paths(dsn) == []  # nothing committed yet: not autocommitted one by one
    assert not first.in_transaction()
    assert _paths(dsn) == ["core", "driver"]
    if storage.dialect == "sqlite":
        assert not _driver(tx).in_transaction and _sqlite_lock_free(dsn)
    # The connection is kept and the next write (driver-level only) begins afresh on it.
    with storage.write(keep=True) as tx:
        assert tx.conn is first
        tx.secrets.insert_secret("next", None, 1, NOW, None)
    assert _paths(dsn) == ["core", "driver", "next"]
    # Rolled back together, too.
    with pytest.raises(RuntimeError), storage.write(keep=True) as tx:
        tx.secrets.insert_secret("gone-driver", None, 1, NOW, None)
        _sa_insert(tx.conn, "gone-core")
        raise RuntimeError("undo both")
    assert _paths(dsn) == ["core", "driver", "next"]


def test_a_kept_write_may_commit_in_another_thread(storage: Storage, dsn: str) -> None:
    """As the vault's writer does: the batch runs on an event loop, its commit in the writer's
    thread."""
    stack = ExitStack()
    tx = stack.enter_context(storage.write(keep=True))
    kept = tx.conn
    tx.secrets.insert_secret("loop", None, 1, NOW, None)
    errors_seen: list[BaseException] = []

    def commit() -> None:
        try:
            stack.close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors_seen.append(exc)

    worker = threading.Thread(target=commit)
    worker.start()
    worker.join(10)
    assert errors_seen == [] and not worker.is_alive()
    assert _paths(dsn) == ["loop"]
    with storage.write(keep=True) as tx:  # the kept connection was handed back
        assert tx.conn is kept


@pytest.mark.postgres
def test_a_concurrent_kept_write_runs_on_a_pooled_connection(pg_dsn: str) -> None:
    """While the kept connection is in use, another `write(keep=True)` takes a pooled
    connection (and waits for the writer lock), and the kept one stays kept."""
    app = f"sr-kept-{uuid.uuid4().hex[:8]}"
    storage = open_storage(f"{pg_dsn}&application_name={app}")
    inside = threading.Event()
    release = threading.Event()
    seen: dict[str, Any] = {}

    def first() -> None:
        with storage.write(keep=True) as tx:
            seen["first"] = tx.conn
            tx.secrets.insert_secret("first", None, 1, NOW, None)
            inside.set()
            release.wait(10)

    def second() -> None:
        with storage.write(keep=True) as tx:
            seen["second"] = tx.conn
            seen["second_saw_first"] = tx.secrets.secret_by_path("first") is not None
            tx.secrets.insert_secret("second", None, 1, NOW, None)

    def waiting_for_lock() -> bool:
        rows = raw_sql(
            PG_BASE,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = ?"
            " AND wait_event_type = 'Lock'",
            (app,),
        )
        return int(rows[0][0]) == 1

    a = threading.Thread(target=first)
    b = threading.Thread(target=second)
    try:
        a.start()
        assert inside.wait(10)
        b.start()
        _wait_for("the second writer to wait for the advisory lock", waiting_for_lock)
        release.set()
        a.join(10)
        b.join(10)
        assert not a.is_alive() and not b.is_alive()
        assert seen["second"] is not seen["first"]
        assert seen["second_saw_first"]  # it waited for the first to commit
        first_conn: Connection = seen["first"]
        assert _kept(storage) is first_conn and not first_conn.closed
        assert _paths(pg_dsn) == ["first", "second"]
    finally:
        release.set()
        storage.dispose()


# -- SQLite: nowait and the write lock held elsewhere --------------------------------------------


def test_sqlite_nowait_kept_write_is_busy_and_keeps_its_connection(sqlite_dsn: str) -> None:
    storage = open_storage(sqlite_dsn)
    other = sqlite3.connect(sqlite_path(sqlite_dsn), timeout=0, isolation_level=None)
    try:
        with storage.write(keep=True) as tx:
            kept, driver = tx.conn, _driver(tx)
        other.execute("BEGIN IMMEDIATE")  # another process's writer holds SQLite's lock
        other.execute(_RAW_INSERT.format(path="other"))
        started = time.monotonic()
        with pytest.raises(WriterBusy), storage.write(nowait=True, keep=True):
            pytest.fail("the block ran without the write lock")
        assert time.monotonic() - started < 1.0  # at once, not after the busy timeout
        assert _kept(storage) is kept and not kept.closed  # nothing was begun: still kept
        assert not driver.in_transaction
        assert driver.execute("PRAGMA busy_timeout").fetchone() == (BUSY_TIMEOUT_MS,)
        assert storage.health.counts() == {}  # busy is no outage
        other.execute("COMMIT")
        with storage.write(nowait=True, keep=True) as tx:
            assert tx.conn is kept and _driver(tx) is driver
            assert tx.secrets.secret_by_path("other") is not None  # a fresh snapshot
            tx.secrets.insert_secret("mine", None, 1, NOW, None)
        assert _sqlite_paths(sqlite_dsn) == ["mine", "other"]
    finally:
        other.close()
        storage.dispose()


def test_writer_busy_raised_inside_a_kept_write_rolls_it_back(storage: Storage, dsn: str) -> None:
    """WriterBusy raised from inside the block (by a job, say) is a failure of that block like
    any other: what it wrote is rolled back, it does not stay open on the kept connection to
    be committed by the next write, and SQLite's write lock is released."""
    with pytest.raises(WriterBusy), storage.write(keep=True) as tx:
        tx.secrets.insert_secret("half-done", None, 1, NOW, None)
        raise WriterBusy()
    _assert_nothing_left_open(storage, dsn)


def test_a_nested_nowait_write_inside_a_kept_write_rolls_it_back(sqlite_dsn: str) -> None:
    """The same, with WriterBusy from a nested `write(nowait=True)` that finds the writer's
    lock (the flock) taken by the outer write itself."""
    storage = open_storage(sqlite_dsn)
    try:
        with pytest.raises(WriterBusy), storage.write(keep=True) as tx:
            tx.secrets.insert_secret("half-done", None, 1, NOW, None)
            with storage.write(nowait=True):
                pytest.fail("the nested write ran")
        _assert_nothing_left_open(storage, sqlite_dsn)
    finally:
        storage.dispose()


def _assert_nothing_left_open(storage: Storage, dsn: str) -> None:
    if storage.dialect == "sqlite":
        assert _sqlite_lock_free(dsn), "the kept connection still holds SQLite's write lock"
    assert _paths(dsn) == []
    with storage.write(keep=True) as tx:
        tx.secrets.insert_secret("next", None, 1, NOW, None)
    assert _paths(dsn) == ["next"], "the next write committed the failed block's rows"


# -- PostgreSQL: the kept connection's backend ended ---------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("ended", ["kept", "all"])
def test_a_terminated_kept_connection_fails_one_write_then_reconnects(
    pg_dsn: str, ended: str
) -> None:
    """The server ends the kept connection ("kept"), or every connection of the process as a
    restart does ("all": pooled ones too): one operation fails at most, as StorageUnavailable,
    and the writer's next write runs on a new backend, kept again."""
    import psycopg

    app = f"sr-ended-{uuid.uuid4().hex[:8]}"
    storage = open_storage(f"{pg_dsn}&application_name={app}")
    try:
        with storage.write(keep=True) as tx:
            old_pid = _backend_pid(tx)
            tx.secrets.insert_secret("before", None, 1, NOW, None)
        pooled = [storage.engine.connect() for _ in range(3)]  # in the pool, idle
        for conn in pooled:
            conn.exec_driver_sql("SELECT 1")
            conn.close()
        with psycopg.connect(PG_BASE, autocommit=True) as admin:
            if ended == "kept":
                admin.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
            else:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = %s",
                    (app,),
                )
        _wait_for("the backend to end", lambda: _pg_state(old_pid) is None)

        failures = 0
        pids: list[int] = []
        for attempt in range(3):
            try:
                with storage.write(keep=True) as tx:
                    pids.append(_backend_pid(tx))
                    tx.secrets.insert_secret(f"attempt-{attempt}", None, 1, NOW, None)
            except errors.StorageUnavailable:
                failures += 1
                assert not pids, "a write failed after one had succeeded"
            try:
                with storage.read() as tx:  # a pooled connection
                    tx.secrets.secret_by_path("before")
            except errors.StorageUnavailable:
                failures += 1
        assert failures <= 1
        assert len(pids) == 3 - failures
        assert old_pid not in pids and len(set(pids)) == 1  # a new backend, kept again
        if failures:
            assert storage.health.counts() == {"connection_lost": 1}
        assert not storage.health.is_down
        expected = ["before", *(f"attempt-{i}" for i in range(failures, 3))]
        assert _paths(pg_dsn) == sorted(expected)
    finally:
        storage.dispose()


# -- pinned reads -------------------------------------------------------------------------------


@pytest.mark.parametrize("statement", ["select", "text"])
def test_sqlalchemy_statements_join_a_pinned_read(
    storage: Storage, dsn: str, statement: str
) -> None:
    with storage.write() as tx:
        tx.secrets.insert_secret("a", None, 1, NOW, None)
    storage.pin_thread()
    with storage.read() as tx:
        own = tx.conn
        assert tx.secrets.secret_by_path("a") is not None  # on the driver
        if statement == "select":
            paths = list(tx.conn.execute(sa.select(t.secrets.c.path)).scalars())
        else:
            paths = list(tx.conn.execute(sa.text("SELECT path FROM vault_secrets")).scalars())
        assert paths == ["a"]
        assert tx.secrets.secret_by_path("a") is not None  # the driver again, after it
        if storage.dialect == "sqlite":
            assert _driver(tx).in_transaction
    assert not own.in_transaction() and not own.closed
    driver: Any = own.connection.driver_connection
    if storage.dialect == "sqlite":
        assert not driver.in_transaction
    else:
        pid = int(driver.info.backend_pid)
        assert _pg_state(pid) == "idle"
    # The connection is usable afterwards, for driver-level and SQLAlchemy reads, and sees
    # what was committed since (no transaction, hence no old snapshot, left open).
    with storage.write(keep=True) as tx:
        tx.secrets.insert_secret("b", None, 1, NOW, None)
    with storage.read() as tx:
        assert tx.conn is own
        assert tx.secrets.secret_by_path("b") is not None
        assert tx.conn.execute(sa.select(sa.func.count()).select_from(t.secrets)).scalar() == 2
    with storage.read() as tx:
        assert tx.conn is own
        assert tx.secrets.secret_by_path("a") is not None


def test_sqlite_pinned_read_is_one_snapshot_across_driver_and_sqlalchemy(
    sqlite_dsn: str,
) -> None:
    """The SQLAlchemy statement runs in the transaction begun on the driver: it does not see a
    row committed by another connection after the driver's first read."""
    storage = open_storage(sqlite_dsn)
    try:
        storage.pin_thread()
        with storage.read() as tx:
            assert tx.secrets.secret_by_path("late") is None  # the snapshot starts here
            raw_sql(sqlite_dsn, _RAW_INSERT.format(path="late"))
            count = tx.conn.execute(sa.select(sa.func.count()).select_from(t.secrets))
            assert count.scalar() == 0
            assert tx.secrets.secret_by_path("late") is None
        with storage.read() as tx:
            assert tx.secrets.secret_by_path("late") is not None
    finally:
        storage.dispose()


@pytest.mark.parametrize("sqlalchemy_statement", [False, True])
@pytest.mark.parametrize("outcome", ["success", "bug", "refusal"])
def test_sqlite_pinned_read_leaves_no_driver_transaction(
    sqlite_dsn: str, outcome: str, sqlalchemy_statement: bool
) -> None:
    storage = open_storage(sqlite_dsn)
    try:
        storage.pin_thread()
        raised: dict[str, type[BaseException]] = {
            "bug": RuntimeError,
            "refusal": errors.SecretNotFound,
        }
        with ExitStack() as stack:
            if outcome in raised:
                stack.enter_context(pytest.raises(raised[outcome]))
            tx = stack.enter_context(storage.read())
            own, driver = tx.conn, _driver(tx)
            assert driver.in_transaction
            tx.secrets.secret_by_path("x")
            if sqlalchemy_statement:
                tx.conn.execute(sa.select(t.secrets.c.id)).all()
            if outcome == "bug":
                raise RuntimeError("boom")
            if outcome == "refusal":
                raise errors.SecretNotFound("x")
        assert not driver.in_transaction
        assert not own.in_transaction()
        assert _sqlite_lock_free(sqlite_dsn)
        # Writers may checkpoint the whole WAL: no reader holds a snapshot.
        raw_sql(sqlite_dsn, _RAW_INSERT.format(path="p"))
        busy = raw_sql(sqlite_dsn, "PRAGMA wal_checkpoint(TRUNCATE)")[0][0]
        assert busy == 0
        with storage.read() as tx:
            # A refusal keeps the connection (it is fine); a bug replaces it.
            assert (tx.conn is own) == (outcome != "bug")
            assert tx.secrets.secret_by_path("p") is not None
        assert not _driver(tx).in_transaction
    finally:
        storage.dispose()


def test_sqlite_pinned_read_whose_rollback_is_interrupted_drops_its_connection(
    sqlite_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt (KeyboardInterrupt) raised by the rollback of a failed pinned read is
    raised, and the connection, left inside its read transaction, is dropped: the thread's
    next read opens a new one and works (found by the review of round ten's `_PinnedRead`)."""
    from strongroom.storage import engine, txbase

    storage = open_storage(sqlite_dsn)
    failed: list[str] = []
    monkeypatch.setattr(storage.health, "failed", lambda cause, writing=False: failed.append(cause))
    try:
        storage.pin_thread()
        with storage.read() as tx:
            own = tx.conn
        real = txbase.on_driver  # (what `engine` calls `on_driver`)

        def interrupted(conn: Connection, what: str, call: Callable[[Any], Any]) -> Any:
            if what == "ROLLBACK":
                raise KeyboardInterrupt  # a signal arriving during the rollback
            return real(conn, what, call)

        monkeypatch.setattr(engine, "on_driver", interrupted)
        with pytest.raises(KeyboardInterrupt), storage.read():
            raise errors.SecretNotFound("x")
        monkeypatch.setattr(engine, "on_driver", real)
        assert own.closed
        with storage.read() as tx:
            assert tx.conn is not own
            assert tx.secrets.secret_by_path("x") is None
        assert failed == []
    finally:
        storage.dispose()


# -- dispose ------------------------------------------------------------------------------------


def test_dispose_closes_the_kept_connection(storage: Storage) -> None:
    with storage.write(keep=True) as tx:
        kept, driver = tx.conn, _driver(tx)
        pid = _backend_pid(tx) if storage.dialect == "postgresql" else None
    assert not _driver_closed(driver)
    storage.dispose()
    assert _kept(storage) is None
    assert kept.closed
    assert _driver_closed(driver)  # closed for real, not only returned to a pool
    if pid is not None:
        _wait_for("the backend to end", lambda: _pg_state(pid) is None)
    with storage.write(keep=True) as tx:  # a new one after
        assert tx.conn is not kept
        tx.secrets.insert_secret("after", None, 1, NOW, None)
    assert _kept(storage) is not None


# -- the vault's writer -------------------------------------------------------------------------


def test_the_vaults_writer_keeps_one_connection(vault: Vault) -> None:
    storage = vault.state.storage
    vault.kv.write("app/one", {"v": 1})
    kept = _kept(storage)
    assert kept is not None and not kept.closed
    vault.kv.write("app/two", {"v": 2})
    vault.create_secret("plain", "value")
    assert _kept(storage) is kept
    assert vault.kv.read("app/two").data == {"v": 2}


def test_dispose_during_a_kept_write_closes_its_connection_after(storage: Storage) -> None:
    """A batch still running when the vault closes: its connection is closed when it ends."""
    with storage.write(keep=True) as tx:
        kept, driver = tx.conn, _driver(tx)
        tx.secrets.insert_secret("during", None, 1, NOW, None)
        storage.dispose()
        still_open = not kept.closed  # still in use
    assert still_open
    assert _kept(storage) is None
    assert kept.closed and _driver_closed(driver)
    with storage.write(keep=True) as tx:  # a new one after, kept
        tx.secrets.insert_secret("after", None, 1, NOW, None)
    assert _kept(storage) is not None


@pytest.mark.postgres
def test_a_write_after_a_read_found_connections_lost_runs_on_a_new_one(pg_dsn: str) -> None:
    """A restart noticed by a read first: the pool learns that every connection opened before
    is gone, and the writer's kept connection is replaced too, so the write does not fail."""
    import psycopg

    app = f"sr-read-first-{uuid.uuid4().hex[:8]}"
    storage = open_storage(f"{pg_dsn}&application_name={app}")
    try:
        with storage.write(keep=True) as tx:
            old_pid = _backend_pid(tx)
            tx.secrets.insert_secret("before", None, 1, NOW, None)
        with storage.read() as tx:  # one pooled connection, idle in the pool
            tx.secrets.secret_by_path("before")
        with psycopg.connect(PG_BASE, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (app,),
            )
        _wait_for("the backend to end", lambda: _pg_state(old_pid) is None)
        with pytest.raises(errors.StorageUnavailable):
            with storage.read() as tx:
                tx.secrets.secret_by_path("before")
        with storage.write(keep=True) as tx:
            assert _backend_pid(tx) != old_pid
            tx.secrets.insert_secret("after", None, 1, NOW, None)
        assert _paths(pg_dsn) == ["after", "before"]
    finally:
        storage.dispose()
