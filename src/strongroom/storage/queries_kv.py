"""Storage queries of the KV engines: a mount's KV v2 configuration and folder listing
(`KVQueries`, `tx.kv`)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from strongroom.storage import tables as t
from strongroom.storage.base import KVConfigRow
from strongroom.storage.txbase import Queries

__all__ = ["DEFAULT_MOUNT_ID", "KVQueries"]

#: The id of `secret/`, seeded by migration 0003.
DEFAULT_MOUNT_ID = 1


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
            m = t.mounts
            row = self.conn.execute(
                sa.select(m.c.max_versions, m.c.cas_required, m.c.delete_version_after).where(
                    m.c.id == mount_id
                )
            ).first()
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
        s = t.secrets
        query = sa.select(s.c.path).where(
            s.c.mount_id == mount_id, sa.or_(s.c.expires_at.is_(None), s.c.expires_at > now)
        )
        if prefix:
            query = query.where(sa.func.substr(s.c.path, 1, len(prefix)) == prefix)
        return [r[0] for r in self.conn.execute(query.order_by(s.c.path))]
