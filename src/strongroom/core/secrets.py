"""`Secrets`: the design document's secret operations — create, get, update, delete, list,
versions, rollback, TTL cleanup and random tokens — over `VaultState`.

Storage: `versions.SecretStore` and `versions.VersionStore` (`tx.secrets`). Every operation takes
the acting `Actor` and writes one audit entry (cleanup one per deleted secret too). Nothing here
logs or puts a value into an error.
"""

from __future__ import annotations

import secrets as pyrandom
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

from strongroom import errors
from strongroom.api import Progress
from strongroom.core.state import VaultState
from strongroom.core.versions import (
    add_version,
    as_text,
    check_text,
    decode_value,
    encode_value,
    existing_secret,
    info_from_row,
    is_expired,
    live_secret,
    read_data,
    secrets_of,
    versions_of,
)
from strongroom.models import (
    DEFAULT_ACTOR,
    Actor,
    SecretInfo,
    VersionInfo,
    validate_path,
    validate_prefix,
)
from strongroom.storage import NewAudit, SecretRow, Tx

__all__ = ["Secrets", "as_text", "decode_value", "encode_value"]

MAX_DESCRIPTION = 4096
MAX_TOKEN_BYTES = 1024
MAX_VERSION = 2**31 - 1
#: Expired secrets removed per transaction by `cleanup_expired`.
CLEANUP_BATCH = 500


def _check_version(version: object) -> int:
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not (1 <= version <= MAX_VERSION)
    ):
        raise errors.InvalidInput(f"version must be an integer from 1 to {MAX_VERSION}")
    return version


