"""Storage queries of the audit chain (`AuditQueries`, `tx.audit`)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strongroom.storage import tables as t
from strongroom.storage.base import AuditRow, NewAudit
from strongroom.storage.convert import audit_row
from strongroom.storage.txbase import Queries, WithCommit, execute_many, fetch_first

__all__ = ["AuditQueries"]

_A = t.audit_logs
_LAST_MAC = sa.select(_A.c.mac).order_by(_A.c.id.desc()).limit(1)
_MAX_TERM = sa.select(sa.func.max(t.key_terms.c.term))
_BATCH_HEAD = sa.select(_MAX_TERM.scalar_subquery(), _LAST_MAC.scalar_subquery())
_INSERT_AUDIT = sa.insert(_A)
#: A batch's rows (`insert_audits`): their ids are not needed, no RETURNING on PostgreSQL.
_APPEND_AUDITS = sa.insert(_A).inline()
_INSERT_AUDIT_IDS = sa.insert(_A).returning(_A.c.id, sort_by_parameter_order=True)


_AUDIT_COLUMNS = (
    "timestamp",
    "secret_id",
    "path",
    "user_id",
    "action",
    "ip_address",
    "success",
    "error",
    "request_id",
    "mac",
)


def _audit_params(entry: NewAudit, mac: str | None) -> dict[str, object]:
    return {
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
    }


class AuditQueries(Queries):
    """Audit entries: append, chain head, filtered query, scan (implements
    `core.writer.AuditSink` and `core.audit_log.AuditStore`)."""

    def batch_head(self) -> tuple[int, str | None]:
        """(newest data-key term, audit chain head) in one round trip, at a batch's start."""
        if self._with_commit is not None:
            self._with_commit.check_open()  # (rows held for the COMMIT would be missed)
        row = fetch_first(self.conn, _BATCH_HEAD, {})
        assert row is not None  # noqa: S101 - two scalar subqueries: always one row
        return int(row[0] or 0), row[1]

    def __init__(self, conn: Connection, with_commit: WithCommit | None = None) -> None:
        super().__init__(conn)
        self._with_commit = with_commit

    def insert_audits(
        self, entries: list[tuple[NewAudit, str | None]], *, last: bool = False
    ) -> None:
        """Append entries with their chain MACs, in order, in one round trip (a batch's).
        `last`: the transaction's last statement (the writer's batch); on the writer's kept
        PostgreSQL transaction the rows are then sent with its COMMIT (`WithCommit`), and
        the transaction refuses any statement of ours after them."""
        if self._with_commit is not None:
            self._with_commit.check_open()
        rows = [_audit_params(e, mac) for e, mac in entries]
        if last and self._with_commit is not None:
            self._with_commit.insert(self.conn, _APPEND_AUDITS, rows, _AUDIT_COLUMNS)
        else:
            execute_many(self.conn, _APPEND_AUDITS, rows, _AUDIT_COLUMNS)

    def insert_audits_returning(self, entries: list[tuple[NewAudit, str | None]]) -> list[int]:
        """`insert_audits`, returning the new ids in the entries' order (for audit devices)."""
        if not entries:
            return []
        rows = self.conn.execute(_INSERT_AUDIT_IDS, [_audit_params(e, mac) for e, mac in entries])
        return [int(r[0]) for r in rows]

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

    def last_audit_mac(self) -> str | None:
        """The MAC of the newest entry (the chain head), or None for an empty chain."""
        return self.conn.execute(_LAST_MAC).scalar()

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
        self,
        after_id: int,
        limit: int,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AuditRow]:
        """Entries with id > `after_id` (and `since` <= timestamp < `until`), oldest first: a
        cursor for verification and export."""
        a = t.audit_logs
        query = sa.select(a).where(a.c.id > after_id)
        if since is not None:
            query = query.where(a.c.timestamp >= since)
        if until is not None:
            query = query.where(a.c.timestamp < until)
        return [audit_row(r) for r in self.conn.execute(query.order_by(a.c.id).limit(limit))]
