"""Storage queries of the audit chain and of rotation (re-encryption batches), a part of `Tx`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from strongroom.storage import tables as t
from strongroom.storage.base import AuditRow, NewAudit, VersionRow
from strongroom.storage.convert import audit_row, version_row
from strongroom.storage.txbase import TxBase

__all__ = ["AuditQueries"]

_A = t.audit_logs
_LAST_MAC = sa.select(_A.c.mac).order_by(_A.c.id.desc()).limit(1)
_MAX_TERM = sa.select(sa.func.max(t.key_terms.c.term))
_BATCH_HEAD = sa.select(_MAX_TERM.scalar_subquery(), _LAST_MAC.scalar_subquery())
_INSERT_AUDIT = sa.insert(_A)


class AuditQueries(TxBase):
    """Audit and rotation queries; mixed into `engine.Tx`, which provides `conn`."""

    # -- rotation -------------------------------------------------------------------------
    def count_versions_below_term(self, term: int) -> int:
        """How many live versions still use a term older than `term`."""
        v = t.secret_versions
        query = (
            sa.select(sa.func.count())
            .select_from(v)
            .where(v.c.key_term < term, v.c.value.is_not(None))
        )
        return int(self.conn.execute(query).scalar_one())

    def terms_in_use(self) -> set[int]:
        """Terms referenced by at least one stored version."""
        v = t.secret_versions
        rows = self.conn.execute(sa.select(v.c.key_term).where(v.c.value.is_not(None)).distinct())
        return {int(r[0]) for r in rows if r[0] is not None}

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
        return [(int(r.id), version_row(r), r.path) for r in self.conn.execute(query)]

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

    def count_secrets_below_term(self, term: int) -> int:
        """How many secrets have at least one live version under a term older than `term`."""
        v = t.secret_versions
        query = sa.select(sa.func.count(sa.distinct(v.c.secret_id))).where(
            v.c.key_term < term, v.c.value.is_not(None)
        )
        return int(self.conn.execute(query).scalar_one())

    def set_rotation(self, rotation: dict[str, Any] | None, now: datetime) -> None:
        """Set or clear the rotation marker of the key row, leaving the keys as they are."""
        self.conn.execute(
            sa.update(t.keys)
            .where(t.keys.c.id == 1)
            .values(rotation=json.dumps(rotation) if rotation else None, updated_at=now)
        )

    # -- audit ----------------------------------------------------------------------------
    def last_audit_mac(self) -> str | None:
        """The MAC of the newest entry (the chain head), or None for an empty chain."""
        return self.conn.execute(_LAST_MAC).scalar()

    def insert_audit(self, entry: NewAudit, mac: str | None) -> int:
        """Append an entry with its chain MAC; return its id."""
        result = self.conn.execute(
            _INSERT_AUDIT,
            {
                "timestamp": entry.timestamp,
                "secret_id": entry.secret_id,
                "path": entry.path,
                "user_id": entry.user_id,
                "action": entry.action,
                "ip_address": entry.ip_address,
                "success": entry.success,
                "error": entry.error,
                "request_id": entry.request_id,
                "mac": mac,
            },
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def batch_head(self) -> tuple[int, str | None]:
        """(newest data-key term, audit chain head) in one round trip, at a batch's start."""
        row = self.conn.execute(_BATCH_HEAD).one()
        return int(row[0] or 0), row[1]

    def max_term(self) -> int:
        """The newest data-key term stored (0 when none)."""
        return int(self.conn.execute(_MAX_TERM).scalar() or 0)

    def query_audit(
        self,
        *,
        path: str | None = None,
        user_id: int | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[AuditRow]:
        """Entries matching every given filter, newest first."""
        a = t.audit_logs
        query = sa.select(a)
        if path is not None:
            query = query.where(a.c.path == path)
        if user_id is not None:
            query = query.where(a.c.user_id == user_id)
        if action is not None:
            query = query.where(a.c.action == action)
        if since is not None:
            query = query.where(a.c.timestamp >= since)
        return [audit_row(r) for r in self.conn.execute(query.order_by(a.c.id.desc()).limit(limit))]

    def scan_audit(
        self, after_id: int, limit: int, since: datetime | None = None
    ) -> list[AuditRow]:
        """Entries with id > `after_id` (and timestamp >= `since`), oldest first: a cursor for
        verification and export."""
        a = t.audit_logs
        query = sa.select(a).where(a.c.id > after_id)
        if since is not None:
            query = query.where(a.c.timestamp >= since)
        return [audit_row(r) for r in self.conn.execute(query.order_by(a.c.id).limit(limit))]
