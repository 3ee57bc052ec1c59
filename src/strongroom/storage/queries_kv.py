"""Storage queries of the KV engines: a mount's KV v2 configuration and folder listing
(`KVQueries`, `tx.kv`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from strongroom.storage import tables as t
from strongroom.storage.base import KVConfigRow
from strongroom.storage.txbase import (
    Queries,
    bytewise,
    fetch_column,
    fetch_first,
    prefix_range,
)

__all__ = ["DEFAULT_MOUNT_ID", "KVQueries"]

#: The id of `secret/`, seeded by migration 0003.
DEFAULT_MOUNT_ID = 1

# Folder listing, built once (`kv_paths`): every unexpired path of a mount, sorted; those
# starting with a prefix; and on SQLite the same as a range of the unique index on path.
_S = t.secrets
_M = t.mounts
# A mount's KV v2 settings, read in every write transaction that stores a version.
_KV_CONFIG = sa.select(_M.c.max_versions, _M.c.cas_required, _M.c.delete_version_after).where(
    _M.c.id == sa.bindparam("mount")
)


def _paths(mount_id: sa.ColumnElement[int]) -> sa.Select[Any]:
    return (
        sa.select(_S.c.path)
        .where(
            mount_id == sa.bindparam("mount"),
            sa.or_(
                _S.c.expires_at.is_(None),
                _S.c.expires_at > sa.bindparam("now", type_=t.UTCDateTime),
            ),
        )
        .order_by(_S.c.path)
    )


def _under(query: sa.Select[Any]) -> sa.Select[Any]:
    return query.where(sa.func.substr(_S.c.path, 1, sa.bindparam("n")) == sa.bindparam("prefix"))


_KV_PATHS = _paths(_S.c.mount_id)
_KV_PATHS_UNDER = _under(_KV_PATHS)


def _range(dialect: str, mount_id: sa.ColumnElement[int]) -> sa.Select[Any]:
    path = bytewise(_S.c.path, dialect)
    return _paths(mount_id).where(path >= sa.bindparam("low"), path < sa.bindparam("high"))


# The paths under a prefix as one range of an index in bytewise order (`txbase.prefix_range`),
# which needs no substr test beside it (that cost ~55 us a folder of 1,000 on SQLite;
# docs/decisions.md, "Speed, round twelve"). SQLite: the unique index on path, which also
# gives the order; `mount_id + 0` keeps the planner off the index on mount_id, which it
# preferred: it read and sorted the whole mount for one folder (a folder of 1,000 in a mount
# of 4,000: 870 -> 390 us). PostgreSQL: `idx_vault_secrets_mount_path` (migration 0007), where
# substr read every secret of the mount (13 -> 0.6 ms for 1,000 among 100,000).
_KV_PATHS_RANGE = {
    "sqlite": _range("sqlite", _S.c.mount_id + 0),
    "postgresql": _range("postgresql", _S.c.mount_id),
}


class KVQueries(Queries):
    """KV queries (implements `core.kv_rows.KVStore`)."""

    def __init__(self, conn: sa.Connection) -> None:
        super().__init__(conn)
        # Read once per transaction: every write of a group-commit batch needs it.
        self._kv_config: dict[int, KVConfigRow] = {}

    def kv_config(self, mount_id: int = DEFAULT_MOUNT_ID) -> KVConfigRow:
        """The mount-wide KV v2 settings of a mount (all zeros when it has none)."""
        cached = self._kv_config.get(mount_id)
        if cached is None:
            row = fetch_first(self.conn, _KV_CONFIG, {"mount": mount_id})
            cached = KVConfigRow() if row is None else KVConfigRow(row[0], bool(row[1]), row[2])
            self._kv_config[mount_id] = cached
        return cached

    def put_kv_config(
        self, config: KVConfigRow, now: datetime, mount_id: int = DEFAULT_MOUNT_ID
    ) -> None:
        """Replace a mount's KV v2 settings."""
        self._kv_config.clear()  # re-read after: a savepoint may still undo this write
        m = t.mounts
        self.conn.execute(
            sa.update(m)
            .where(m.c.id == mount_id)
            .values(
                max_versions=config.max_versions,
                cas_required=config.cas_required,
                delete_version_after=config.delete_version_after,
                updated_at=now,
            )
        )

    def kv_paths(self, prefix: str, now: datetime, mount_id: int = DEFAULT_MOUNT_ID) -> list[str]:
        """Stored paths (only) of a mount starting with `prefix`, sorted, leaving out secrets
        expired at `now`."""
        values: dict[str, Any] = {"mount": mount_id, "now": now}
        if not prefix:
            return fetch_column(self.conn, _KV_PATHS, values)
        dialect = self.conn.dialect.name
        bounds = prefix_range(dialect, prefix)
        if bounds is not None:
            values.update(low=bounds[0], high=bounds[1])
            return fetch_column(self.conn, _KV_PATHS_RANGE[dialect], values)
        values.update(n=len(prefix), prefix=prefix)
        return fetch_column(self.conn, _KV_PATHS_UNDER, values)
