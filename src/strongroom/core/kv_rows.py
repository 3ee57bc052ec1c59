"""The steps the KV v2 engine's parts share: finding a live key, a version's metadata, the
`delete_version_after` in force, creating a key with no version, and the storage protocol of
the KV mount (`KVStore`, implemented by `tx.kv`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from strongroom import errors
from strongroom.core.kv_types import KVVersionMeta, new_version_meta
from strongroom.core.mount_paths import (
    DEFAULT_MOUNT,
    DEFAULT_MOUNT_ID,
    MountRef,
    audit_path,
    storage_path,
)
from strongroom.core.mounts import resolve
from strongroom.core.state import VaultState
from strongroom.core.versions import is_deleted, is_expired, secrets_of, versions_of
from strongroom.models import Actor
from strongroom.storage import KVConfigRow, SecretRow, Tx, VersionRow, new_secret_row

__all__ = [
    "CAS_REQUIRED",
    "KVStore",
    "change_versions",
    "check_cas",
    "check_depth",
    "check_read_version",
    "check_versions",
    "create_empty",
    "delete_after",
    "existing_key",
    "kv_of",
    "live_key",
    "locate",
    "version_meta",
]


class KVStore(Protocol):
    """The KV v2 mount: its settings and folder listing (`tx.kv`)."""

    def kv_config(self, mount_id: int = 1) -> KVConfigRow: ...

    def put_kv_config(self, config: KVConfigRow, now: datetime, mount_id: int = 1) -> None: ...

    def kv_paths(self, prefix: str, now: datetime, mount_id: int = 1) -> list[str]: ...


def kv_of(tx: Tx) -> KVStore:
    """The KV mount queries of a transaction."""
    return tx.kv


def locate(tx: Tx, mount: str, path: str) -> tuple[MountRef, str]:
    """The mount at `mount` (canonical) and the stored path of its key `path`.

    Raises:
        MountNotFound: nothing is mounted at `mount`.
        InvalidInput: bad key path.
    """
    ref = resolve(tx, mount)
    return ref, storage_path(ref, path)


def live_key(state: VaultState, tx: Tx, path: str) -> SecretRow | None:
    """The secret at `path`, or None when there is none or it has expired."""
    return live(state, secrets_of(tx).secret_by_path(path))


def live(state: VaultState, row: SecretRow | None) -> SecretRow | None:
    """`row`, or None when it has expired (or is None)."""
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
    return new_version_meta(
        version.version,
        version.updated_at,
        version.deleted_at,
        version.destroyed,
        dict(row.metadata),
    )


def create_empty(
    state: VaultState, tx: Tx, path: str, user_id: int, mount_id: int = DEFAULT_MOUNT_ID
) -> SecretRow:
    """A secret row of a mount with metadata and no version (version 0); `path` is the stored
    path."""
    replaced = secrets_of(tx).secret_by_path(path)
    return new_key(state, tx, path, user_id, mount_id, replaces=replaced)


def new_key(
    state: VaultState,
    tx: Tx,
    path: str,
    user_id: int,
    mount_id: int,
    *,
    replaces: SecretRow | None,
    version: int = 0,
) -> SecretRow:
    """A new secret row at `path` (the stored path), with metadata only (`version` 0) or at its
    first version (1: the caller inserts that version next, `add_version(is_current=True)`),
    as stored (the defaults of `insert_secret`, no reading back); `replaces` is the expired row
    found at `path`, deleted first (None: nothing there)."""
    store = secrets_of(tx)
    now = state.clock.now()
    if replaces is not None:  # expired: it reads as absent, so it is replaced
        store.delete_secret(replaces.id)
    secret_id = store.insert_secret(
        path, None, user_id, now, None, version=version, mount_id=mount_id
    )
    return new_secret_row(
        secret_id, path, None, user_id, now, now, version, None, mount_id=mount_id
    )


CAS_REQUIRED = "check-and-set parameter required for this call"
MAX_VERSIONS_PER_CALL = 1000


def check_cas(cas: object) -> int | None:
    if cas is None:
        return None
    if isinstance(cas, bool) or not isinstance(cas, int) or cas < 0:
        raise errors.InvalidInput("cas must be a non-negative integer")
    return cas


def check_versions(versions: object) -> list[int]:
    if not isinstance(versions, list | tuple) or not versions:
        raise errors.InvalidInput("no version number provided")
    if len(versions) > MAX_VERSIONS_PER_CALL:
        raise errors.InvalidInput(f"at most {MAX_VERSIONS_PER_CALL} versions per call")
    for v in versions:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise errors.InvalidInput("versions must be positive integers")
    return sorted(set(versions))


def check_depth(depth: object) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise errors.InvalidInput("depth must be a non-negative integer")
    return depth


def check_read_version(version: object) -> int:
    """0 or None mean the current version, as in Vault."""
    if version is None:
        return 0
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise errors.InvalidInput("version must be a non-negative integer")
    return version


def change_versions(
    state: VaultState,
    action: str,
    path: str,
    numbers: list[int] | None,
    actor: Actor,
    mount: str = DEFAULT_MOUNT,
) -> None:
    """Soft-delete, undelete or destroy versions of the key at `path` of the mount at `mount`
    (none: its current one), as one audited write; no error when the key does not exist."""

    def run(tx: Tx) -> tuple[None, int | None]:
        row = live_key(state, tx, locate(tx, mount, path)[1])
        if row is None:
            return None, None
        wanted = numbers if numbers is not None else [row.version]
        now = state.clock.now()
        dva = delete_after(row, kv_of(tx).kv_config(row.mount_id))
        store = versions_of(tx)
        for version in store.versions(row.id):
            if version.version not in wanted or version.destroyed:
                continue
            if action == "soft_delete" and not is_deleted(version, now):
                store.update_version(row.id, version.version, deleted_at=now)
            elif action == "undelete":
                store.update_version(
                    row.id,
                    version.version,
                    deleted_at=(now + timedelta(seconds=dva) if dva else None),
                )
            elif action == "destroy":
                store.update_version(
                    row.id, version.version, value=None, key_term=None, destroyed=True
                )
        return None, row.id

    state.write(action, actor, audit_path(mount, path), run)
