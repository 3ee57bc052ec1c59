"""KV v2 key metadata, folder listing and the mount-wide configuration (Vault's `metadata/` and
`config` endpoints), on the same secrets as the rest of the core.

A key may have metadata and no version yet (`vault_secrets.version` 0, no version rows): Vault
allows writing metadata first. Data operations live in `core.kv`. Every public method writes one
audit entry through `VaultState`'s plumbing. Storage: `versions.SecretStore`/`VersionStore`
(`tx.secrets`) and `kv_rows.KVStore` (`tx.kv`).
"""

from __future__ import annotations

from datetime import timedelta

from strongroom import errors
from strongroom.core.kv_rows import create_empty, existing_key, kv_of, live_key, locate
from strongroom.core.kv_types import (
    KVConfig,
    KVMetadata,
    KVVersionState,
    coerce_custom_metadata,
    folder_keys,
    merge_patch,
    parse_go_duration,
)
from strongroom.core.mount_paths import DEFAULT_MOUNT, audit_path, mount_path, storage_prefix
from strongroom.core.mounts import resolve
from strongroom.core.state import VaultState
from strongroom.core.versions import secrets_of, versions_of
from strongroom.models import DEFAULT_ACTOR, Actor, validate_path
from strongroom.storage import KVConfigRow, Tx

__all__ = ["KVMetadataService", "kv_settings"]

#: Largest accepted `max_versions` (Vault has no limit; this only rejects nonsense).
MAX_MAX_VERSIONS = 1_000_000


def _check_max_versions(value: object) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (0 <= value <= MAX_MAX_VERSIONS)
    ):
        raise errors.InvalidInput(f"max_versions must be an integer from 0 to {MAX_MAX_VERSIONS}")
    return value


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise errors.InvalidInput(f"{name} must be a boolean")
    return value


def kv_settings(
    max_versions: object,
    cas_required: object,
    delete_version_after: object,
) -> dict[str, int | bool]:
    """The validated column values of the settings given (None: leave unchanged)."""
    values: dict[str, int | bool] = {}
    if max_versions is not None:
        values["max_versions"] = _check_max_versions(max_versions)
    if cas_required is not None:
        values["cas_required"] = _check_bool("cas_required", cas_required)
    if delete_version_after is not None:
        dva = parse_go_duration(delete_version_after)
        values["delete_version_after"] = int(dva.total_seconds())
    return values


