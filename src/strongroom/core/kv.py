"""KV v2 data operations with Vault's semantics, on the same secrets as `/api/vault`.

A version's plaintext is a JSON object (DESIGN §4), so a map written here reads back through the
design document's API as its JSON text, and a string written there reads here as
``{"value": "..."}``. Soft deletion keeps a version recoverable (`undelete`) until it is
destroyed; `destroy` erases the ciphertext (value NULL). Check-and-set (`cas`) compares with the
key's current version (0 for a key that does not exist). Every public method writes one audit
entry through `VaultState`'s plumbing; nothing here logs or puts a value into an error.

`KVEngine` (the `vault.kv` service) holds the data operations; `kv.metadata` (`core.kv_meta`)
the metadata, folder listing and mount configuration; `kv.import_key` (`core.kv_import`) bulk
import. Storage: `versions.SecretStore`/`VersionStore` (`tx.secrets`) and `kv_rows.KVStore`
(`tx.kv`).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from strongroom import errors
from strongroom.core.kv_import import KVImportVersion, import_key
from strongroom.core.kv_meta import KVMetadataService
from strongroom.core.kv_rows import (
    CAS_REQUIRED,
    change_versions,
    check_cas,
    check_depth,
    check_read_version,
    check_versions,
    existing_key,
    kv_of,
    live,
    live_key,
    locate,
    new_key,
    version_meta,
)
from strongroom.core.kv_types import (
    KVSecret,
    KVVersionMeta,
    json_size,
    merge_patch,
    new_kv_secret,
    subkeys,
)
from strongroom.core.mount_paths import (
    DEFAULT_MOUNT,
    MountRef,
    audit_path,
    mount_path,
    storage_path,
)
from strongroom.core.state import VaultState
from strongroom.core.versions import (
    add_version,
    decode_value,
    is_deleted,
    is_expired,
    secrets_of,
    versions_of,
)
from strongroom.models import DEFAULT_ACTOR, Actor, validate_path
from strongroom.storage import NewAudit, SecretRow, Tx, VersionRow

__all__ = ["KVEngine"]


@functools.lru_cache(maxsize=256)
def _canonical_mount(name: str) -> str:
    """`mount_path`, remembered: every KV call names its mount, and the regex that checks it
    cost a microsecond a request (a refusal raises, and is not remembered)."""
    return mount_path(name)


class KVEngine:
    """KV v2 secret data: write (with cas), read, patch, soft delete, undelete, destroy,
    subkeys and import; `metadata` holds the metadata, listing and mount configuration."""

    def __init__(self, state: VaultState) -> None:
        self._state = state
        self.metadata = KVMetadataService(state)

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _names(mount: str, path: str) -> tuple[str, str]:
        """The canonical mount path and the path audit entries record."""
        at = _canonical_mount(mount) if isinstance(mount, str) else mount_path(mount)
        return at, audit_path(at, path) or path

    def _check_data(self, data: object) -> dict[str, Any]:
        if data is None:
            raise errors.InvalidInput("no data provided")
        if not isinstance(data, dict):
            raise errors.InvalidInput("data must be a JSON object")
        if json_size(data) > self._state.config.max_value_bytes:
            raise errors.PayloadTooLarge(
                f"data exceeds the limit of {self._state.config.max_value_bytes} bytes"
            )
        return data

    def _version(self, tx: Tx, row: SecretRow, version: int) -> VersionRow:
        """A readable version (0: the current one).

        Raises:
            VersionNotFound: no such version (never written, or pruned).
            VersionDeleted: it is soft-deleted or destroyed (carries its metadata).
        """
        number = version or row.version
        stored = versions_of(tx).get_version(row.id, number) if number > 0 else None
        return self._readable(row, stored)

    def _key_version(
        self, tx: Tx, path: str, version: int, mount: tuple[str, int] | None = None
    ) -> tuple[SecretRow, VersionRow]:
        """The live secret at the stored `path` and its readable version (0: the current one),
        in one query (a read's hot path); with `mount` (path, KV version), only while its
        mount is at that path in that version.

        Raises:
            SecretNotFound: no live secret there.
            VersionNotFound / VersionDeleted: as `_version`.
        """
        found = secrets_of(tx).secret_with_version(path, version or None, mount)
        if found is None or is_expired(found[0], self._state.clock.now()):
            raise errors.SecretNotFound()
        row, stored = found
        return row, self._readable(row, stored)

    def _located_version(
        self, tx: Tx, at: str, routed: MountRef | None, path: str, version: int
    ) -> tuple[SecretRow, VersionRow]:
        """`_key_version` of key `path` of the mount at `at`; with `routed` (the mount a
        request was routed by), under its id while it is still at `at` in its KV version.

        Raises:
            MountNotFound: nothing is mounted at `at`.
            MountChanged: something else than `routed` is (moved, disabled, replaced or
                upgraded since the routing copy was read).
            SecretNotFound / VersionNotFound / VersionDeleted: as `_key_version`.
        """
        if routed is None:
            return self._key_version(tx, locate(tx, at, path)[1], version)
        try:
            return self._key_version(tx, storage_path(routed, path), version, (at, routed.version))
        except errors.SecretNotFound:
            now = locate(tx, at, path)[0]  # (the key is missing, or the mount changed)
            if (now.id, now.version) != (routed.id, routed.version):
                raise errors.MountChanged() from None
            raise

    def _readable(self, row: SecretRow, stored: VersionRow | None) -> VersionRow:
        if stored is None:
            raise errors.VersionNotFound()
        if stored.destroyed or stored.value is None or is_deleted(stored, self._state.clock.now()):
            raise errors.VersionDeleted(details=version_meta(row, stored))
        return stored

    def _check_cas(self, tx: Tx, row: SecretRow | None, cas: int | None, mount_id: int) -> None:
        if cas is None:
            config = kv_of(tx).kv_config(mount_id)
            if config.cas_required or (row is not None and row.cas_required):
                raise errors.InvalidInput(CAS_REQUIRED)
            return
        if cas != (row.version if row else 0):
            raise errors.VersionConflict()

    def _store(
        self,
        tx: Tx,
        row: SecretRow,
        data: dict[str, Any],
        user_id: int,
        *,
        is_current: bool = False,
    ) -> KVVersionMeta:
        stored = add_version(self._state, tx, row, data, user_id, is_current=is_current)
        return version_meta(row, stored)

    # -- data -----------------------------------------------------------------------------
    def write(
        self,
        path: str,
        data: dict[str, Any],
        *,
        cas: int | None = None,
        mount: str = DEFAULT_MOUNT,
        actor: Actor = DEFAULT_ACTOR,
    ) -> KVVersionMeta:
        """Store `data` as the key's next version (creating the key) in the mount at `mount`;
        return its metadata.

        Raises:
            InvalidInput: bad path, `data` not a JSON object, bad `cas`, or no `cas` while
                `cas_required` is set on the key or the mount.
            PayloadTooLarge: the encoded data exceeds `max_value_bytes`.
            VersionConflict: `cas` is not the current version (0: the key must not exist).
            MountNotFound: nothing is mounted at `mount`.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        self._check_data(data)
        cas = check_cas(cas)
        at, audited = self._names(mount, path)

        def run(tx: Tx) -> tuple[KVVersionMeta, NewAudit]:
            ref, stored = locate(tx, at, path)
            found = secrets_of(tx).secret_by_path(stored)
            row = live(self._state, found)
            self._check_cas(tx, row, cas, ref.id)
            if row is not None:
                meta = self._store(tx, row, data, actor.user_id)
                return meta, self._state.entry("update", actor, audited, row.id)
            # a new key: its row stored at version 1, then that version (as `Secrets.create`)
            row = new_key(self._state, tx, stored, actor.user_id, ref.id, replaces=found, version=1)
            meta = self._store(tx, row, data, actor.user_id, is_current=True)
            return meta, self._state.entry("create", actor, audited, row.id)

        return self._state.write("write", actor, audited, run)

    def read(
        self,
        path: str,
        version: int | None = None,
        *,
        mount: str | MountRef = DEFAULT_MOUNT,
        actor: Actor = DEFAULT_ACTOR,
    ) -> KVSecret:
        """A version's data and metadata (`version` None or 0: the current one). `mount` may be
        the `MountRef` a request was routed by (`Mounts.find_cached`): the read then finds
        the key under that mount's id while the mount is still at that path in that KV
        version, in the same statement (a round trip less than resolving the path first);
        when it is not, MountChanged (the caller routes the request again: its policy check
        named the old mount's version).

        Raises:
            InvalidInput: bad path or version.
            SecretNotFound: no key at `path`.
            VersionNotFound: no such version (also a key with metadata only).
            VersionDeleted: the version is soft-deleted or destroyed.
            IntegrityError: the stored value was tampered with.
            MountNotFound: nothing is mounted at `mount`; MountChanged: not the `MountRef`.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        number = check_read_version(version)
        routed = mount if isinstance(mount, MountRef) and mount.path != DEFAULT_MOUNT else None
        at, audited = self._names(mount.path if isinstance(mount, MountRef) else mount, path)

        def read(tx: Tx) -> tuple[KVSecret, int]:
            row, stored = self._located_version(tx, at, routed, path, number)
            assert stored.value is not None  # noqa: S101 - checked by _readable
            data = decode_value(
                self._state.decrypt(tx, stored.value, row.id, row.path, stored.version)
            )
            return new_kv_secret(data, version_meta(row, stored)), row.id

        return self._state.read("read", actor, audited, read)

    def patch(
        self,
        path: str,
        patch: dict[str, Any],
        *,
        cas: int | None = None,
        mount: str = DEFAULT_MOUNT,
        actor: Actor = DEFAULT_ACTOR,
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
        cas = check_cas(cas)
        at, audited = self._names(mount, path)

        def run(tx: Tx) -> tuple[KVVersionMeta, int]:
            row = existing_key(self._state, tx, locate(tx, at, path)[1])
            self._check_cas(tx, row, cas, row.mount_id)
            stored = self._version(tx, row, 0)
            assert stored.value is not None  # noqa: S101 - checked by _readable
            current = decode_value(
                self._state.decrypt(tx, stored.value, row.id, row.path, stored.version)
            )
            merged = self._check_data(merge_patch(current, patch))
            return self._store(tx, row, merged, actor.user_id), row.id

        return self._state.write("patch", actor, audited, run)

    def subkeys(
        self,
        path: str,
        version: int | None = None,
        depth: int = 0,
        *,
        mount: str = DEFAULT_MOUNT,
        actor: Actor = DEFAULT_ACTOR,
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
        number = check_read_version(version)
        depth = check_depth(depth)
        at, audited = self._names(mount, path)

        def read(tx: Tx) -> tuple[KVSecret, int]:
            row, stored = self._key_version(tx, locate(tx, at, path)[1], number)
            assert stored.value is not None  # noqa: S101 - checked by _readable
            data = decode_value(
                self._state.decrypt(tx, stored.value, row.id, row.path, stored.version)
            )
            return new_kv_secret(subkeys(data, depth), version_meta(row, stored)), row.id

        return self._state.read("subkeys", actor, audited, read)

    # -- delete, undelete, destroy --------------------------------------------------------
    def delete_latest(
        self, path: str, *, mount: str = DEFAULT_MOUNT, actor: Actor = DEFAULT_ACTOR
    ) -> None:
        """Soft-delete the current version (no error when the key does not exist).

        Raises:
            InvalidInput: bad path.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        change_versions(self._state, "soft_delete", path, None, actor, mount_path(mount))

    def delete_versions(
        self,
        path: str,
        versions: list[int],
        *,
        mount: str = DEFAULT_MOUNT,
        actor: Actor = DEFAULT_ACTOR,
    ) -> None:
        """Soft-delete the given versions; they stay recoverable with `undelete`.

        Raises:
            InvalidInput: bad path, or `versions` empty or not positive integers.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        numbers = check_versions(versions)
        change_versions(self._state, "soft_delete", path, numbers, actor, mount_path(mount))

    def undelete(
        self,
        path: str,
        versions: list[int],
        *,
        mount: str = DEFAULT_MOUNT,
        actor: Actor = DEFAULT_ACTOR,
    ) -> None:
        """Restore soft-deleted versions (destroyed ones stay destroyed). With a
        `delete_version_after` in force, the deletion is rescheduled from now, as in Vault.

        Raises:
            InvalidInput: bad path or versions.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        numbers = check_versions(versions)
        change_versions(self._state, "undelete", path, numbers, actor, mount_path(mount))

    def destroy(
        self,
        path: str,
        versions: list[int],
        *,
        mount: str = DEFAULT_MOUNT,
        actor: Actor = DEFAULT_ACTOR,
    ) -> None:
        """Permanently erase the given versions' ciphertext; their metadata stays, marked
        destroyed.

        Raises:
            InvalidInput: bad path or versions.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        numbers = check_versions(versions)
        change_versions(self._state, "destroy", path, numbers, actor, mount_path(mount))

    # -- existence and import -------------------------------------------------------------
    def exists(self, path: str, *, mount: str = DEFAULT_MOUNT) -> bool:
        """Whether a live key is at `path` (not audited: callers use it to pick the capability
        a write needs, `create` or `update`, before the audited write itself).

        Raises:
            InvalidInput: bad path.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        at = mount_path(mount)
        self._state.require_unlocked()
        with self._state.storage.read() as tx:
            return live_key(self._state, tx, locate(tx, at, path)[1]) is not None

    def import_key(
        self,
        path: str,
        versions: list[KVImportVersion],
        *,
        current_version: int | None = None,
        created_at: datetime | None = None,
        max_versions: object = None,
        cas_required: object = None,
        delete_version_after: object = None,
        custom_metadata: object = None,
        replace: bool = False,
        mount: str = DEFAULT_MOUNT,
        actor: Actor = DEFAULT_ACTOR,
    ) -> int:
        """Create the key at `path` of the mount at `mount` with exactly these versions; return
        how many carry data (see `core.kv_import.import_key`, which documents the arguments).

        Raises:
            InvalidInput: bad path, settings, version numbers or times.
            PayloadTooLarge: a version exceeds `max_value_bytes`.
            SecretExists: a key exists at `path` and `replace` is false.
            MountNotFound: nothing is mounted at `mount`.
            VaultLocked: the vault is locked.
        """
        return import_key(
            self._state,
            path,
            versions,
            current_version=current_version,
            created_at=created_at,
            settings=(max_versions, cas_required, delete_version_after, custom_metadata),
            replace=replace,
            actor=actor,
            mount=mount_path(mount),
        )
