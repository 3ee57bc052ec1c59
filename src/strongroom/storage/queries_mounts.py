"""Storage queries of secrets engine mounts (`MountQueries`, `tx.mounts`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from strongroom import errors
from strongroom.storage import tables as t
from strongroom.storage.base import KVConfigRow, MountRow
from strongroom.storage.txbase import Queries, fetch_first

__all__ = ["MountQueries"]

_M = t.mounts
#: Prebuilt statement (`txbase.fetch_first`): a KV operation at a mount other than `secret/`
#: finds its mount by it (docs/decisions.md, "Speed, round four").
_MOUNT_BY_PATH = sa.select(_M).where(_M.c.path == sa.bindparam("path"))


def _mount_row(row: Any) -> MountRow:
    # Positional, in table order: rows come from SQLAlchemy or from the driver (`fetch_first`).
    (
        mount_id,
        path,
        engine,
        version,
        description,
        config,
        uuid,
        accessor,
        max_versions,
        cas_required,
        delete_version_after,
        created_at,
    ) = row[:12]
    return MountRow(
        mount_id,
        path,
        engine,
        version,
        description,
        json.loads(config or "{}"),
        uuid,
        accessor,
        KVConfigRow(max_versions, bool(cas_required), delete_version_after),
        created_at,
    )


class MountQueries(Queries):
    """Mount rows (implements `core.mounts.MountStore`)."""

    def list_mounts(self) -> list[MountRow]:
        """Every mount, by path."""
        return [_mount_row(r) for r in self.conn.execute(sa.select(_M).order_by(_M.c.path))]

    def mount_by_path(self, path: str) -> MountRow | None:
        """The mount at exactly `path` (ending in `/`)."""
        row = fetch_first(self.conn, _MOUNT_BY_PATH, {"path": path})
        return _mount_row(row) if row else None

    def insert_mount(self, mount: MountRow, now: datetime) -> int:
        """Create a mount (its `id` is ignored); return its id.

        Raises:
            MountExists: the path is taken.
        """
        try:
            with self.savepoint():
                result = self.conn.execute(
                    sa.insert(_M).values(
                        path=mount.path,
                        type=mount.type,
                        version=mount.version,
                        description=mount.description,
                        config=json.dumps(mount.config, sort_keys=True),
                        uuid=mount.uuid,
                        accessor=mount.accessor,
                        max_versions=mount.kv.max_versions,
                        cas_required=mount.kv.cas_required,
                        delete_version_after=mount.kv.delete_version_after,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except sa_exc.IntegrityError as exc:
            raise errors.MountExists() from exc
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def update_mount(self, mount_id: int, now: datetime, **values: Any) -> None:
        """Change columns of a mount (`config` given as a dict).

        Raises:
            MountExists: a new `path` is taken.
        """
        if "config" in values:
            values["config"] = json.dumps(values["config"], sort_keys=True)
        try:
            with self.savepoint():
                self.conn.execute(
                    sa.update(_M).where(_M.c.id == mount_id).values(updated_at=now, **values)
                )
        except sa_exc.IntegrityError as exc:
            raise errors.MountExists() from exc

    def delete_mount(self, mount_id: int) -> int:
        """Delete a mount with every secret and version in it; return how many secrets went.
        Audit rows are not linked and stay."""
        s, v = t.secrets, t.secret_versions
        ids = sa.select(s.c.id).where(s.c.mount_id == mount_id).scalar_subquery()
        self.conn.execute(sa.delete(v).where(v.c.secret_id.in_(ids)))
        gone = self.conn.execute(sa.delete(s).where(s.c.mount_id == mount_id)).rowcount
        self.conn.execute(sa.delete(_M).where(_M.c.id == mount_id))
        return int(gone)
