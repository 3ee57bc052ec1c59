"""The shared SQLAlchemy Core implementation of storage, for SQLite and PostgreSQL.

`Storage.read()` yields a `Tx` on a plain transaction; `Storage.write()` yields one on a write
transaction that holds the vault's single writer lock (SQLite `BEGIN IMMEDIATE`, a PostgreSQL
transaction-scoped advisory lock), so writes and the audit chain are serialised across processes.
Foreign database exceptions are translated here, once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from strongroom import errors
from strongroom.storage.health import CAUSES, StorageHealth, cause_of
from strongroom.storage.lease import Lease, try_lead
from strongroom.storage.queries_access import PolicyQueries, UserQueries
from strongroom.storage.queries_approle import AppRoleQueries
from strongroom.storage.queries_audit import AuditQueries
from strongroom.storage.queries_events import EventQueries
from strongroom.storage.queries_keys import KeyQueries
from strongroom.storage.queries_kv import KVQueries
from strongroom.storage.queries_mounts import MountQueries
from strongroom.storage.queries_rotation import RotationQueries
from strongroom.storage.queries_secrets import SecretQueries
from strongroom.storage.queries_tokens import TokenQueries
from strongroom.storage.sqlite import begin as sqlite_begin
from strongroom.storage.txbase import (
    WithCommit,
    WriterBusy,
    on_driver,
    run_statement,
    savepoint,
)

__all__ = ["Storage", "Tx"]


class Tx:
    """One transaction: its savepoints and the query groups that share its connection.

    Each group is small and implements the storage protocol one core service declares:
    `keys` (key row and terms), `secrets` (secrets and versions), `kv` (a KV mount's settings
    and listing), `mounts`, `audit` (the audit chain), `rotation` (re-encryption), `users` and
    `policies` (access), `tokens` (recorded tokens), `approles` (AppRole). Groups are built on
    first use, so a transaction pays only for the ones it touches.
    """

    def __init__(self, conn: Connection, with_commit: WithCommit | None = None) -> None:
        self.conn = conn
        #: On the writer's kept PostgreSQL transaction: what is held back to be sent with
        #: later statements, the audit rows with the COMMIT and savepoint RELEASEs with the
        #: next savepoint (`WithCommit`); None elsewhere.
        self.with_commit = with_commit

    @cached_property
    def keys(self) -> KeyQueries:
        """The key row and the data-key terms."""
        return KeyQueries(self.conn)

    @cached_property
    def secrets(self) -> SecretQueries:
        """Secrets and their versions."""
        return SecretQueries(self.conn)

    @cached_property
    def kv(self) -> KVQueries:
        """The KV v2 mount configuration and folder listing."""
        return KVQueries(self.conn)

    @cached_property
    def mounts(self) -> MountQueries:
        """Secrets engine mounts."""
        return MountQueries(self.conn)

    @cached_property
    def audit(self) -> AuditQueries:
        """The audit chain."""
        return AuditQueries(self.conn, self.with_commit)

    @cached_property
    def events(self) -> EventQueries:
        """Outgoing events: webhooks, the outbox, expiry-reminder state."""
        return EventQueries(self.conn)

    @cached_property
    def rotation(self) -> RotationQueries:
        """Master-key rotation: re-encryption batches and the rotation marker."""
        return RotationQueries(self.conn)

    @cached_property
    def users(self) -> UserQueries:
        """Built-in users."""
        return UserQueries(self.conn)

    @cached_property
    def policies(self) -> PolicyQueries:
        """Path policies."""
        return PolicyQueries(self.conn)

    @cached_property
    def tokens(self) -> TokenQueries:
        """Recorded tokens and the revocation epoch."""
        return TokenQueries(self.conn)

    @cached_property
    def approles(self) -> AppRoleQueries:
        """AppRole roles and their hashed secret ids."""
        return AppRoleQueries(self.conn)

    def savepoint(self) -> AbstractContextManager[None]:
        """Run a block whose changes are undone alone if it raises (see `txbase.savepoint`)."""
        return savepoint(self.conn, self.with_commit)


#: The vault-wide writer lock on PostgreSQL, held to the end of the transaction.
_ADVISORY_LOCK = "SELECT pg_advisory_xact_lock(%s)"


class Storage:
    """An engine plus the dialect's way to open a serialised write transaction."""

    def __init__(self, engine: Engine, dsn_label: str) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.label = dsn_label
        #: Outage transitions and failure counts by cause (read by the server's metrics).
        self.health = StorageHealth()
        self._lock_key: int | None = None
        database = engine.url.database if self.dialect == "sqlite" else None
        self._flock_path = f"{database}-writer.lock" if database else None
        # PostgreSQL reads run in autocommit: no BEGIN and COMMIT round trips around them. At
        # READ COMMITTED (the server's default isolation, known once the engine has connected:
        # `open_storage` migrates first) each statement takes its own snapshot inside a
        # transaction too, so a read sees what it saw in one; a server configured for a
        # stricter default keeps read transactions (docs/decisions.md, "Speed, round two").
        autocommit = (
            self.dialect == "postgresql"
            and engine.dialect.default_isolation_level == "READ COMMITTED"
        )
        self._reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit else engine
        )
        #: How a read on a thread's own connection opens its transaction: "BEGIN" on the
        #: driver (SQLite), nothing (PostgreSQL in autocommit), or None: SQLAlchemy's begin.
        self._own_begin: str | None = (
            "BEGIN" if self.dialect == "sqlite" else "" if autocommit else None
        )
        self._local = threading.local()
        self._pinned: list[Connection] = []
        self._pin_lock = threading.Lock()
        #: Bumped when a thread's own connection is found lost: the others' are then replaced.
        self._pin_epoch = 0
        #: The connection the vault's writer keeps between its batches (`write(keep=True)`),
        #: and who holds it.
        self._kept: Connection | None = None
        self._kept_lock = threading.Lock()
        #: `dispose` ran while the kept connection was in use: closed when its transaction ends.
        self._drop_kept_after = False
        #: The connection kept for unpinned threads' reads (`_shared_connection`), who holds
        #: it, and whether `dispose` ran meanwhile.
        self._shared: Connection | None = None
        self._shared_lock = threading.Lock()
        self._drop_shared_after = False

    def read(self) -> AbstractContextManager[Tx]:
        """A read transaction (snapshot on SQLite WAL, read committed on PostgreSQL), on the
        calling thread's own connection when it has one (`pin_thread`), else on the shared
        reader's when no other read holds it, else on one from the pool.

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        if self._own_begin is not None and getattr(self._local, "pinned", False):
            return _PinnedRead(self)  # (a server's reads: the hot path, one object)
        return self._read()

    @contextmanager
    def _read(self) -> Iterator[Tx]:
        if getattr(self._local, "pinned", False):
            with self.translated_errors():
                conn = self._own_connection()
                with self._kept_read(conn, self._drop_own):
                    yield Tx(conn)
        elif self._shared_lock.acquire(blocking=False):
            try:
                with self.translated_errors():
                    conn = self._shared_connection()
                    with self._kept_read(conn, self._drop_shared):
                        yield Tx(conn)
            finally:
                self._release_shared()
        else:
            with self.translated_errors(), self._reader.connect() as conn, conn.begin():
                yield Tx(conn)
        self.health.ok()

    @contextmanager
    def _kept_read(self, conn: Connection, drop: Callable[[Connection], None]) -> Iterator[None]:
        """A read transaction on a connection kept out of the pool (a thread's own, or the
        shared one); `drop` it when the read failed otherwise than by a refusal."""
        try:
            with self._own_transaction(conn, drop):
                yield
        except errors.StrongroomError:
            raise  # a refusal (not found, locked): the connection is fine
        except BaseException:
            drop(conn)  # a fresh one next time: this one may be broken
            raise

    def _drop_own(self, conn: Connection) -> None:
        if conn.invalidated:
            # The database ended the connection (a restart ends them all): every thread's own
            # connection is replaced before its next read, instead of each failing one request.
            self._pin_epoch += 1
        self._release_own(conn)

    def _shared_connection(self) -> Connection:
        """The connection kept for the reads of threads without one of their own (a library
        caller's), one read at a time (`_shared_lock`): checking a connection out of the pool
        and SQLAlchemy's transaction around a read cost ~40 us, a twelfth of an in-process get
        (docs/decisions.md). A read that finds it taken uses the pool, as before."""
        conn = self._shared
        if conn is not None and (conn.closed or self._outdated(conn)):
            self._drop_shared(conn)
            conn = None
        if conn is None:
            conn = self._shared = self._reader.connect()
        return conn

    def _drop_shared(self, conn: Connection) -> None:
        self._shared = None
        with contextlib.suppress(Exception):
            conn.close()

    def _release_shared(self) -> None:
        if self._drop_shared_after:
            # Disposed while this read ran: its pool is gone, the connection closed for real.
            self._drop_shared_after = False
            if self._shared is not None:
                with contextlib.suppress(Exception):
                    self._shared.invalidate()
                self._drop_shared(self._shared)
        self._shared_lock.release()

    @contextmanager
    def _own_transaction(
        self, conn: Connection, drop: Callable[[Connection], None]
    ) -> Iterator[None]:
        """A read transaction on a thread's own connection, begun and ended on the driver:
        SQLAlchemy's transaction objects and events cost about a tenth of a KV read (docs/
        decisions.md, "Speed, round three"). A statement run through SQLAlchemy inside it
        joins it (SQLAlchemy's autobegin; the SQLite begin hook sees the driver's transaction
        and emits no second BEGIN), and SQLAlchemy then ends it. A rollback that fails
        `drop`s the connection, even when the read's own error is a refusal."""
        begin = self._own_begin
        if begin is None:
            with conn.begin():
                yield
            return
        if begin:
            run_statement(conn, begin)
        try:
            yield
        except BaseException:
            try:
                if conn.in_transaction():
                    conn.rollback()
                elif begin and not conn.invalidated:
                    # (the driver's rollback: nothing when SQLite already rolled back itself)
                    on_driver(conn, "ROLLBACK", lambda driver: driver.rollback())
            except Exception:
                drop(conn)  # the error raised is the read's; a new connection next time
            raise
        if conn.in_transaction():
            conn.commit()
        elif begin:
            run_statement(conn, "COMMIT")

    def pin_thread(self) -> None:
        """Give the calling thread a connection of its own for its reads, kept between them:
        for a thread that reads all the time (a server's event loop on SQLite, its pool's
        threads on PostgreSQL), where checking a connection out of the pool and back for each
        read costs more than the read. When one is found lost, all are replaced."""
        self._local.pinned = True

    def _own_connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None and (self._local.epoch != self._pin_epoch or self._outdated(conn)):
            self._release_own(conn)  # opened before a connection was found lost
            conn = None
        if conn is None:
            epoch = self._pin_epoch
            conn = self._reader.connect()
            with self._pin_lock:
                self._pinned.append(conn)
            self._local.conn, self._local.epoch = conn, epoch
        return conn

    def _release_own(self, conn: Connection) -> None:
        self._local.conn = None
        with self._pin_lock:
            if conn in self._pinned:
                self._pinned.remove(conn)
        with contextlib.suppress(Exception):
            conn.close()

    @contextmanager
    def write(self, *, nowait: bool = False, keep: bool = False) -> Iterator[Tx]:
        """A write transaction holding the vault-wide writer lock; commits on success.
        `nowait` (SQLite): raise WriterBusy at once, before anything is done, when another
        connection holds the lock (for an event loop, which must not sleep in SQLite's busy
        handler while another process commits). `keep`: on the connection kept for the
        vault's writer, which runs one transaction at a time (`_kept_transaction`).

        Raises:
            StorageUnavailable: the database cannot be reached or the commit failed, or a
                full disk failed a write less than a second ago (fail fast, `StorageHealth`).
            WriterBusy: with `nowait`, the lock is taken.
        """
        refused = self.health.refusing()
        if refused is not None:
            raise errors.StorageUnavailable(cause=CAUSES[refused])
        with self.translated_errors(writing=True), self._writer_flock(nowait=nowait):
            if keep and self._kept_lock.acquire(blocking=False):
                try:
                    with self._kept_transaction(nowait=nowait) as tx:
                        yield tx
                finally:
                    self._kept_lock.release()
                self.health.ok()
                return
            opts = (
                {"sqlite_immediate": True, "sqlite_nowait": nowait}
                if self.dialect == "sqlite"
                else {}
            )
            with self.engine.connect().execution_options(**opts) as conn, conn.begin():
                if self.dialect == "postgresql":
                    # On the driver, prepared: once per transaction, a SQLAlchemy text()
                    # execute cost more than the lock.
                    run_statement(conn, _ADVISORY_LOCK, (self._advisory_key(conn),))
                yield Tx(conn)
        self.health.ok()

    @contextmanager
    def _kept_transaction(self, *, nowait: bool) -> Iterator[Tx]:
        """A write transaction on the kept connection, begun and ended on the driver: checking a
        connection out of the pool and SQLAlchemy's transaction around it cost ~60 us a batch,
        most of a batch's own cost at concurrency 1 (docs/decisions.md, "Speed, round three").
        Statements run through SQLAlchemy join it (see `_own_transaction`). A connection whose
        transaction failed is closed, and the next batch opens a new one. On PostgreSQL the
        batch's audit rows go with the COMMIT, and each job's RELEASE with the next job's
        SAVEPOINT (`Tx.with_commit`)."""
        conn = self._kept
        if conn is not None and self._outdated(conn):
            self._drop_kept(conn)
            conn = None
        if conn is None:
            conn = self._kept = self.engine.connect()
        if self.dialect == "sqlite":
            try:
                on_driver(
                    conn,
                    "BEGIN IMMEDIATE",
                    lambda driver: sqlite_begin(driver, immediate=True, nowait=nowait),
                )
            except WriterBusy:
                raise  # nothing was begun: the connection is fine
            except BaseException:
                self._drop_kept(conn)
                raise
        try:
            with_commit = None
            if self.dialect != "sqlite":
                key = int(self._advisory_key(conn))  # (the first batch's read of it begins)
                from strongroom.storage.pgwire import begin_with_lock  # (psycopg: PostgreSQL)

                if begin_with_lock(conn.connection.driver_connection):
                    # The BEGIN and the lock in one round trip (the key is an integer of ours).
                    run_statement(conn, f"BEGIN; SELECT pg_advisory_xact_lock({key})", begins=True)
                else:  # (psycopg begins a transaction with this statement, as it sets it up)
                    run_statement(conn, _ADVISORY_LOCK, (key,))
                with_commit = WithCommit()
            yield Tx(conn, with_commit)
            if conn.invalidated:
                # Lost inside (and the loss not raised): committing would open a new
                # connection and commit nothing on it.
                raise errors.StorageUnavailable(cause=CAUSES["connection_lost"])
            if with_commit is not None:
                # The audit rows and the COMMIT, when there are rows: psycopg's commit below
                # then sends nothing (the server reports the transaction ended).
                with_commit.commit(conn)
            if conn.in_transaction():
                conn.commit()
            else:
                on_driver(conn, "COMMIT", lambda driver: driver.commit())
        except BaseException:
            # Anything raised inside, WriterBusy too (a nested write): the transaction is
            # rolled back with the connection.
            self._drop_kept(conn)
            raise
        if self._drop_kept_after:
            # Disposed while this transaction ran: the pool it came from is gone, closed for
            # real (a connection returned to it would stay open until collected).
            self._drop_kept_after = False
            with contextlib.suppress(Exception):
                conn.invalidate()
            self._drop_kept(conn)

    def _outdated(self, conn: Connection) -> bool:
        """A connection kept out of the pool that was lost, or opened before the pool last
        learned that connections were lost (a restarted PostgreSQL ends them all): replaced,
        as the pool replaces its own on checkout."""
        if conn.invalidated:
            return True
        record = conn.connection._connection_record
        return record is not None and record.starttime < self.engine.pool._invalidate_time

    def _drop_kept(self, conn: Connection) -> None:
        """Close the kept connection (rolling back what is left of its transaction); the next
        kept write opens a new one."""
        self._kept = None
        with contextlib.suppress(Exception):
            conn.close()

    @contextmanager
    def _writer_flock(self, *, nowait: bool) -> Iterator[None]:
        """On SQLite, hold `<database>-writer.lock` (flock) around a write transaction.

        Writers of several processes (server workers) then queue in the kernel and the next
        one runs as soon as the lock is released, where SQLite's own busy handler polls with
        naps of 1-100 ms (two workers' commits alternating lost most of their throughput to
        them: docs/decisions.md). SQLite's lock still guards against any other writer.

        Raises:
            WriterBusy: with `nowait`, another transaction holds the lock.
        """
        if self._flock_path is None:
            yield
            return
        try:
            fd = os.open(self._flock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            # No lock file here (a read-only directory, a full disk): SQLite's lock alone,
            # which reports what is wrong with the database itself.
            yield
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if nowait else 0))
            except BlockingIOError as exc:
                raise WriterBusy() from exc
            yield
        finally:
            os.close(fd)  # releases the lock

    def _advisory_key(self, conn: Connection) -> int:
        if self._lock_key is None:
            # One lock per schema, so isolated test schemas do not serialise each other.
            self._lock_key = int(
                conn.execute(
                    sa.text(
                        "SELECT ('x' || substr(md5('strongroom:' || current_schema()), 1, 15))"
                        "::bit(60)::bigint"
                    )
                ).scalar_one()
            )
        return self._lock_key

    @contextmanager
    def translated_errors(self, *, writing: bool = False) -> Iterator[None]:
        """Turn the database driver's connection and commit errors into `StorageUnavailable`
        naming the cause in words (a constraint violation into `Conflict`) inside the block,
        and tell `health` (a failed write transaction is a failed audit write, see
        `storage.health.AUDIT`)."""
        try:
            yield
        except _DRIVER_ERRORS as exc:
            raise self.translated(exc, writing=writing) from exc

    def translated(
        self, exc: sa_exc.DBAPIError, *, writing: bool = False
    ) -> errors.StrongroomError:
        """The error `translated_errors` raises for a driver's error (and `health` told)."""
        if isinstance(exc, sa_exc.IntegrityError):
            return errors.Conflict("the write conflicted with stored data")
        cause = cause_of(exc)
        self.health.failed(cause, writing=writing)
        return errors.StorageUnavailable(cause=CAUSES[cause])

    def try_lead(self, name: str) -> Lease | None:
        """Leadership named `name` across every process on this database, or None when another
        process holds it (`storage.lease`; on SQLite always granted).

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        with self.translated_errors():
            return try_lead(self.engine, name)

    def dispose(self) -> None:
        """Close every pooled connection, the threads' own (`pin_thread`), the shared reader's
        and the writer's (`write(keep=True)`; one in use is closed when its transaction
        ends)."""
        with self._pin_lock:
            pinned, self._pinned = self._pinned, []
        if self._kept_lock.acquire(blocking=False):
            if self._kept is not None:
                pinned.append(self._kept)
            self._kept = None
            self._kept_lock.release()
        else:
            self._drop_kept_after = True  # in use: closed when its transaction ends
        if self._shared_lock.acquire(blocking=False):
            if self._shared is not None:
                pinned.append(self._shared)
            self._shared = None
            self._shared_lock.release()
        else:
            self._drop_shared_after = True  # in use: closed when its read ends
        for conn in pinned:
            with contextlib.suppress(Exception):
                conn.close()
        self.engine.dispose()


#: The driver's errors `Storage.translated_errors` turns into the vault's.
_DRIVER_ERRORS = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DatabaseError)


class _PinnedRead:
    """`Storage.read` on the calling thread's own connection with its transaction begun and
    ended on the driver (`pin_thread`; not PostgreSQL outside autocommit): what the nested
    `translated_errors`, `_kept_read` and `_own_transaction` do, in one object, as a server's
    event loop reads on every request (four generator context managers cost ~3 us a read:
    docs/decisions.md, "Speed, round ten")."""

    __slots__ = ("begin", "conn", "storage")

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def __enter__(self) -> Tx:
        storage = self.storage
        try:
            conn = self.conn = storage._own_connection()
        except _DRIVER_ERRORS as exc:
            raise storage.translated(exc) from exc
        begin = self.begin = storage._own_begin
        if begin:
            try:
                run_statement(conn, begin)
            except BaseException as exc:
                storage._drop_own(conn)  # (as `_kept_read`: a fresh connection next time)
                if isinstance(exc, _DRIVER_ERRORS):
                    raise storage.translated(exc) from exc
                raise
        return Tx(conn)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        storage, conn, begin = self.storage, self.conn, self.begin
        if exc is None:
            try:
                if conn.in_transaction():
                    conn.commit()
                elif begin:
                    run_statement(conn, "COMMIT")
            except BaseException as failed:
                storage._drop_own(conn)
                if isinstance(failed, _DRIVER_ERRORS):
                    raise storage.translated(failed) from failed
                raise
            storage.health.ok()
            return
        try:
            if conn.in_transaction():
                conn.rollback()
            elif begin and not conn.invalidated:
                # (the driver's rollback: nothing when SQLite already rolled back itself)
                on_driver(conn, "ROLLBACK", lambda driver: driver.rollback())
        except BaseException as failed:
            storage._drop_own(conn)  # the error raised is the read's; a new connection next time
            if not isinstance(failed, Exception):
                raise  # (an interrupt during the rollback: raised, the connection dropped)
        if isinstance(exc, errors.StrongroomError):
            return  # a refusal (not found, locked): the connection is fine; raised as it is
        storage._drop_own(conn)
        if isinstance(exc, _DRIVER_ERRORS):
            raise storage.translated(exc) from exc
