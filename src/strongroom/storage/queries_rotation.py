"""Storage queries of master-key rotation: re-encryption batches, terms in use, the rotation
marker (`RotationQueries`, `tx.rotation`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from strongroom.storage import tables as t
from strongroom.storage.base import VersionRow
from strongroom.storage.convert import version_row
from strongroom.storage.txbase import Queries

__all__ = ["RotationQueries"]


class RotationQueries(Queries):
    """Rotation queries (implements `core.rotation.RotationStore`)."""

    def count_versions_below_term(self, term: int) -> int:
        """How many live versions still use a term older than `term`."""
        v = t.secret_versions
        query = (
            sa.select(sa.func.count())
            .select_from(v)
            .where(v.c.key_term < term, v.c.value.is_not(None))
        )
        return int(self.conn.execute(query).scalar_one())

    def count_secrets_below_term(self, term: int) -> int:
        """How many secrets have at least one live version under a term older than `term`."""
        v = t.secret_versions
        query = sa.select(sa.func.count(sa.distinct(v.c.secret_id))).where(
            v.c.key_term < term, v.c.value.is_not(None)
        )
        return int(self.conn.execute(query).scalar_one())

    def versions_below_term_after(
        self,
        term: int,
        after_id: int,
        limit: int,
    ) -> list[tuple[int, VersionRow, str]]:
        """Up to `limit` live versions under a term older than `term` whose row id is above
        `after_id`, oldest row first, as (row id, version, path): a cursor that can step past
        a version it could not re-encrypt."""
        v, s = t.secret_versions, t.secrets
        query = (
            sa.select(v, s.c.path)
            .join(s, s.c.id == v.c.secret_id)
            .where(v.c.key_term < term, v.c.value.is_not(None), v.c.id > after_id)
            .order_by(v.c.id)
            .limit(limit)
        )
        return [(int(r.id), version_row(r[1:]), r.path) for r in self.conn.execute(query)]

    def rewrite_versions(self, rows: list[tuple[int, str, int]]) -> None:
        """Store re-encrypted envelopes as (row id, envelope, term), in one executemany."""
        if not rows:
            return
        v = t.secret_versions
        stmt = (
            sa.update(v)
            .where(v.c.id == sa.bindparam("row_id"))
            .values(value=sa.bindparam("envelope"), key_term=sa.bindparam("term"))
        )
        self.conn.execute(stmt, [{"row_id": r, "envelope": e, "term": k} for r, e, k in rows])

    def terms_in_use(self) -> set[int]:
        """Terms referenced by at least one stored version."""
        v = t.secret_versions
        rows = self.conn.execute(sa.select(v.c.key_term).where(v.c.value.is_not(None)).distinct())
        return {int(r[0]) for r in rows if r[0] is not None}

    def set_rotation(self, rotation: dict[str, Any] | None, now: datetime) -> None:
        """Set or clear the rotation marker of the key row, leaving the keys as they are."""
        self.conn.execute(
            sa.update(t.keys)
            .where(t.keys.c.id == 1)
            .values(rotation=json.dumps(rotation) if rotation else None, updated_at=now)
        )
