"""Raw-row snapshots of every vault table, for backup and restore. Never sees plaintext or keys.

`snapshot(storage)` reads all tables in one consistent transaction (SQLite WAL snapshot,
PostgreSQL REPEATABLE READ READ ONLY) and yields JSON-safe rows: envelopes, wrapped keys and MACs
exactly as stored, bytes as base64, times as ISO-8601 with microseconds (the audit MAC covers
them). `load(storage, rows)` writes such rows into an empty database in one write transaction,
keeping ids (so audit entries keep pointing at the right secrets), and checks the counts before it
commits: a failed load leaves the database as it was.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strongroom import errors
from strongroom.storage import tables as t
from strongroom.storage.engine import Storage

__all__ = ["TABLES", "Row", "Snapshot", "decode_bytes", "is_empty", "load", "snapshot"]

#: Dump order: keys before the data they open, secrets before their versions.
TABLES: list[sa.Table] = [
    t.keys,
    t.key_terms,
    t.mounts,
    t.secrets,
    t.secret_versions,
    t.audit_logs,
    t.users,
    t.policies,
]
_BY_NAME = {table.name: table for table in TABLES}
_SERIAL = [t.mounts, t.secrets, t.secret_versions, t.audit_logs, t.users]
_BATCH = 500

#: (table name, column -> JSON-safe value)
Row = tuple[str, dict[str, Any]]


def decode_bytes(text: str) -> bytes:
    """A binary column's value as dumped (base64).

    Raises:
        InvalidInput: not base64.
    """
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise errors.InvalidInput("backup: bad binary value") from exc


def _encode(column: sa.Column[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, sa.LargeBinary):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _decode(column: sa.Column[Any], value: Any) -> Any:
    if value is None:
        return None
    try:
        if isinstance(column.type, sa.LargeBinary):
            return base64.b64decode(value, validate=True)
        if isinstance(column.type, t.UTCDateTime):
            return datetime.fromisoformat(value)
        if isinstance(column.type, sa.Boolean):
            return bool(value)
    except (ValueError, TypeError) as exc:
        raise errors.InvalidInput(
            f"backup: bad value in {column.table.name}.{column.name}"
        ) from exc
    return value


def _order(table: sa.Table) -> list[sa.Column[Any]]:
    return list(table.primary_key.columns)


class Snapshot:
    """Rows of one consistent read transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {
            table.name: int(
                self._conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            )
            for table in TABLES
        }

    def rows(self) -> Iterator[Row]:
        """Every row of every table, in dump order, streamed."""
        for table in TABLES:
            result = self._conn.execution_options(yield_per=_BATCH).execute(
                sa.select(table).order_by(*_order(table))
            )
            for row in result:
                mapping = row._mapping
                yield table.name, {c.name: _encode(c, mapping[c.name]) for c in table.columns}


@contextmanager
def snapshot(storage: Storage) -> Iterator[Snapshot]:
    """A consistent view of every vault table.

    Raises:
        StorageUnavailable: the database cannot be reached.
    """
    with storage.translated_errors(), storage.engine.connect() as conn:
        if storage.dialect == "postgresql":
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with conn.begin():
            yield Snapshot(conn)


def _empty(conn: Connection) -> bool:
    # `vault_mounts` is left out: a new database holds the seeded `secret/` mount.
    return all(
        conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is None
        for table in TABLES
        if table is not t.mounts
    )


def is_empty(storage: Storage) -> bool:
    """True when no vault table holds a row.

    Raises:
        StorageUnavailable: the database cannot be reached.
    """
    with storage.read() as tx:
        return _empty(tx.conn)


def load(storage: Storage, rows: Iterable[Row], expected: dict[str, int]) -> dict[str, int]:
    """Insert `rows` (as `Snapshot.rows` yields them) into an empty database; return the counts.

    Raises:
        Conflict: the database is not empty (nothing is written).
        IntegrityError: the rows loaded do not match `expected` (rolled back).
        InvalidInput: a row names an unknown table or column.
        StorageUnavailable: the database cannot be reached.
    """
    with storage.write() as tx:
        conn = tx.conn
        if not _empty(conn):
            raise errors.Conflict("restore needs an empty database; this one holds a vault")
        conn.execute(sa.delete(t.mounts))  # the seeded `secret/`: the backup has its own
        pending: list[dict[str, Any]] = []
        current: sa.Table | None = None
        for name, raw in rows:
            table = _BY_NAME.get(name)
            if table is None or not set(raw) <= set(table.columns.keys()):
                raise errors.InvalidInput(f"backup: unknown table or column in {name!r}")
            if table is not current or len(pending) >= _BATCH:
                _flush(conn, current, pending)
                current, pending = table, []
            pending.append({c: _decode(table.columns[c], v) for c, v in raw.items()})
        _flush(conn, current, pending)
        if storage.dialect == "postgresql":
            for table in _SERIAL:
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                        f"COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table.name}"
                    )
                )
        counts = {
            table.name: int(
                conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            )
            for table in TABLES
        }
        if counts != {name: expected.get(name, 0) for name in counts}:
            raise errors.IntegrityError(
                "restore verification failed: row counts differ from the backup"
            )
        return counts


def _flush(conn: Connection, table: sa.Table | None, pending: list[dict[str, Any]]) -> None:
    if table is not None and pending:
        conn.execute(sa.insert(table), pending)
