"""SQLite specifics: WAL, synchronous=FULL, busy timeout, and BEGIN IMMEDIATE for writers."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from strongroom import errors
from strongroom.storage.txbase import WriterBusy

__all__ = ["begin", "create_sqlite_engine", "sqlite_file"]

BUSY_TIMEOUT_MS = 30_000
SQLITE_BUSY = 5


def sqlite_file(dsn: str) -> Path:
    """The absolute path of the file a SQLite DSN names (nothing is created).

    Raises:
        InvalidInput: an in-memory database (it would vanish on close), or a missing directory.
    """
    database = make_url(dsn).database or ""
    if not database or database == ":memory:":
        raise errors.InvalidInput("sqlite DSN must name a file, e.g. sqlite:///vault.db")
    file = Path(database).expanduser().resolve()
    if not file.parent.is_dir():
        raise errors.InvalidInput(f"sqlite DSN: directory {str(file.parent)!r} does not exist")
    return file


def create_sqlite_engine(dsn: str) -> Engine:
    """An engine on a SQLite file with durable WAL settings.

    Raises:
        InvalidInput: an in-memory database (it would vanish on close), or a missing directory.
    """
    url = make_url(dsn)
    file = sqlite_file(dsn)
    if not file.exists():
        # Created owner-only before SQLite opens it; its -wal and -shm files take the same mode.
        try:
            os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise errors.InvalidInput(
                f"sqlite DSN: cannot create {str(file)!r}: {exc.strerror}"
            ) from exc
    engine = sa.create_engine(
        url.set(drivername="sqlite+pysqlite"),
        pool_size=8,
        max_overflow=16,
        pool_pre_ping=False,
        hide_parameters=True,  # error messages never carry values (envelopes, paths, hashes)
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is broken).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        driver = conn.connection.driver_connection
        if driver.in_transaction:
            return  # begun on the driver (`Storage`'s own connections): SQLAlchemy joins it
        options = conn.get_execution_options()
        begin(
            driver,
            immediate=options.get("sqlite_immediate", False),
            nowait=options.get("sqlite_nowait", False),
        )

    return engine


def begin(driver: sqlite3.Connection, *, immediate: bool, nowait: bool = False) -> None:
    """Begin a transaction on the driver's connection: a reader's (deferred) or a writer's
    (IMMEDIATE: the write lock now, waiting up to the busy timeout; with `nowait` not waiting).
    Straight to the driver: a SQLAlchemy execute costs ~100 us more, twice per operation.

    Raises:
        WriterBusy: with `nowait`, another connection holds the write lock.
    """
    if not immediate:
        driver.execute("BEGIN")
    elif not nowait:
        driver.execute("BEGIN IMMEDIATE")
    else:
        driver.execute("PRAGMA busy_timeout=0")
        try:
            driver.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF == SQLITE_BUSY:
                raise WriterBusy() from exc
            raise
        finally:
            driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
