"""Secret operations: create, read, update, delete, list, versions, rollback, TTL and cleanup.

A version's plaintext is a JSON object (DESIGN §4): a string written through the design
document's API is stored as ``{"value": "<string>"}`` and read back as that string; any other
object reads back as its JSON text.
"""

from __future__ import annotations

import json
import secrets as pyrandom
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from strongroom import errors
from strongroom.api import Progress
from strongroom.core.vault import Actor, VaultBase
from strongroom.models import SecretInfo, VersionInfo, validate_path, validate_prefix
from strongroom.storage import SecretRow, Tx, VersionRow

__all__ = ["SecretsMixin", "as_text", "decode_value", "encode_value", "info_from_row", "is_deleted"]

MAX_DESCRIPTION = 4096
MAX_TOKEN_BYTES = 1024
#: Expired secrets removed per transaction by `cleanup_expired`.
CLEANUP_BATCH = 500


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


MAX_VERSION = 2**31 - 1


def _check_version(version: object) -> int:
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not (1 <= version <= MAX_VERSION)
    ):
        raise errors.InvalidInput(f"version must be an integer from 1 to {MAX_VERSION}")
    return version


def check_text(text: str, what: str) -> int:
    """The UTF-8 size of `text`.

    Raises:
        InvalidInput: `text` holds a lone surrogate (not encodable Unicode).
    """
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise errors.InvalidInput(f"{what} must be valid Unicode text") from exc


