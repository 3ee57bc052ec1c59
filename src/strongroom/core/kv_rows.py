"""The steps the KV v2 engine's parts share: finding a live key, a version's metadata, the
`delete_version_after` in force, creating a key with no version, and the storage protocol of
the KV mount (`KVStore`, implemented by `tx.kv`)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from strongroom import errors
from strongroom.core.kv_types import KVVersionMeta
from strongroom.core.state import VaultState
from strongroom.core.versions import is_expired, secrets_of
from strongroom.storage import KVConfigRow, SecretRow, Tx, VersionRow

__all__ = [
    "KVStore",
    "create_empty",
    "delete_after",
    "existing_key",
    "kv_of",
    "live_key",
    "version_meta",
]


class KVStore(Protocol):
    """The KV v2 mount: its settings and folder listing (`tx.kv`)."""

    def kv_config(self) -> KVConfigRow: ...

    def put_kv_config(self, config: KVConfigRow, now: datetime) -> None: ...

    def kv_paths(self, prefix: str, now: datetime) -> list[str]: ...


def kv_of(tx: Tx) -> KVStore:
    """The KV mount queries of a transaction."""
    return tx.kv


def live_key(state: VaultState, tx: Tx, path: str) -> SecretRow | None:
    """The secret at `path`, or None when there is none or it has expired."""
    row = secrets_of(tx).secret_by_path(path)
    return None if row is None or is_expired(row, state.clock.now()) else row


def existing_key(state: VaultState, tx: Tx, path: str) -> SecretRow:
    """The live secret at `path`.

    Raises:
        SecretNotFound: there is none.
    """
    row = live_key(state, tx, path)
    if row is None:
        raise errors.SecretNotFound()
    return row


def delete_after(row: SecretRow | None, mount: KVConfigRow) -> int:
    """Seconds after which a new version is soft-deleted (the key's setting, else the
    mount's); 0 means never."""
    return (row.delete_version_after if row else 0) or mount.delete_version_after


def version_meta(row: SecretRow, version: VersionRow) -> KVVersionMeta:
    """The KV v2 metadata of one version."""
    return KVVersionMeta(
        version.version,
        version.updated_at,
        version.deleted_at,
        version.destroyed,
        dict(row.metadata),
    )


def create_empty(state: VaultState, tx: Tx, path: str, user_id: int) -> SecretRow:
    """A secret row with metadata and no version (version 0)."""
    store = secrets_of(tx)
    now = state.clock.now()
    old = store.secret_by_path(path)
    if old is not None:  # expired: it reads as absent, so it is replaced
        store.delete_secret(old.id)
    secret_id = store.insert_secret(path, None, user_id, now, None)
    store.update_secret(secret_id, version=0)
    row = store.secret_by_path(path)
    assert row is not None  # noqa: S101 - inserted above in this transaction
    return row
