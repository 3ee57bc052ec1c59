"""Secret rows and their versions: the value encoding, and the steps every engine shares
(store the next version, read a version's data, expiry). Used by `Secrets`, `KVEngine` and
`Rotation`, each with the storage protocols declared here.

A version's plaintext is a JSON object (DESIGN §4): a string written through the design
document's API is stored as ``{"value": "<string>"}`` and read back as that string; any other
object reads back as its JSON text. Nothing here logs or puts a value into an error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from strongroom import errors
from strongroom.core.state import VaultState
from strongroom.models import SecretInfo
from strongroom.storage import KVConfigRow, SecretRow, Tx, VersionRow, new_version_row

__all__ = [
    "MountConfigStore",
    "SecretStore",
    "VersionStore",
    "add_version",
    "as_text",
    "check_text",
    "decode_value",
    "encode_value",
    "existing_secret",
    "info_from_row",
    "is_deleted",
    "is_expired",
    "live_secret",
    "read_data",
    "secrets_of",
    "versions_of",
]


class SecretStore(Protocol):
    """Secret rows, as `Secrets` and the KV engine use them (`tx.secrets`)."""

    def secret_by_path(self, path: str) -> SecretRow | None: ...

    def secret_with_version(
        self, path: str, version: int | None = None, mount: tuple[str, int] | None = None
    ) -> tuple[SecretRow, VersionRow | None] | None: ...

    def insert_secret(
        self,
        path: str,
        description: str | None,
        created_by: int,
        now: datetime,
        expires_at: datetime | None,
        metadata: dict[str, str] | None = None,
        version: int = 1,
        mount_id: int = 1,
    ) -> int: ...

    def update_secret(self, secret_id: int, **values: Any) -> None: ...

    def delete_secret(self, secret_id: int) -> None: ...

    def list_secrets(self, prefix: str = "", mount_id: int = 1) -> list[SecretRow]: ...

    def secret_infos(self, prefix: str = "", mount_id: int = 1) -> list[SecretInfo]: ...

    def list_paths(self, prefix: str = "", mount_id: int = 1) -> list[str]: ...

    def secrets_at(self, paths: Sequence[str]) -> list[SecretRow]: ...

    def expired_secrets(self, now: datetime, limit: int | None = None) -> list[SecretRow]: ...

    def count_expiring(self, now: datetime, until: datetime) -> int: ...

    def count_expired(self, now: datetime) -> int: ...
    def count_secrets(self) -> int: ...

    def expiring_secrets(self, now: datetime, until: datetime, limit: int) -> list[SecretRow]: ...


class VersionStore(Protocol):
    """Version rows of a secret (`tx.secrets` too)."""

    def insert_version(self, row: VersionRow) -> None: ...

    def get_version(self, secret_id: int, version: int) -> VersionRow | None: ...

    def versions(self, secret_id: int) -> list[VersionRow]: ...

    def update_version(self, secret_id: int, version: int, **values: Any) -> None: ...

    def set_current_version(self, secret_id: int, version: int, at: datetime) -> None: ...

    def prune_versions(self, secret_id: int, below: int) -> None: ...


class MountConfigStore(Protocol):
    """The KV mount settings every new version obeys (`tx.kv`)."""

    def kv_config(self, mount_id: int = 1) -> KVConfigRow: ...


def secrets_of(tx: Tx) -> SecretStore:
    """The secret rows of a transaction."""
    return tx.secrets


def versions_of(tx: Tx) -> VersionStore:
    """The version rows of a transaction."""
    return tx.secrets


def info_from_row(row: SecretRow) -> SecretInfo:
    """The public view of a secret row."""
    return SecretInfo(
        row.id,
        row.path,
        row.description,
        row.created_by,
        row.created_at,
        row.updated_at,
        row.version,
        row.expires_at,
        dict(row.metadata),
        row.max_versions,
        row.cas_required,
    )


def encode_value(data: dict[str, Any]) -> bytes:
    """Plaintext bytes of a version."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_value(plaintext: bytes) -> dict[str, Any]:
    """The JSON object of a version.

    Raises:
        IntegrityError: the authenticated plaintext is not a JSON object (never expected).
    """
    data = json.loads(plaintext)
    if not isinstance(data, dict):
        raise errors.IntegrityError()
    return data


