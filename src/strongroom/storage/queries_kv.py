"""Storage queries of the KV v2 engine: the mount configuration and folder listing
(`KVQueries`, `tx.kv`)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from strongroom.storage import tables as t
from strongroom.storage.base import KVConfigRow
from strongroom.storage.txbase import Queries

__all__ = ["KVQueries"]


class KVQueries(Queries):
    """KV v2 queries (implements `core.kv_rows.KVStore`)."""

    # Read once per transaction: every write of a group-commit batch needs it.
    _kv_config: KVConfigRow | None = None

    def kv_config(self) -> KVConfigRow:
        """The mount-wide KV v2 settings (all zeros when never written)."""
        if self._kv_config is None:
            row = self.conn.execute(sa.select(t.kv_config).where(t.kv_config.c.id == 1)).first()
            self._kv_config = (
                KVConfigRow()
                if row is None
                else KVConfigRow(row.max_versions, bool(row.cas_required), row.delete_version_after)
            )
        return self._kv_config

    def put_kv_config(self, config: KVConfigRow, now: datetime) -> None:
        """Insert or replace the mount-wide KV v2 settings."""
        self._kv_config = None  # re-read after: a savepoint may still undo this write
        values = {
            "max_versions": config.max_versions,
            "cas_required": config.cas_required,
            "delete_version_after": config.delete_version_after,
            "updated_at": now,
        }
        c = t.kv_config
        done = self.conn.execute(sa.update(c).where(c.c.id == 1).values(**values))
        if done.rowcount == 0:
            self.conn.execute(sa.insert(c).values(id=1, **values))

    def kv_paths(self, prefix: str, now: datetime) -> list[str]:
        """Paths (only) starting with `prefix`, sorted, leaving out secrets expired at `now`."""
        s = t.secrets
        query = sa.select(s.c.path).where(sa.or_(s.c.expires_at.is_(None), s.c.expires_at > now))
        if prefix:
            query = query.where(sa.func.substr(s.c.path, 1, len(prefix)) == prefix)
        return [r[0] for r in self.conn.execute(query.order_by(s.c.path))]
