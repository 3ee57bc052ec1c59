"""Backup and restore of a whole vault: a verified, self-checking JSON-lines snapshot.

File layout, one JSON document per line::

    {"format": "strongroom-backup", "format_version": 1, "schema": "0001", "vault_id": ...,
     "created_at": ..., "counts": {table: rows}}
    {"t": "<table>", "r": {<column>: <value>}}          (one line per row, keys first)
    {"end": true, "counts": {...}, "sha256": "<hex of every line above, newlines included>"}

The file holds what the database holds: envelopes, keys wrapped under the master key, the audit
chain. It is as safe as the database itself and needs the master key to be of any use.
`restore` refuses a truncated or altered file, checks the master key, decrypts every version and
verifies the audit chain BEFORE it writes anything, then loads an empty database in one
transaction and re-opens it as a vault. This module never writes a plaintext or key anywhere.

`Backup` (the `vault.backup` service) uses only the public surface of `VaultState`; `restore`
opens a fresh `VaultState` on the restored database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from strongroom import errors
from strongroom.api import Progress
from strongroom.core.audit import canonical, verify_chain
from strongroom.core.options import VaultConfig
from strongroom.core.state import VaultState
from strongroom.crypto import Barrier, SealedRoot, SealedTerm
from strongroom.models import DEFAULT_ACTOR, Actor, iso
from strongroom.storage import (
    HEAD_REVISION,
    SAME_ROWS_AS_HEAD,
    AuditRow,
    open_storage,
    snapshot,
)

__all__ = ["Backup", "BackupSummary", "restore"]

FORMAT = "strongroom-backup"
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """What a backup holds (or a restore loaded): rows per table and the vault id."""

    vault_id: str
    counts: dict[str, int]

    @property
    def secrets(self) -> int:
        """Secrets in the backup."""
        return self.counts.get("vault_secrets", 0)

    @property
    def versions(self) -> int:
        """Secret versions in the backup."""
        return self.counts.get("vault_secret_versions", 0)

    @property
    def audit_entries(self) -> int:
        """Audit entries in the backup."""
        return self.counts.get("vault_audit_logs", 0)


def _line(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"


class Backup:
    """Writing a verified snapshot of the whole vault (`vault.backup`)."""

    def __init__(self, state: VaultState) -> None:
        self._state = state

    def write(
        self, out: TextIO, *, actor: Actor = DEFAULT_ACTOR, progress: Progress | None = None
    ) -> BackupSummary:
        """Write a consistent snapshot of the whole vault to `out` (audited as `backup`).

        Raises:
            VaultLocked: the vault is locked (a backup is a privileged, audited operation).
            StorageUnavailable: the database cannot be read.
        """
        state = self._state
        try:
            state.require_unlocked()
            summary = self._dump(out, progress)
        except errors.StrongroomError as exc:
            state.audit(state.entry("backup", actor, success=False, error=exc))
            raise
        state.audit(state.entry("backup", actor))
        return summary

    def _dump(self, out: TextIO, progress: Progress | None) -> BackupSummary:
        digest = hashlib.sha256()

        def write(data: dict[str, Any]) -> None:
            text = _line(data)
            digest.update(text.encode("ascii"))
            out.write(text)

        vault_id = self._state.barrier.vault_id
        with snapshot.snapshot(self._state.storage) as snap:
            counts = snap.counts()
            total = sum(counts.values())
            write(
                {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "schema": HEAD_REVISION,
                    "vault_id": vault_id,
                    "created_at": iso(self._state.clock.now()),
                    "counts": counts,
                }
            )
            for done, (table, row) in enumerate(snap.rows(), start=1):
                write({"t": table, "r": row})
                if progress is not None and (done % 500 == 0 or done == total):
                    progress(done, total)
        out.write(_line({"end": True, "counts": counts, "sha256": digest.hexdigest()}))
        out.flush()
        return BackupSummary(vault_id, counts)


def _read(path: Path) -> tuple[dict[str, Any], Callable[[], Iterator[snapshot.Row]]]:
    """The header, and a function that streams the rows and checks the trailer at the end.

    Raises:
        InvalidInput: not a Strongroom backup, another format version or schema, unreadable.
    """
    try:
        with path.open("r", encoding="ascii") as f:
            header = json.loads(f.readline())
    except (OSError, ValueError) as exc:
        raise errors.InvalidInput(
            f"cannot read backup {str(path)!r}: not a Strongroom backup or unreadable"
        ) from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise errors.InvalidInput(f"{str(path)!r} is not a Strongroom backup")
    schema = header.get("schema")
    if (
        header.get("format_version") != FORMAT_VERSION
        or not isinstance(schema, str)
        or schema not in SAME_ROWS_AS_HEAD
    ):
        raise errors.InvalidInput(
            "backup was written by an incompatible version of Strongroom "
            f"(format {header.get('format_version')}, "
            f"schema {header.get('schema')})"
        )

    def rows() -> Iterator[snapshot.Row]:
        corrupt = errors.IntegrityError("backup file is truncated or corrupt")
        digest = hashlib.sha256()
        try:
            with path.open("r", encoding="ascii") as f:
                for number, text in enumerate(f):
                    data = json.loads(text)
                    if number > 0 and data.get("end") is True:
                        if (
                            not hmac.compare_digest(str(data.get("sha256")), digest.hexdigest())
                            or data.get("counts") != header["counts"]
                            or f.read()
                        ):
                            raise corrupt
                        return
                    digest.update(text.encode("ascii"))
                    if number > 0:
                        yield data["t"], data["r"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise corrupt from exc
        raise corrupt

    return header, rows


class _Checker:
    """Proves a backup opens with the master key: every version decrypts, the chain links."""

    def __init__(self, master_key: str, vault_id: str) -> None:
        self._key = master_key
        self._vault_id = vault_id
        self._barrier = Barrier()
        self._root: SealedRoot | None = None
        self._terms: list[SealedTerm] = []
        self._paths: dict[int, str] = {}
        self._prev = vault_id

    def check(self, table: str, row: dict[str, Any]) -> None:
        if table == "vault_keys":
            self._root = SealedRoot(
                row["vault_id"],
                snapshot.decode_bytes(row["salt"]),
                json.loads(row["kdf_params"]),
                row["wrapped_root"],
            )
            if row["vault_id"] != self._vault_id:
                raise errors.IntegrityError("backup header and key row name different vaults")
        elif table == "vault_key_terms":
            self._terms.append(SealedTerm(row["term"], row["wrapped_key"]))
        elif table in ("vault_secrets", "vault_secret_versions", "vault_audit_logs"):
            self._open()
            getattr(self, f"_{table}")(row)

    def _open(self) -> None:
        if self._barrier.is_unlocked:
            return
        if self._root is None:
            raise errors.InvalidInput("backup holds no vault keys")
        self._barrier.unlock(self._key, self._root, self._terms)

    def _vault_secrets(self, row: dict[str, Any]) -> None:
        self._paths[row["id"]] = row["path"]

    def _vault_secret_versions(self, row: dict[str, Any]) -> None:
        if row["value"] is not None:
            path = self._paths.get(row["secret_id"])
            if path is None:
                raise errors.IntegrityError("backup holds a version of an unknown secret")
            self._barrier.decrypt(row["value"], "version", row["secret_id"], path, row["version"])

    def _vault_audit_logs(self, row: dict[str, Any]) -> None:
        if row["mac"] is None:
            return
        entry = AuditRow(
            row["id"],
            datetime.fromisoformat(row["timestamp"]),
            row["secret_id"],
            row["path"],
            row["user_id"],
            row["action"],
            row["ip_address"],
            bool(row["success"]),
            row["error"],
            row["request_id"],
            row["mac"],
        )
        if not hmac.compare_digest(self._barrier.mac(canonical(self._prev, entry)), row["mac"]):
            raise errors.IntegrityError(f"backup's audit chain is broken at entry {row['id']}")
        self._prev = row["mac"]

    def finish(self) -> None:
        self._open()
        self._barrier.lock()

    def close(self) -> None:
        """Drop the keys (also after a failure)."""
        self._barrier.lock()


def restore(
    dsn: str,
    source: Path,
    master_key: str,
    config: VaultConfig | None = None,
    *,
    actor: Actor = DEFAULT_ACTOR,
    progress: Progress | None = None,
) -> BackupSummary:
    """Restore a backup into the EMPTY database at `dsn`, verified before and after loading.

    Raises:
        InvalidInput: not a backup, incompatible version, or unreadable file.
        IntegrityError: truncated or altered file, undecryptable version, broken audit chain.
        InvalidMasterKey: the key does not open the backed-up vault (nothing written).
        Conflict: the target database is not empty (nothing written).
        StorageUnavailable: the target database cannot be reached.
    """
    header, rows = _read(source)
    counts: dict[str, int] = {k: int(v) for k, v in header["counts"].items()}
    total, done = 2 * sum(counts.values()), 0
    checker = _Checker(master_key, str(header.get("vault_id")))
    try:
        for table, row in rows():
            checker.check(table, row)
            done += 1
            if progress is not None and done % 500 == 0:
                progress(done, total)
        checker.finish()
    finally:
        checker.close()
    storage = open_storage(dsn)
    try:
        loaded = snapshot.load(storage, _counting(rows(), progress, done, total), counts)
    finally:
        storage.dispose()
    state = VaultState(open_storage(dsn), config)
    try:
        state.unlock(master_key, actor)
        result = verify_chain(state.storage, state.barrier.vault_id, state.barrier.mac)
        if not result.ok:
            raise errors.IntegrityError(
                f"restored audit chain is broken at entry {result.first_bad_id}"
            )
        state.audit(state.entry("restore", actor))
    finally:
        state.close()
    if progress is not None:
        progress(total, total)
    return BackupSummary(str(header.get("vault_id")), loaded)


def _counting(
    rows: Iterator[snapshot.Row], progress: Progress | None, done: int, total: int
) -> Iterator[snapshot.Row]:
    for row in rows:
        yield row
        done += 1
        if progress is not None and done % 500 == 0:
            progress(done, total)