class KVMetadataService:
    """KV v2 key metadata, folder listing and the mount configuration (`vault.kv.metadata`)."""

    def __init__(self, state: VaultState) -> None:
        self._state = state

    # -- metadata -------------------------------------------------------------------------
    def read(
        self, path: str, *, mount: str = DEFAULT_MOUNT, actor: Actor = DEFAULT_ACTOR
    ) -> KVMetadata:
        """A key's metadata and the state of each of its stored versions.

        Raises:
            InvalidInput: bad path.
            SecretNotFound: no key at `path` (or it expired).
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        at = mount_path(mount)

        def read(tx: Tx) -> tuple[KVMetadata, int]:
            row = existing_key(self._state, tx, locate(tx, at, path)[1])
            stored = sorted(versions_of(tx).versions(row.id), key=lambda v: v.version)
            oldest = stored[0].version if stored and stored[0].version > 1 else 0
            versions = {
                v.version: KVVersionState(v.updated_at, v.deleted_at, v.destroyed) for v in stored
            }
            return KVMetadata(
                path,
                row.created_at,
                row.updated_at,
                row.version,
                oldest,
                row.max_versions,
                row.cas_required,
                timedelta(seconds=row.delete_version_after),
                dict(row.metadata),
                versions,
            ), row.id

        return self._state.read("read_metadata", actor, audit_path(at, path), read)

    def write(
        self,
        path: str,
        *,
        max_versions: object = None,
        cas_required: object = None,
        delete_version_after: object = None,
        custom_metadata: object = None,
        mount: str = DEFAULT_MOUNT,
        actor: Actor = DEFAULT_ACTOR,
    ) -> None:
        """Set the given settings of a key, creating it (with no version) if needed.

        Settings left as None keep their value; `custom_metadata` replaces the whole map.
        Lowering `max_versions` prunes at the next write, as in Vault.

        Raises:
            InvalidInput: bad path or setting (see `coerce_custom_metadata`, `parse_go_duration`).
            VaultLocked: the vault is locked.
        """
        self._change(
            "write_metadata",
            path,
            max_versions,
            cas_required,
            delete_version_after,
            custom_metadata,
            False,
            actor,
            mount_path(mount),
        )

    def patch(
        self,
        path: str,
        *,
        max_versions: object = None,
        cas_required: object = None,
        delete_version_after: object = None,
        custom_metadata: object = None,
        mount: str = DEFAULT_MOUNT,
        actor: Actor = DEFAULT_ACTOR,
    ) -> None:
        """Change the given settings of an existing key; `custom_metadata` is merge-patched
        (a None value removes that entry).

        Raises:
            InvalidInput: bad path or setting.
            SecretNotFound: no key at `path`.
            VaultLocked: the vault is locked.
        """
        self._change(
            "patch_metadata",
            path,
            max_versions,
            cas_required,
            delete_version_after,
            custom_metadata,
            True,
            actor,
            mount_path(mount),
        )

    def _change(
        self,
        action: str,
        path: str,
        max_versions: object,
        cas_required: object,
        delete_version_after: object,
        custom_metadata: object,
        patch: bool,
        actor: Actor,
        mount: str,
    ) -> None:
        validate_path(path)
        values: dict[str, object] = dict(
            kv_settings(max_versions, cas_required, delete_version_after)
        )
        if custom_metadata is not None and not patch:
            values["metadata"] = coerce_custom_metadata(custom_metadata)
        if custom_metadata is not None and patch and not isinstance(custom_metadata, dict):
            raise errors.InvalidInput("custom_metadata must be an object of strings")

        def run(tx: Tx) -> tuple[None, int]:
            ref, stored = locate(tx, mount, path)
            row = live_key(self._state, tx, stored)
            if row is None and patch:
                raise errors.SecretNotFound()
            row = row or create_empty(self._state, tx, stored, actor.user_id, ref.id)
            if patch and isinstance(custom_metadata, dict):
                values["metadata"] = coerce_custom_metadata(
                    merge_patch(row.metadata, custom_metadata)
                )
            secrets_of(tx).update_secret(row.id, updated_at=self._state.clock.now(), **values)
            return None, row.id

        self._state.write(action, actor, audit_path(mount, path), run)

    def delete(
        self, path: str, *, mount: str = DEFAULT_MOUNT, actor: Actor = DEFAULT_ACTOR
    ) -> None:
        """Delete a key, its metadata and every version (no error when there is none).

        Raises:
            InvalidInput: bad path.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        at = mount_path(mount)

        def run(tx: Tx) -> tuple[None, int | None]:
            store = secrets_of(tx)
            row = store.secret_by_path(locate(tx, at, path)[1])
            if row is None:
                return None, None
            store.delete_secret(row.id)
            return None, row.id

        self._state.write("delete", actor, audit_path(at, path), run)

    def list(
        self, folder: str = "", *, mount: str = DEFAULT_MOUNT, actor: Actor = DEFAULT_ACTOR
    ) -> list[str]:
        """Keys and sub-folders (ending in `/`) directly under `folder`, sorted.

        Keys with metadata but no version are listed too, as in Vault.

        Raises:
            InvalidInput: bad folder path.
            SecretNotFound: nothing under `folder`.
            VaultLocked: the vault is locked.
        """
        name = folder.rstrip("/") if isinstance(folder, str) else folder
        prefix = validate_path(name) + "/" if name else ""
        at = mount_path(mount)

        def read(tx: Tx) -> tuple[list[str], None]:
            ref = resolve(tx, at)
            stored = storage_prefix(ref) + prefix
            now = self._state.clock.now()
            keys = folder_keys(kv_of(tx).kv_paths(stored, now, ref.id), stored)
            if not keys:
                raise errors.SecretNotFound("nothing under that folder")
            return keys, None

        return self._state.read("list", actor, audit_path(at, prefix) or None, read)

    # -- mount configuration --------------------------------------------------------------
    def read_config(self, *, mount: str = DEFAULT_MOUNT, actor: Actor = DEFAULT_ACTOR) -> KVConfig:
        """The mount-wide settings.

        Raises:
            VaultLocked: the vault is locked.
        """

        at = mount_path(mount)

        def read(tx: Tx) -> tuple[KVConfig, None]:
            row = kv_of(tx).kv_config(resolve(tx, at).id)
            return KVConfig(
                row.max_versions, row.cas_required, timedelta(seconds=row.delete_version_after)
            ), None

        return self._state.read("read_config", actor, _config_path(at), read)

    def write_config(
        self,
        *,
        max_versions: object = None,
        cas_required: object = None,
        delete_version_after: object = None,
        mount: str = DEFAULT_MOUNT,
        actor: Actor = DEFAULT_ACTOR,
    ) -> None:
        """Change the given mount-wide settings (None: unchanged). They apply to every secret:
        the larger of a key's and the mount's `max_versions` wins, a key's own
        `delete_version_after` wins over the mount's, and either `cas_required` requires `cas`.

        Raises:
            InvalidInput: a bad setting.
            VaultLocked: the vault is locked.
        """
        values = kv_settings(max_versions, cas_required, delete_version_after)
        at = mount_path(mount)

        def run(tx: Tx) -> tuple[None, None]:
            store = kv_of(tx)
            mount_id = resolve(tx, at).id
            old = store.kv_config(mount_id)
            store.put_kv_config(
                KVConfigRow(
                    int(values.get("max_versions", old.max_versions)),
                    bool(values.get("cas_required", old.cas_required)),
                    int(values.get("delete_version_after", old.delete_version_after)),
                ),
                self._state.clock.now(),
                mount_id,
            )
            return None, None

        self._state.write("write_config", actor, _config_path(at), run)


def _config_path(mount: str) -> str | None:
    """The path a mount-config entry records (none for `secret/`, as before mounts)."""
    return None if mount == DEFAULT_MOUNT else mount
