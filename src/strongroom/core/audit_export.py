"""Audit export: the audit trail as JSON-ready rows (for `vaultctl audit export`, JSON lines for
a SIEM).

Rows carry the entry's fields and never its MAC (the chain key stays inside; `verify_audit`
is the integrity check). Entries never hold a secret value, a key or a token.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from strongroom import errors
from strongroom.core.vault import Actor, VaultBase
from strongroom.storage import AuditRow

__all__ = ["AuditExportMixin", "ExportRow", "export_row"]

#: One exported entry: field name -> JSON scalar.
ExportRow = dict[str, str | int | bool | None]

_EXPORT_BATCH = 1000


def export_row(row: AuditRow) -> ExportRow:
    """The JSON-ready form of a stored entry (timestamp ISO-8601 UTC with microseconds, `Z`)."""
    stamp = row.timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "id": row.id,
        "timestamp": stamp,
        "secret_id": row.secret_id,
        "path": row.path,
        "user_id": row.user_id,
        "action": row.action,
        "ip_address": row.ip_address,
        "success": row.success,
        "error": row.error,
        "request_id": row.request_id,
    }


class AuditExportMixin(VaultBase):
    """`export_audit`: every entry since a moment, oldest first, streamed in batches."""

    def export_audit(
        self,
        since: datetime | None = None,
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> Iterator[ExportRow]:
        """Entries with timestamp >= `since` (all when None), oldest first, as JSON-ready dicts.

        The export itself is audited (`audit_export`) before the first row is produced; rows
        are read in batches, so memory stays flat however long the trail is.

        Raises:
            InvalidInput: `since` is not a timezone-aware datetime.
            VaultLocked: the vault is locked.
        """
        if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
            raise errors.InvalidInput("since must be a timezone-aware datetime")
        self._read_op("audit_export", Actor(user_id, ip, request_id), None, lambda tx: (None, None))
        return self._export_rows(since)

    def _export_rows(self, since: datetime | None) -> Iterator[ExportRow]:
        after = 0
        while True:
            with self._storage.read() as tx:
                rows = tx.scan_audit(after, _EXPORT_BATCH, since)
            if not rows:
                return
            for row in rows:
                yield export_row(row)
            after = rows[-1].id