class SecretsMixin(VaultBase):
    """Secret operations over the audited plumbing of `VaultBase`."""

    # -- validation -----------------------------------------------------------------------
    def _check_value(self, value: object) -> str:
        if not isinstance(value, str):
            raise errors.InvalidInput("value must be a string")
        if not value:
            raise errors.InvalidInput("value must not be empty")
        if check_text(value, "value") > self._config.max_value_bytes:
            raise errors.PayloadTooLarge(
                f"value exceeds the limit of {self._config.max_value_bytes} bytes"
            )
        return value

    def _expired(self, row: SecretRow, now: datetime | None = None) -> bool:
        return row.expires_at is not None and row.expires_at <= (now or self._clock.now())

    def _existing(self, tx: Tx, path: str) -> SecretRow:
        row = tx.secret_by_path(path)
        if row is None:
            raise errors.SecretNotFound()
        return row

    def _live(self, tx: Tx, path: str) -> SecretRow:
        row = self._existing(tx, path)
        if self._expired(row):
            raise errors.SecretExpired()
        return row

    def _read_data(
        self, tx: Tx, row: SecretRow, version: int, stored: VersionRow | None = None
    ) -> dict[str, Any]:
        if stored is None:
            stored = tx.get_version(row.id, version)
        if stored is None or stored.value is None or is_deleted(stored, self._clock.now()):
            raise errors.VersionNotFound()
        return decode_value(self._decrypt(tx, stored.value, row.id, row.path, version))

    def _read_value(self, tx: Tx, path: str, version: int | None) -> tuple[str, int]:
        """The value of `version` (default current) of the live secret at `path`, one query."""
        found = tx.secret_with_version(path, version)
        if found is None:
            raise errors.SecretNotFound()
        row, stored = found
        if self._expired(row):
            raise errors.SecretExpired()
        if stored is None:
            raise errors.VersionNotFound()
        return as_text(self._read_data(tx, row, stored.version, stored)), row.id

    def _add_version(self, tx: Tx, row: SecretRow, data: dict[str, Any], user_id: int) -> int:
        """Store `data` as the next version of `row` and make it current.

        The KV v2 settings apply to every front-end: a `delete_version_after` (the secret's, else
        the mount's) schedules the version's soft deletion, and versions beyond the larger of the
        secret's and the mount's `max_versions` are pruned (0 for both: keep every version).
        """
        now = self._clock.now()
        number = row.version + 1
        mount = tx.kv_config()
        envelope, term = self._encrypt(tx, encode_value(data), row.id, row.path, number)
        ttl = row.delete_version_after or mount.delete_version_after
        deleted_at = now + timedelta(seconds=ttl) if ttl > 0 else None
        tx.insert_version(VersionRow(row.id, number, envelope, term, user_id, now, deleted_at))
        tx.set_current_version(row.id, number, now)
        limit = max(row.max_versions, mount.max_versions)
        if limit > 0 and number > limit:
            tx.prune_versions(row.id, number - limit + 1)
        return number

    # -- operations -----------------------------------------------------------------------
    def create_secret(
        self,
        path: str,
        value: str,
        *,
        description: str | None = None,
        user_id: int = 1,
        expires_in: timedelta | None = None,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> SecretInfo:
        """Create a secret at `path` with version 1. An expired secret at the path is replaced.

        Raises:
            InvalidInput: bad path, empty value, bad description or `expires_in`.
            PayloadTooLarge: the value exceeds `max_value_bytes`.
            SecretExists: a live secret is at `path`.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        self._check_value(value)
        if description is not None and (
            not isinstance(description, str) or len(description) > MAX_DESCRIPTION
        ):
            raise errors.InvalidInput(
                f"description must be a string of at most {MAX_DESCRIPTION} characters"
            )
        if description is not None:
            check_text(description, "description")
        if expires_in is not None and (
            not isinstance(expires_in, timedelta) or expires_in <= timedelta(0)
        ):
            raise errors.InvalidInput("expires_in must be a positive duration")
        return self._create(
            path, {"value": value}, description, expires_in, Actor(user_id, ip, request_id)
        )

    def _create(
        self,
        path: str,
        data: dict[str, Any],
        description: str | None,
        expires_in: timedelta | None,
        actor: Actor,
    ) -> SecretInfo:
        def run(tx: Tx) -> tuple[SecretInfo, int]:
            now = self._clock.now()
            old = tx.secret_by_path(path)
            if old is not None:
                if not self._expired(old, now):
                    raise errors.SecretExists()
                tx.delete_secret(old.id)
            expires_at = now + expires_in if expires_in else None
            secret_id = tx.insert_secret(
                path, description, actor.user_id, now, expires_at, version=0
            )
            row = SecretRow(secret_id, path, description, actor.user_id, now, now, 0, expires_at)
            number = self._add_version(tx, row, data, actor.user_id)
            return info_from_row(replace(row, version=number)), secret_id

        return self._write_op("create", actor, path, run)

    def get_secret(
        self, path: str, *, user_id: int = 1, ip: str = "cli", request_id: str | None = None
    ) -> str:
        """The current value of the secret at `path`.

        Raises:
            InvalidInput: bad path.
            SecretNotFound / SecretExpired: no live secret at `path`.
            VersionNotFound: its current version was deleted.
            IntegrityError: the stored value was tampered with (audited).
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        return self._read_op(
            "read",
            Actor(user_id, ip, request_id),
            path,
            lambda tx: self._read_value(tx, path, None),
        )

    def get_secret_version(
        self,
        path: str,
        version: int,
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> str:
        """The value of one version.

        Raises:
            InvalidInput: bad path or version number.
            SecretNotFound / SecretExpired / VersionNotFound: nothing to read.
            IntegrityError: the stored value was tampered with.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        _check_version(version)
        return self._read_op(
            "read",
            Actor(user_id, ip, request_id),
            path,
            lambda tx: self._read_value(tx, path, version),
        )

    def update_secret(
        self,
        path: str,
        value: str,
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> int:
        """Store `value` as a new version; return its number.

        Raises:
            InvalidInput / PayloadTooLarge: bad path or value.
            SecretNotFound / SecretExpired: no live secret at `path`.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        self._check_value(value)
        actor = Actor(user_id, ip, request_id)

        def run(tx: Tx) -> tuple[int, int]:
            row = self._live(tx, path)
            return self._add_version(tx, row, {"value": value}, user_id), row.id

        return self._write_op("update", actor, path, run)

    def delete_secret(
        self, path: str, *, user_id: int = 1, ip: str = "cli", request_id: str | None = None
    ) -> None:
        """Delete the secret and every version; its audit history stays, with the path.

        Raises:
            InvalidInput: bad path.
            SecretNotFound: nothing at `path`.
            VaultLocked: the vault is locked.
        """
        validate_path(path)

        def run(tx: Tx) -> tuple[None, int]:
            row = self._existing(tx, path)
            tx.delete_secret(row.id)
            return None, row.id

        self._write_op("delete", Actor(user_id, ip, request_id), path, run)

    def list_secrets(
        self, prefix: str = "", *, user_id: int = 1, ip: str = "cli", request_id: str | None = None
    ) -> list[SecretInfo]:
        """Secrets whose path starts with `prefix` (literal, case-sensitive), ordered by path.

        Raises:
            InvalidInput: bad prefix.
            VaultLocked: the vault is locked.
        """
        validate_prefix(prefix)

        def read(tx: Tx) -> tuple[list[SecretInfo], None]:
            return [info_from_row(r) for r in tx.list_secrets(prefix)], None

        return self._read_op("list", Actor(user_id, ip, request_id), prefix or None, read)

    def list_versions(
        self, path: str, *, user_id: int = 1, ip: str = "cli", request_id: str | None = None
    ) -> list[VersionInfo]:
        """Every stored version of a secret, newest first.

        Raises:
            InvalidInput: bad path.
            SecretNotFound: nothing at `path`.
            VaultLocked: the vault is locked.
        """
        validate_path(path)

        def read(tx: Tx) -> tuple[list[VersionInfo], int]:
            row = self._existing(tx, path)
            return [
                VersionInfo(v.version, v.updated_at, v.updated_by, v.deleted_at, v.destroyed)
                for v in tx.versions(row.id)
            ], row.id

        return self._read_op("versions", Actor(user_id, ip, request_id), path, read)

    def rollback_secret(
        self,
        path: str,
        version: int,
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> int:
        """Store a new version whose value is `version`'s; return the new number.

        Raises:
            InvalidInput: bad path or version.
            SecretNotFound / SecretExpired / VersionNotFound: nothing to roll back to.
            IntegrityError: the old version was tampered with.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        _check_version(version)

        def run(tx: Tx) -> tuple[int, int]:
            row = self._live(tx, path)
            data = self._read_data(tx, row, version)
            return self._add_version(tx, row, data, user_id), row.id

        return self._write_op("rollback", Actor(user_id, ip, request_id), path, run)

    def cleanup_expired(
        self,
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Delete every secret expired now; return how many. Each deletion is audited.

        Works in transactions of `CLEANUP_BATCH` secrets (other callers' writes interleave),
        calling `progress(done, total)` after each.

        Raises:
            VaultLocked: the vault is locked.
        """
        actor = Actor(user_id, ip, request_id)
        cutoff = self._clock.now()

        def run(tx: Tx) -> tuple[int, list[Any]]:
            expired = tx.expired_secrets(cutoff, CLEANUP_BATCH)
            entries = [self._entry("cleanup", actor)]
            for row in expired:
                tx.delete_secret(row.id)
                entries.append(self._entry("delete", actor, row.path, row.id))
            return len(expired), entries

        self._require_unlocked()
        with self._storage.read() as tx:
            total = len(tx.expired_secrets(cutoff))
        removed = 0
        while True:
            done = self._write_op("cleanup", actor, None, run)
            removed += done
            if progress is not None:
                progress(removed, max(total, removed))
            if done < CLEANUP_BATCH:
                return removed

    def generate_token(
        self, length: int = 32, *, user_id: int = 1, ip: str = "cli", request_id: str | None = None
    ) -> str:
        """A URL-safe random string from `length` random bytes (1..1024). Not stored.

        Raises:
            InvalidInput: length out of range.
            VaultLocked: the vault is locked.
        """
        if (
            isinstance(length, bool)
            or not isinstance(length, int)
            or not (1 <= length <= MAX_TOKEN_BYTES)
        ):
            raise errors.InvalidInput(f"length must be an integer from 1 to {MAX_TOKEN_BYTES}")
        return self._audited(
            "generate",
            Actor(user_id, ip, request_id),
            None,
            lambda: (pyrandom.token_urlsafe(length), None),
        )
