"""`Vault`: the complete vault service, assembled from its parts (secrets, KV v2, rotation,
users and policies, audit queries and export); every part shares `VaultBase`'s lock state and
writer.
"""

from __future__ import annotations

from datetime import datetime

from strongroom import errors
from strongroom.core.access import AccessMixin
from strongroom.core.audit import entry_from_row, verify_chain
from strongroom.core.audit_export import AuditExportMixin
from strongroom.core.kv import KVMixin
from strongroom.core.rotation import RotationMixin
from strongroom.models import AuditEntry, AuditVerification

__all__ = ["Vault"]

MAX_AUDIT_LIMIT = 10_000


class Vault(AccessMixin, RotationMixin, AuditExportMixin, KVMixin):
    """A vault on one database. Thread-safe; share one instance per process."""

    def audit_logs(
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
        self._require_unlocked()
        with self._storage.read() as tx:
            rows = tx.query_audit(
                path=path, user_id=user_id, action=action, since=since, limit=limit
            )
        return [entry_from_row(r) for r in rows]

    def verify_audit(self) -> AuditVerification:
        """Verify the audit hash chain from the first entry to the last.

        Raises:
            VaultLocked: the vault is locked (the chain key derives from the root key).
        """
        self._require_unlocked()
        return verify_chain(self._storage, self._barrier.vault_id, self._barrier.mac)
