"""Is there a vault at a DSN? Answered without creating, migrating or changing anything.

`open_storage` creates a missing SQLite file and migrates an empty database; commands that only
read must not, so they ask here first. A SQLite file is never created by the probe (it is opened
only if it exists, with `mode=rw`); a PostgreSQL database is only read (catalog + `vault_keys`).
"""

from __future__ import annotations

import sqlite3
from enum import Enum

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from strongroom import errors

__all__ = ["DatabaseState", "database_state"]


class DatabaseState(Enum):
    """What a DSN holds."""

    #: No database file, or a database without Strongroom's tables.
    MISSING = "missing"
    #: Strongroom's tables (perhaps users or policies) but no vault keys yet.
    EMPTY = "empty"
    #: An initialised vault.
    INITIALISED = "initialised"


def _sqlite_state(dsn: str) -> DatabaseState:
    from strongroom.storage.sqlite import sqlite_file

    file = sqlite_file(dsn)
    if not file.is_file() or file.stat().st_size == 0:
        return DatabaseState.MISSING
    try:
        conn = sqlite3.connect(f"{file.as_uri()}?mode=rw", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise errors.StorageUnavailable(
            f"cannot open database {file}: {type(exc).__name__}"
        ) from exc
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "vault_keys" not in tables:
            return DatabaseState.MISSING
        row = conn.execute("SELECT 1 FROM vault_keys LIMIT 1").fetchone()
    except sqlite3.DatabaseError as exc:
        raise errors.StorageUnavailable(
            f"cannot read database {file}: {type(exc).__name__}"
        ) from exc
    finally:
        conn.close()
    return DatabaseState.INITIALISED if row else DatabaseState.EMPTY


def _postgres_state(dsn: str, label: str) -> DatabaseState:
    from strongroom.storage.postgres import create_postgres_engine

    engine = create_postgres_engine(dsn)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("vault_keys"):
                return DatabaseState.MISSING
            row = conn.execute(sa.text("SELECT 1 FROM vault_keys LIMIT 1")).first()
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DatabaseError) as exc:
        raise errors.StorageUnavailable(
            f"cannot open database {label!r}: {type(exc.orig or exc).__name__}"
        ) from exc
    finally:
        engine.dispose()
    return DatabaseState.INITIALISED if row else DatabaseState.EMPTY


def database_state(dsn: str) -> DatabaseState:
    """What the database at `dsn` holds, found without creating or changing anything.

    Raises:
        InvalidInput: malformed or unsupported DSN.
        StorageUnavailable: the database exists but cannot be read.
    """
    scheme = dsn.split(":", 1)[0].lower() if ":" in dsn else ""
    try:
        if scheme.startswith("sqlite"):
            return _sqlite_state(dsn)
        if scheme.startswith(("postgresql", "postgres")):
            from strongroom.storage import redact_dsn

            return _postgres_state(dsn, redact_dsn(dsn))
    except sa_exc.ArgumentError as exc:
        raise errors.InvalidInput("invalid DSN") from exc
    raise errors.InvalidInput(
        "unsupported DSN: use sqlite:///file.db, postgresql://user@host/db or postgres://..."
    )
