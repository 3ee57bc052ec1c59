"""The audit hash chain: canonical entry encoding, MAC linking and end-to-end verification.

Every entry written while the vault is unlocked stores ``mac = HMAC(audit key, prev_mac ||
canonical(entry))``, where `prev_mac` is the newest chained entry's MAC (the vault id for the
first). Entries are appended under the vault-wide writer lock, so id order is chain order, across
processes too. Entries written while locked (failed unlocks, calls refused as locked) cannot be
MACed and are stored with no MAC: verification counts them as "unchained" and skips them, and
nulling the MAC of a chained entry breaks the link of the entry after it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable

from strongroom.models import AuditEntry, AuditVerification
from strongroom.storage import AuditRow, NewAudit, Storage

__all__ = ["canonical", "entry_from_row", "verify_chain"]

_SCAN_BATCH = 2000


def canonical(prev_mac: str, entry: NewAudit | AuditRow) -> bytes:
    """The bytes an entry's MAC covers (JSON array: unambiguous, stable)."""
    return json.dumps([
        prev_mac, entry.timestamp.isoformat(), entry.secret_id, entry.path, entry.user_id,
        entry.action, entry.ip_address, entry.success, entry.error, entry.request_id,
    ], separators=(",", ":"), ensure_ascii=True).encode("ascii")


def entry_from_row(row: AuditRow) -> AuditEntry:
    """The public view of a stored entry (no MAC)."""
    return AuditEntry(row.id, row.timestamp, row.secret_id, row.path, row.user_id, row.action,
                      row.ip_address, row.success, row.error, row.request_id)


def verify_chain(storage: Storage, genesis: str, mac: Callable[[bytes], str]) -> AuditVerification:
    """Walk every entry in id order and report the first one whose MAC does not link."""
    prev, entries, unchained, after = genesis, 0, 0, 0
    while True:
        with storage.read() as tx:
            rows = tx.scan_audit(after, _SCAN_BATCH)
        if not rows:
            return AuditVerification(True, entries, None, unchained)
        for row in rows:
            after = row.id
            if row.mac is None:
                unchained += 1
                continue
            entries += 1
            if not hmac.compare_digest(mac(canonical(prev, row)), row.mac):
                return AuditVerification(False, entries, row.id, unchained,
                                         "entry changed, or an entry before it removed or inserted")
            prev = row.mac
