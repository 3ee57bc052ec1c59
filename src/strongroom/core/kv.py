"""KV v2 data operations with Vault's semantics, on the same secrets as `/api/vault`.

A version's plaintext is a JSON object (DESIGN §4), so a map written here reads back through the
design document's API as its JSON text, and a string written there reads here as
``{"value": "..."}``. Soft deletion keeps a version recoverable (`undelete`) until it is
destroyed; `destroy` erases the ciphertext (value NULL). Check-and-set (`cas`) compares with the
key's current version (0 for a key that does not exist). Every public method writes one audit
entry through `VaultBase`'s plumbing; nothing here logs or puts a value into an error.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from strongroom import errors
from strongroom.core.kv_import import KVImportMixin
from strongroom.core.kv_types import KVSecret, KVVersionMeta, json_size, merge_patch, subkeys
from strongroom.core.secrets import decode_value, is_deleted
from strongroom.core.vault import Actor
from strongroom.models import validate_path
from strongroom.storage import NewAudit, SecretRow, Tx, VersionRow

__all__ = ["KVMixin"]

CAS_REQUIRED = "check-and-set parameter required for this call"
MAX_VERSIONS_PER_CALL = 1000


def _check_cas(cas: object) -> int | None:
    if cas is None:
        return None
    if isinstance(cas, bool) or not isinstance(cas, int) or cas < 0:
        raise errors.InvalidInput("cas must be a non-negative integer")
    return cas


def _check_versions(versions: object) -> list[int]:
    if not isinstance(versions, list | tuple) or not versions:
        raise errors.InvalidInput("no version number provided")
    if len(versions) > MAX_VERSIONS_PER_CALL:
        raise errors.InvalidInput(f"at most {MAX_VERSIONS_PER_CALL} versions per call")
    for v in versions:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise errors.InvalidInput("versions must be positive integers")
    return sorted(set(versions))


def _check_depth(depth: object) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise errors.InvalidInput("depth must be a non-negative integer")
    return depth


def _check_read_version(version: object) -> int:
    """0 or None mean the current version, as in Vault."""
    if version is None:
        return 0
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise errors.InvalidInput("version must be a non-negative integer")
    return version


class KVMixin(KVImportMixin):
    """KV v2 secret data: write (with cas), read, patch, soft delete, undelete, destroy,
    subkeys; metadata and configuration come from `KVMetadataMixin`, bulk import from
    `KVImportMixin`."""

    # -- helpers --------------------------------------------------------------------------
    def _check_data(self, data: object) -> dict[str, Any]:
        if data is None:
            raise errors.InvalidInput("no data provided")
        if not isinstance(data, dict):
            raise errors.InvalidInput("data must be a JSON object")
        if json_size(data) > self._config.max_value_bytes:
            raise errors.PayloadTooLarge(
                f"data exceeds the limit of {self._config.max_value_bytes} bytes"
            )
        return data

    def _kv_version(self, tx: Tx, row: SecretRow, version: int) -> VersionRow:
        """A readable version (0: the current one).

        Raises:
            VersionNotFound: no such version (never written, or pruned).
            VersionDeleted: it is soft-deleted or destroyed (carries its metadata).
        """
        number = version or row.version
        stored = tx.get_version(row.id, number) if number > 0 else None
        if stored is None:
            raise errors.VersionNotFound()
        if stored.destroyed or stored.value is None or is_deleted(stored, self._clock.now()):
            raise errors.VersionDeleted(details=self._version_meta(row, stored))
        return stored

    def _kv_check_cas(self, tx: Tx, row: SecretRow | None, cas: int | None) -> None:
        if cas is None:
            if tx.kv_config().cas_required or (row is not None and row.cas_required):
                raise errors.InvalidInput(CAS_REQUIRED)
            return
        if cas != (row.version if row else 0):
            raise errors.VersionConflict()

    def _kv_store(
        self,
        tx: Tx,
        row: SecretRow,
        data: dict[str, Any],
        user_id: int,
    ) -> KVVersionMeta:
        number = self._add_version(tx, row, data, user_id)
        stored = tx.get_version(row.id, number)
        assert stored is not None  # noqa: S101 - inserted by _add_version in this transaction
        return self._version_meta(row, stored)

    # -- data -----------------------------------------------------------------------------
    def kv_write(
        self,
        path: str,
        data: dict[str, Any],
        *,
        cas: int | None = None,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> KVVersionMeta:
        """Store `data` as the key's next version (creating the key); return its metadata.

        Raises:
            InvalidInput: bad path, `data` not a JSON object, bad `cas`, or no `cas` while
                `cas_required` is set on the key or the mount.
            PayloadTooLarge: the encoded data exceeds `max_value_bytes`.
            VersionConflict: `cas` is not the current version (0: the key must not exist).
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        self._check_data(data)
        cas = _check_cas(cas)
        actor = Actor(user_id, ip, request_id)

        def run(tx: Tx) -> tuple[KVVersionMeta, NewAudit]:
            row = self._kv_row(tx, path)
            self._kv_check_cas(tx, row, cas)
            action = "update" if row is not None else "create"
            row = row or self._kv_create_empty(tx, path, user_id)
            meta = self._kv_store(tx, row, data, user_id)
            return meta, self._entry(action, actor, path, row.id)

        return self._write_op("write", actor, path, run)

    def kv_read(
        self,
        path: str,
        version: int | None = None,
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> KVSecret:
        """A version's data and metadata (`version` None or 0: the current one).

        Raises:
            InvalidInput: bad path or version.
            SecretNotFound: no key at `path`.
            VersionNotFound: no such version (also a key with metadata only).
            VersionDeleted: the version is soft-deleted or destroyed.
            IntegrityError: the stored value was tampered with.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        number = _check_read_version(version)

        def read(tx: Tx) -> tuple[KVSecret, int]:
            row = self._kv_existing(tx, path)
            stored = self._kv_version(tx, row, number)
            assert stored.value is not None  # noqa: S101 - checked by _kv_version
            data = decode_value(self._decrypt(tx, stored.value, row.id, row.path, stored.version))
            return KVSecret(data, self._version_meta(row, stored)), row.id

        return self._read_op("read", Actor(user_id, ip, request_id), path, read)

    def kv_patch(
        self,
        path: str,
        patch: dict[str, Any],
        *,
        cas: int | None = None,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> KVVersionMeta:
        """Apply an RFC 7386 merge patch to the current version and store the result as a new
        version (`null` removes a key); return its metadata.

        Raises:
            InvalidInput: bad path, patch or `cas`, or no `cas` while it is required.
            SecretNotFound / VersionNotFound / VersionDeleted: no current version to patch.
            VersionConflict: `cas` is not the current version.
            PayloadTooLarge: the result exceeds `max_value_bytes`.
            IntegrityError: the stored value was tampered with.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        self._check_data(patch)
        cas = _check_cas(cas)

        def run(tx: Tx) -> tuple[KVVersionMeta, int]:
            row = self._kv_existing(tx, path)
            self._kv_check_cas(tx, row, cas)
            stored = self._kv_version(tx, row, 0)
            assert stored.value is not None  # noqa: S101 - checked by _kv_version
            current = decode_value(
                self._decrypt(tx, stored.value, row.id, row.path, stored.version)
            )
            merged = self._check_data(merge_patch(current, patch))
            return self._kv_store(tx, row, merged, user_id), row.id

        return self._write_op("patch", Actor(user_id, ip, request_id), path, run)

    def kv_subkeys(
        self,
        path: str,
        version: int | None = None,
        depth: int = 0,
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> KVSecret:
        """The key structure of a version without its values: leaves are None (`depth` 0: no
        limit), returned as a `KVSecret` whose `data` is that structure.

        Raises:
            InvalidInput: bad path, version or depth.
            SecretNotFound / VersionNotFound / VersionDeleted: nothing readable.
            IntegrityError: the stored value was tampered with.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        number = _check_read_version(version)
        depth = _check_depth(depth)

        def read(tx: Tx) -> tuple[KVSecret, int]:
            row = self._kv_existing(tx, path)
            stored = self._kv_version(tx, row, number)
            assert stored.value is not None  # noqa: S101 - checked by _kv_version
            data = decode_value(self._decrypt(tx, stored.value, row.id, row.path, stored.version))
            return KVSecret(subkeys(data, depth), self._version_meta(row, stored)), row.id

        return self._read_op("subkeys", Actor(user_id, ip, request_id), path, read)

    # -- delete, undelete, destroy --------------------------------------------------------
    def kv_delete_latest(
        self, path: str, *, user_id: int = 1, ip: str = "cli", request_id: str | None = None
    ) -> None:
        """Soft-delete the current version (no error when the key does not exist).

        Raises:
            InvalidInput: bad path.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        self._kv_change_versions("soft_delete", path, None, Actor(user_id, ip, request_id))

    def kv_delete_versions(
        self,
        path: str,
        versions: list[int],
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> None:
        """Soft-delete the given versions; they stay recoverable with `kv_undelete`.

        Raises:
            InvalidInput: bad path, or `versions` empty or not positive integers.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        numbers = _check_versions(versions)
        self._kv_change_versions("soft_delete", path, numbers, Actor(user_id, ip, request_id))

    def kv_undelete(
        self,
        path: str,
        versions: list[int],
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> None:
        """Restore soft-deleted versions (destroyed ones stay destroyed). With a
        `delete_version_after` in force, the deletion is rescheduled from now, as in Vault.

        Raises:
            InvalidInput: bad path or versions.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        numbers = _check_versions(versions)
        self._kv_change_versions("undelete", path, numbers, Actor(user_id, ip, request_id))

    def kv_destroy(
        self,
        path: str,
        versions: list[int],
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> None:
        """Permanently erase the given versions' ciphertext; their metadata stays, marked
        destroyed.

        Raises:
            InvalidInput: bad path or versions.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        numbers = _check_versions(versions)
        self._kv_change_versions("destroy", path, numbers, Actor(user_id, ip, request_id))

    def _kv_change_versions(
        self, action: str, path: str, numbers: list[int] | None, actor: Actor
    ) -> None:
        def run(tx: Tx) -> tuple[None, int | None]:
            row = self._kv_row(tx, path)
            if row is None:
                return None, None
            wanted = numbers if numbers is not None else [row.version]
            now = self._clock.now()
            dva = self._kv_dva(row, tx.kv_config())
            for version in tx.versions(row.id):
                if version.version not in wanted or version.destroyed:
                    continue
                if action == "soft_delete" and not is_deleted(version, now):
                    tx.update_version(row.id, version.version, deleted_at=now)
                elif action == "undelete":
                    tx.update_version(
                        row.id,
                        version.version,
                        deleted_at=(now + timedelta(seconds=dva) if dva else None),
                    )
                elif action == "destroy":
                    tx.update_version(
                        row.id, version.version, value=None, key_term=None, destroyed=True
                    )
            return None, row.id

        self._write_op(action, actor, path, run)
