"""Import one KV v2 key with its full history (used by `vaultctl import-vault`).

Versions keep their numbers, creation times, deletion times and destroyed flags, so after a
migration `kv get -version=N` answers as the source did. A version whose data could not be read
at the source (soft-deleted or destroyed there) is stored without a value, marked destroyed.
This module never fetches anything: the CLI reads the source and hands the versions over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strongroom import errors
from strongroom.core.kv_meta import kv_settings
from strongroom.core.kv_rows import locate
from strongroom.core.kv_types import coerce_custom_metadata, json_size
from strongroom.core.mount_paths import DEFAULT_MOUNT, audit_path
from strongroom.core.state import VaultState
from strongroom.core.versions import encode_value, is_expired, secrets_of, versions_of
from strongroom.models import Actor, validate_path
from strongroom.storage import Tx, VersionRow

__all__ = ["KVImportVersion", "import_key"]

MAX_IMPORT_VERSIONS = 100_000


@dataclass(frozen=True, slots=True)
class KVImportVersion:
    """One version as read from the source; `data` None when it could not be read there."""

    version: int
    data: dict[str, Any] | None
    created_at: datetime
    deletion_time: datetime | None = None
    destroyed: bool = False


def _check_versions(versions: list[KVImportVersion], limit: int) -> None:
    if len(versions) > MAX_IMPORT_VERSIONS:
        raise errors.InvalidInput(f"at most {MAX_IMPORT_VERSIONS} versions per key")
    numbers = [v.version for v in versions]
    if len(set(numbers)) != len(numbers) or min(numbers, default=1) < 1:
        raise errors.InvalidInput("imported version numbers must be unique positive integers")
    for v in versions:
        if v.created_at.tzinfo is None or (v.deletion_time and v.deletion_time.tzinfo is None):
            raise errors.InvalidInput("imported times must be timezone-aware")
        if v.data is not None and json_size(v.data) > limit:
            raise errors.PayloadTooLarge(f"version {v.version} exceeds the limit of {limit} bytes")


def import_key(
    state: VaultState,
    path: str,
    versions: list[KVImportVersion],
    *,
    current_version: int | None,
    created_at: datetime | None,
    settings: tuple[object, object, object, object],
    replace: bool,
    actor: Actor,
    mount: str = DEFAULT_MOUNT,
) -> int:
    """Create the key at `path` with exactly these versions; return how many carry data.

    With no versions, the key gets only its metadata (current version 0), as Vault allows.

    Args:
        state: the vault's state.
        path: the key's path.
        versions: its versions, as read from the source.
        current_version: the source's current version (default: the highest imported).
        created_at: the key's creation time (default: the oldest version's).
        settings: (max_versions, cas_required, delete_version_after, custom_metadata), each
            None to leave it at its default.
        replace: delete an existing key at `path` first instead of refusing.
        actor: who imports.
        mount: the canonical path of the mount to import into.

    Raises:
        InvalidInput: bad path, settings, version numbers or times.
        PayloadTooLarge: a version exceeds `max_value_bytes`.
        SecretExists: a key exists at `path` and `replace` is false.
        MountNotFound: nothing is mounted at `mount`.
        VaultLocked: the vault is locked.
    """
    validate_path(path)
    _check_versions(versions, state.config.max_value_bytes)
    max_versions, cas_required, delete_version_after, custom_metadata = settings
    values: dict[str, object] = dict(kv_settings(max_versions, cas_required, delete_version_after))
    if custom_metadata is not None:
        values["metadata"] = coerce_custom_metadata(custom_metadata)
    ordered = sorted(versions, key=lambda v: v.version)
    newest = ordered[-1].version if ordered else 0
    current = current_version or newest
    if current < newest:
        raise errors.InvalidInput("current_version is older than an imported version")
    user_id = actor.user_id

    def run(tx: Tx) -> tuple[int, int]:
        store = secrets_of(tx)
        ref, stored = locate(tx, mount, path)
        old = store.secret_by_path(stored)
        if old is not None and not (replace or is_expired(old, state.clock.now())):
            raise errors.SecretExists()
        if old is not None:
            store.delete_secret(old.id)
        created = created_at or (ordered[0].created_at if ordered else state.clock.now())
        secret_id = store.insert_secret(stored, None, user_id, created, None, mount_id=ref.id)
        for item in ordered:
            _import_version(state, tx, secret_id, stored, item, user_id)
        updated = max(ordered[-1].created_at, created) if ordered else created
        store.update_secret(secret_id, version=current, updated_at=updated, **values)
        return sum(1 for v in ordered if v.data is not None and not v.destroyed), secret_id

    return state.write("import", actor, audit_path(mount, path), run)


def _import_version(
    state: VaultState, tx: Tx, secret_id: int, path: str, item: KVImportVersion, user_id: int
) -> None:
    store = versions_of(tx)
    if item.data is None or item.destroyed:
        store.insert_version(
            VersionRow(
                secret_id,
                item.version,
                None,
                None,
                user_id,
                item.created_at,
                item.deletion_time,
                True,
            )
        )
        return
    envelope, term = state.encrypt(tx, encode_value(item.data), secret_id, path, item.version)
    store.insert_version(
        VersionRow(
            secret_id,
            item.version,
            envelope,
            term,
            user_id,
            item.created_at,
            item.deletion_time,
            False,
        )
    )
