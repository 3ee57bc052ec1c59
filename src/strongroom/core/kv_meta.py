"""KV v2 key metadata, folder listing and the mount-wide configuration (Vault's `metadata/` and
`config` endpoints), on the same secrets as the rest of the core.

A key may have metadata and no version yet (`vault_secrets.version` 0, no version rows): Vault
allows writing metadata first. Data operations live in `core.kv`. Every public method writes one
audit entry through `VaultBase`'s plumbing.
"""

from __future__ import annotations

from datetime import timedelta

from strongroom import errors
from strongroom.core.kv_types import (
    KVConfig,
    KVMetadata,
    KVVersionMeta,
    KVVersionState,
    coerce_custom_metadata,
    folder_keys,
    merge_patch,
    parse_go_duration,
)
from strongroom.core.secrets import SecretsMixin
from strongroom.core.vault import Actor
from strongroom.models import validate_path
from strongroom.storage import KVConfigRow, SecretRow, Tx, VersionRow

__all__ = ["KVMetadataMixin", "kv_settings"]

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


class KVMetadataMixin(SecretsMixin):
    """KV v2 metadata, listing and mount configuration over `SecretsMixin`."""

    # -- helpers shared with core.kv ------------------------------------------------------
    def _kv_row(self, tx: Tx, path: str) -> SecretRow | None:
        """The secret at `path`, or None when there is none or it has expired."""
        row = tx.secret_by_path(path)
        return None if row is None or self._expired(row) else row

    def _kv_existing(self, tx: Tx, path: str) -> SecretRow:
        row = self._kv_row(tx, path)
        if row is None:
            raise errors.SecretNotFound()
        return row

    def _kv_dva(self, row: SecretRow | None, mount: KVConfigRow) -> int:
        """Seconds after which a new version is soft-deleted (the key's setting, else the
        mount's); 0 means never."""
        return (row.delete_version_after if row else 0) or mount.delete_version_after

    @staticmethod
    def _version_meta(row: SecretRow, version: VersionRow) -> KVVersionMeta:
        return KVVersionMeta(
            version.version,
            version.updated_at,
            version.deleted_at,
            version.destroyed,
            dict(row.metadata),
        )

    def _kv_create_empty(self, tx: Tx, path: str, user_id: int) -> SecretRow:
        """A secret row with metadata and no version (version 0)."""
        now = self._clock.now()
        old = tx.secret_by_path(path)
        if old is not None:  # expired: it reads as absent, so it is replaced
            tx.delete_secret(old.id)
        secret_id = tx.insert_secret(path, None, user_id, now, None)
        tx.update_secret(secret_id, version=0)
        row = tx.secret_by_path(path)
        assert row is not None  # noqa: S101 - inserted above in this transaction
        return row

    # -- metadata -------------------------------------------------------------------------
    def kv_exists(self, path: str) -> bool:
        """Whether a live key is at `path` (not audited: callers use it to pick the capability
        a write needs, `create` or `update`, before the audited write itself).

        Raises:
            InvalidInput: bad path.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        self._require_unlocked()
        with self._storage.read() as tx:
            return self._kv_row(tx, path) is not None

    def kv_read_metadata(
        self, path: str, *, user_id: int = 1, ip: str = "cli", request_id: str | None = None
    ) -> KVMetadata:
        """A key's metadata and the state of each of its stored versions.

        Raises:
            InvalidInput: bad path.
            SecretNotFound: no key at `path` (or it expired).
            VaultLocked: the vault is locked.
        """
        validate_path(path)

        def read(tx: Tx) -> tuple[KVMetadata, int]:
            row = self._kv_existing(tx, path)
            stored = sorted(tx.versions(row.id), key=lambda v: v.version)
            oldest = stored[0].version if stored and stored[0].version > 1 else 0
            versions = {
                v.version: KVVersionState(v.updated_at, v.deleted_at, v.destroyed) for v in stored
            }
            return KVMetadata(
                row.path,
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

        return self._read_op("read_metadata", Actor(user_id, ip, request_id), path, read)

    def kv_write_metadata(
        self,
        path: str,
        *,
        max_versions: object = None,
        cas_required: object = None,
        delete_version_after: object = None,
        custom_metadata: object = None,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> None:
        """Set the given settings of a key, creating it (with no version) if needed.

        Settings left as None keep their value; `custom_metadata` replaces the whole map.
        Lowering `max_versions` prunes at the next write, as in Vault.

        Raises:
            InvalidInput: bad path or setting (see `coerce_custom_metadata`, `parse_go_duration`).
            VaultLocked: the vault is locked.
        """
        self._kv_metadata_change(
            "write_metadata",
            path,
            max_versions,
            cas_required,
            delete_version_after,
            custom_metadata,
            False,
            Actor(user_id, ip, request_id),
        )

    def kv_patch_metadata(
        self,
        path: str,
        *,
        max_versions: object = None,
        cas_required: object = None,
        delete_version_after: object = None,
        custom_metadata: object = None,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> None:
        """Change the given settings of an existing key; `custom_metadata` is merge-patched
        (a None value removes that entry).

        Raises:
            InvalidInput: bad path or setting.
            SecretNotFound: no key at `path`.
            VaultLocked: the vault is locked.
        """
        self._kv_metadata_change(
            "patch_metadata",
            path,
            max_versions,
            cas_required,
            delete_version_after,
            custom_metadata,
            True,
            Actor(user_id, ip, request_id),
        )

    def _kv_metadata_change(
        self,
        action: str,
        path: str,
        max_versions: object,
        cas_required: object,
        delete_version_after: object,
        custom_metadata: object,
        patch: bool,
        actor: Actor,
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
            row = self._kv_row(tx, path)
            if row is None and patch:
                raise errors.SecretNotFound()
            row = row or self._kv_create_empty(tx, path, actor.user_id)
            if patch and isinstance(custom_metadata, dict):
                values["metadata"] = coerce_custom_metadata(
                    merge_patch(row.metadata, custom_metadata)
                )
            tx.update_secret(row.id, updated_at=self._clock.now(), **values)
            return None, row.id

        self._write_op(action, actor, path, run)

    def kv_delete_metadata(
        self, path: str, *, user_id: int = 1, ip: str = "cli", request_id: str | None = None
    ) -> None:
        """Delete a key, its metadata and every version (no error when there is none).

        Raises:
            InvalidInput: bad path.
            VaultLocked: the vault is locked.
        """
        validate_path(path)

        def run(tx: Tx) -> tuple[None, int | None]:
            row = tx.secret_by_path(path)
            if row is None:
                return None, None
            tx.delete_secret(row.id)
            return None, row.id

        self._write_op("delete", Actor(user_id, ip, request_id), path, run)

    def kv_list(
        self, folder: str = "", *, user_id: int = 1, ip: str = "cli", request_id: str | None = None
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

        def read(tx: Tx) -> tuple[list[str], None]:
            keys = folder_keys(tx.kv_paths(prefix, self._clock.now()), prefix)
            if not keys:
                raise errors.SecretNotFound("nothing under that folder")
            return keys, None

        return self._read_op("list", Actor(user_id, ip, request_id), prefix or None, read)

    # -- mount configuration --------------------------------------------------------------
    def kv_read_config(
        self, *, user_id: int = 1, ip: str = "cli", request_id: str | None = None
    ) -> KVConfig:
        """The mount-wide settings.

        Raises:
            VaultLocked: the vault is locked.
        """

        def read(tx: Tx) -> tuple[KVConfig, None]:
            row = tx.kv_config()
            return KVConfig(
                row.max_versions, row.cas_required, timedelta(seconds=row.delete_version_after)
            ), None

        return self._read_op("read_config", Actor(user_id, ip, request_id), None, read)

    def kv_write_config(
        self,
        *,
        max_versions: object = None,
        cas_required: object = None,
        delete_version_after: object = None,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> None:
        """Change the given mount-wide settings (None: unchanged). They apply to every secret:
        the larger of a key's and the mount's `max_versions` wins, a key's own
        `delete_version_after` wins over the mount's, and either `cas_required` requires `cas`.

        Raises:
            InvalidInput: a bad setting.
            VaultLocked: the vault is locked.
        """
        values = kv_settings(max_versions, cas_required, delete_version_after)

        def run(tx: Tx) -> tuple[None, None]:
            old = tx.kv_config()
            tx.put_kv_config(
                KVConfigRow(
                    int(values.get("max_versions", old.max_versions)),
                    bool(values.get("cas_required", old.cas_required)),
                    int(values.get("delete_version_after", old.delete_version_after)),
                ),
                self._clock.now(),
            )
            return None, None

        self._write_op("write_config", Actor(user_id, ip, request_id), None, run)