def as_text(data: dict[str, Any]) -> str:
    """A version as the design document's single string."""
    value = data.get("value")
    if len(data) == 1 and isinstance(value, str):
        return value
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def is_deleted(version: VersionRow, now: datetime) -> bool:
    """True when the version is soft-deleted at `now` (a future `deleted_at` is only scheduled)."""
    return version.deleted_at is not None and version.deleted_at <= now


def is_expired(row: SecretRow, now: datetime) -> bool:
    """True when the secret's TTL has passed at `now`."""
    return row.expires_at is not None and row.expires_at <= now


def check_text(text: str, what: str) -> int:
    """The UTF-8 size of `text`.

    Raises:
        InvalidInput: `text` holds a lone surrogate (not encodable Unicode).
    """
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise errors.InvalidInput(f"{what} must be valid Unicode text") from exc


def existing_secret(tx: Tx, path: str) -> SecretRow:
    """The secret at `path`, expired or not.

    Raises:
        SecretNotFound: there is none.
    """
    row = secrets_of(tx).secret_by_path(path)
    if row is None:
        raise errors.SecretNotFound()
    return row


def live_secret(state: VaultState, tx: Tx, path: str) -> SecretRow:
    """The unexpired secret at `path`.

    Raises:
        SecretNotFound / SecretExpired: there is none.
    """
    row = existing_secret(tx, path)
    if is_expired(row, state.clock.now()):
        raise errors.SecretExpired()
    return row


def read_data(
    state: VaultState, tx: Tx, row: SecretRow, version: int, stored: VersionRow | None = None
) -> dict[str, Any]:
    """The data of one readable version of `row`.

    Raises:
        VersionNotFound: no such version, or it is deleted or destroyed.
        IntegrityError: the stored value was tampered with.
    """
    if stored is None:
        stored = versions_of(tx).get_version(row.id, version)
    if stored is None or stored.value is None or is_deleted(stored, state.clock.now()):
        raise errors.VersionNotFound()
    return decode_value(state.decrypt(tx, stored.value, row.id, row.path, version))


def add_version(
    state: VaultState,
    tx: Tx,
    row: SecretRow,
    data: dict[str, Any],
    user_id: int,
    *,
    is_current: bool = False,
) -> VersionRow:
    """Store `data` as the next version of `row` and make it current; return the version as
    stored.

    The KV v2 settings apply to every front-end: a `delete_version_after` (the secret's, else
    the mount's) schedules the version's soft deletion, and versions beyond the larger of the
    secret's and the mount's `max_versions` are pruned (0 for both: keep every version).

    `is_current`: `row` was just stored with this version already current (`Secrets.create`
    inserts the secret at version 1): the version is `row.version`, stored at
    `row.updated_at`, and the secret row needs no update (one statement fewer per create).
    """
    store = versions_of(tx)
    mount_store: MountConfigStore = tx.kv
    now = row.updated_at if is_current else state.clock.now()
    number = row.version if is_current else row.version + 1
    mount = mount_store.kv_config(row.mount_id)
    envelope, term = state.encrypt(tx, encode_value(data), row.id, row.path, number)
    ttl = row.delete_version_after or mount.delete_version_after
    deleted_at = now + timedelta(seconds=ttl) if ttl > 0 else None
    stored = new_version_row(row.id, number, envelope, term, user_id, now, deleted_at)
    store.insert_version(stored)
    if not is_current:
        store.set_current_version(row.id, number, now)
    limit = max(row.max_versions, mount.max_versions)
    if limit > 0 and number > limit:
        store.prune_versions(row.id, number - limit + 1)
    return stored
