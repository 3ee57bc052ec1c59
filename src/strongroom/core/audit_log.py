"""`AuditLog`: reading the audit trail — filtered queries, chain verification (optionally against
an exported anchor) and export (JSON rows for `vaultctl audit export` and
`GET /api/vault/audit/export`, read in batches so memory stays flat however long the trail is).

Storage: `AuditStore` (`tx.audit`). Exported rows carry the entry's fields and its chain MAC
(an HMAC output, never the chain key: the last row's id and MAC are the anchor that
`verify(anchor)` checks). Entries never hold a secret value, a key or a token.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Protocol

from strongroom import errors
from strongroom.core.audit import entry_from_row, verify_chain
from strongroom.core.audit_export import EXPORT_FIELDS
from strongroom.core.state import VaultState
from strongroom.models import DEFAULT_ACTOR, Actor, AuditAnchor, AuditEntry, AuditVerification
from strongroom.storage import AuditRow, Tx

__all__ = ["EXPORT_FIELDS", "AuditLog", "AuditStore", "ExportRow", "export_row"]

#: One exported entry: field name -> JSON scalar.
ExportRow = dict[str, str | int | bool | None]

MAX_AUDIT_LIMIT = 10_000
_EXPORT_BATCH = 1000


class AuditStore(Protocol):
    """Reading stored entries (`tx.audit`)."""

    def query_audit(
        self,
        *,
        path: str | None = None,
        user_id: int | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[AuditRow]: ...

    def scan_audit(
        self,
        after_id: int,
        limit: int,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AuditRow]: ...


def _store(tx: Tx) -> AuditStore:
    return tx.audit


#: The fields of an exported row, in order (the CSV header).


def export_row(row: AuditRow) -> ExportRow:
    """The JSON-ready form of a stored entry (timestamp ISO-8601 UTC with microseconds, `Z`),
    with its chain MAC."""
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
        "mac": row.mac,
    }


class AuditLog:
    """The audit trail of one vault (`vault.audit`)."""

    def __init__(self, state: VaultState) -> None:
        self._state = state

    def query(
        self,
        *,
        path: str | None = None,
        user_id: int | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[AuditEntry]:
        """Audit entries matching every given filter, newest first.

        Raises:
            InvalidInput: `limit` outside 1..10000, or `since` without a timezone.
            VaultLocked: the vault is locked.
        """
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not (1 <= limit <= MAX_AUDIT_LIMIT)
        ):
            raise errors.InvalidInput(f"limit must be an integer from 1 to {MAX_AUDIT_LIMIT}")
        if since is not None and since.tzinfo is None:
            raise errors.InvalidInput("since must be timezone-aware")
        self._state.require_unlocked()
        with self._state.storage.read() as tx:
            rows = _store(tx).query_audit(
                path=path, user_id=user_id, action=action, since=since, limit=limit
            )
        return [entry_from_row(r) for r in rows]

    def verify(self, anchor: AuditAnchor | None = None) -> AuditVerification:
        """Verify the audit hash chain from the first entry to the last; with an `anchor`
        (an exported head), also that the anchored entry is still there, unchanged.

        Raises:
            VaultLocked: the vault is locked (the chain key derives from the root key).
        """
        self._state.require_unlocked()
        barrier = self._state.barrier
        return verify_chain(self._state.storage, barrier.vault_id, barrier.mac, anchor)

    def export(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        actor: Actor = DEFAULT_ACTOR,
    ) -> Iterator[ExportRow]:
        """Entries with `since` <= timestamp < `until` (either open when None), oldest first,
        as JSON-ready dicts (see `export_batches`).

        Raises:
            InvalidInput: `since` or `until` is not a timezone-aware datetime.
            VaultLocked: the vault is locked.
        """
        batches = self.export_batches(since, until, actor=actor)
        return (row for batch in batches for row in batch)

    def export_batches(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        actor: Actor = DEFAULT_ACTOR,
    ) -> Iterator[list[ExportRow]]:
        """The export in batches of at most 1000 rows, one short read transaction each (a
        keyset cursor on the id), so memory stays flat however long the trail is and a
        server can read each batch in a worker thread.

        The export itself is audited (`audit_export`) before this returns; an export without
        `until` therefore ends with its own entry, the chain head at that moment.

        Raises:
            InvalidInput: `since` or `until` is not a timezone-aware datetime.
            VaultLocked: the vault is locked.
        """
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
                raise errors.InvalidInput(f"{name} must be a timezone-aware datetime")
        self._state.read("audit_export", actor, None, lambda tx: (None, None))
        return self._batches(since, until)

    def _batches(self, since: datetime | None, until: datetime | None) -> Iterator[list[ExportRow]]:
        after = 0
        while True:
            with self._state.storage.read() as tx:
                rows = _store(tx).scan_audit(after, _EXPORT_BATCH, since, until)
            if not rows:
                return
            after = rows[-1].id
            yield [export_row(row) for row in rows]