class Secrets:
    """Secret operations (the library contract's secret methods delegate here)."""

    def __init__(self, state: VaultState) -> None:
        self._state = state

    def _check_value(self, value: object) -> str:
        if not isinstance(value, str):
            raise errors.InvalidInput("value must be a string")
        if not value:
            raise errors.InvalidInput("value must not be empty")
        limit = self._state.config.max_value_bytes
        if check_text(value, "value") > limit:
            raise errors.PayloadTooLarge(f"value exceeds the limit of {limit} bytes")
        return value

    def _read_value(self, tx: Tx, path: str, version: int | None) -> tuple[str, int]:
        """The value of `version` (default current) of the live secret at `path`, one query."""
        found = secrets_of(tx).secret_with_version(path, version)
        if found is None:
            raise errors.SecretNotFound()
        row, stored = found
        if is_expired(row, self._state.clock.now()):
            raise errors.SecretExpired()
        if stored is None:
            raise errors.VersionNotFound()
        return as_text(read_data(self._state, tx, row, stored.version, stored)), row.id

    def create(
        self,
        path: str,
        value: str,
        *,
        description: str | None = None,
        expires_in: timedelta | None = None,
        actor: Actor = DEFAULT_ACTOR,
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
        data = {"value": value}
        state = self._state

        def run(tx: Tx) -> tuple[SecretInfo, int]:
            store = secrets_of(tx)
            now = state.clock.now()
            old = store.secret_by_path(path)
            if old is not None:
                if not is_expired(old, now):
                    raise errors.SecretExists()
                store.delete_secret(old.id)
            expires_at = now + expires_in if expires_in else None
            secret_id = store.insert_secret(
                path, description, actor.user_id, now, expires_at, version=1
            )
            row = SecretRow(secret_id, path, description, actor.user_id, now, now, 1, expires_at)
            add_version(state, tx, row, data, actor.user_id, is_current=True)
            return info_from_row(row), secret_id

        return state.write("create", actor, path, run)

    def get(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> str:
        """The current value of the secret at `path`.

        Raises:
            InvalidInput: bad path.
            SecretNotFound / SecretExpired: no live secret at `path`.
            VersionNotFound: its current version was deleted.
            IntegrityError: the stored value was tampered with (audited).
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        return self._state.read("read", actor, path, lambda tx: self._read_value(tx, path, None))

    def get_version(self, path: str, version: int, *, actor: Actor = DEFAULT_ACTOR) -> str:
        """The value of one version.

        Raises:
            InvalidInput: bad path or version number.
            SecretNotFound / SecretExpired / VersionNotFound: nothing to read.
            IntegrityError: the stored value was tampered with.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        _check_version(version)
        return self._state.read("read", actor, path, lambda tx: self._read_value(tx, path, version))

    def update(self, path: str, value: str, *, actor: Actor = DEFAULT_ACTOR) -> int:
        """Store `value` as a new version; return its number.

        Raises:
            InvalidInput / PayloadTooLarge: bad path or value.
            SecretNotFound / SecretExpired: no live secret at `path`.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        self._check_value(value)
        state = self._state

        def run(tx: Tx) -> tuple[int, int]:
            row = live_secret(state, tx, path)
            return add_version(state, tx, row, {"value": value}, actor.user_id).version, row.id

        return state.write("update", actor, path, run)

    def delete(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> None:
        """Delete the secret and every version; its audit history stays, with the path.

        Raises:
            InvalidInput: bad path.
            SecretNotFound: nothing at `path`.
            VaultLocked: the vault is locked.
        """
        validate_path(path)

        def run(tx: Tx) -> tuple[None, int]:
            row = existing_secret(tx, path)
            secrets_of(tx).delete_secret(row.id)
            return None, row.id

        self._state.write("delete", actor, path, run)

    def versions(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> list[VersionInfo]:
        """Every stored version of a secret, newest first.

        Raises:
            InvalidInput: bad path.
            SecretNotFound: nothing at `path`.
            VaultLocked: the vault is locked.
        """
        validate_path(path)

        def read(tx: Tx) -> tuple[list[VersionInfo], int]:
            row = existing_secret(tx, path)
            return [
                VersionInfo(v.version, v.updated_at, v.updated_by, v.deleted_at, v.destroyed)
                for v in versions_of(tx).versions(row.id)
            ], row.id

        return self._state.read("versions", actor, path, read)

    def rollback(self, path: str, version: int, *, actor: Actor = DEFAULT_ACTOR) -> int:
        """Store a new version whose value is `version`'s; return the new number.

        Raises:
            InvalidInput: bad path or version.
            SecretNotFound / SecretExpired / VersionNotFound: nothing to roll back to.
            IntegrityError: the old version was tampered with.
            VaultLocked: the vault is locked.
        """
        validate_path(path)
        _check_version(version)
        state = self._state

        def run(tx: Tx) -> tuple[int, int]:
            row = live_secret(state, tx, path)
            data = read_data(state, tx, row, version)
            return add_version(state, tx, row, data, actor.user_id).version, row.id

        return state.write("rollback", actor, path, run)

    def cleanup_expired(
        self, *, actor: Actor = DEFAULT_ACTOR, progress: Progress | None = None
    ) -> int:
        """Delete every secret expired now; return how many. Each deletion is audited.

        Works in transactions of `CLEANUP_BATCH` secrets (other callers' writes interleave),
        calling `progress(done, total)` after each.

        Raises:
            VaultLocked: the vault is locked.
        """
        state = self._state
        cutoff = state.clock.now()
        batch = CLEANUP_BATCH

        def run(tx: Tx) -> tuple[int, list[NewAudit]]:
            store = secrets_of(tx)
            expired = store.expired_secrets(cutoff, batch)
            entries = [state.entry("cleanup", actor)]
            for row in expired:
                store.delete_secret(row.id)
                entries.append(state.entry("delete", actor, row.path, row.id))
            return len(expired), entries

        state.require_unlocked()
        with state.storage.read() as tx:
            total = len(secrets_of(tx).expired_secrets(cutoff))
        removed = 0
        while True:
            done = state.write("cleanup", actor, None, run)
            removed += done
            if progress is not None:
                progress(removed, max(total, removed))
            if done < batch:
                return removed

    def count_expiring(self, within: timedelta) -> int:
        """How many live secrets expire within `within` (metadata only: no key needed).

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        now = self._state.clock.now()
        with self._state.storage.read() as tx:
            return secrets_of(tx).count_expiring(now, now + within)

    def count_expired(self) -> int:
        """How many expired secrets are still stored (metadata only: no key needed).

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        with self._state.storage.read() as tx:
            return secrets_of(tx).count_expired(self._state.clock.now())

    def overview(self, within: timedelta, limit: int = 100) -> tuple[int, list[SecretInfo]]:
        """How many secrets there are, and (at most `limit` of) those expiring within `within`,
        soonest first: metadata only, no key needed, no audit entry (an administrator's
        dashboard; callers limited by policies filter a listing instead).

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        now = self._state.clock.now()
        with self._state.storage.read() as tx:
            store = secrets_of(tx)
            rows = store.expiring_secrets(now, now + within, limit)
            return store.count_secrets(), [info_from_row(r) for r in rows]

    def generate_token(self, length: int = 32, *, actor: Actor = DEFAULT_ACTOR) -> str:
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
        return self._state.audited(
            "generate", actor, None, lambda: (pyrandom.token_urlsafe(length), None)
        )

    def list_paths(
        self,
        prefix: str = "",
        describe: Callable[[list[str]], Iterable[str]] | None = None,
        *,
        within: Sequence[str] | None = None,
        actor: Actor = DEFAULT_ACTOR,
    ) -> tuple[list[str], list[SecretInfo]]:
        """The paths `list(prefix)` would return, and the metadata of the ones `describe`
        picks from them (e.g. one page of a folder), in one audited `list` read: a page of a
        folder of thousands costs the folder's paths and the page's rows, not every row.

        `within`: only the paths under these prefixes (sorted, none inside another, each under
        `prefix`: `Visible.prefixes`), read as one index range each.

        `describe` runs inside the read transaction: it must be quick and pure.

        Raises:
            InvalidInput: bad prefix.
            VaultLocked: the vault is locked.
        """
        validate_prefix(prefix)

        def read(tx: Tx) -> tuple[tuple[list[str], list[SecretInfo]], None]:
            store = secrets_of(tx)
            if within is None:
                paths = store.list_paths(prefix)
            else:
                paths = [p for b in within if b.startswith(prefix) for p in store.list_paths(b)]
            wanted = list(describe(paths)) if describe is not None else []
            return (paths, [info_from_row(r) for r in store.secrets_at(wanted)]), None

        return self._state.read("list", actor, prefix or None, read)

    # Last: inside the class body, later annotations would read `list` as this method.
    def list(self, prefix: str = "", *, actor: Actor = DEFAULT_ACTOR) -> list[SecretInfo]:
        """Secrets whose path starts with `prefix` (literal, case-sensitive), ordered by path.

        Raises:
            InvalidInput: bad prefix.
            VaultLocked: the vault is locked.
        """
        validate_prefix(prefix)

        def read(tx: Tx) -> tuple[list[SecretInfo], None]:
            return secrets_of(tx).secret_infos(prefix), None

        return self._state.read("list", actor, prefix or None, read)
