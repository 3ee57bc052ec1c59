"""`Mounts` (the `vault.mounts` service): secrets engines at any path, as Vault's `sys/mounts`.

Only the `kv` type exists, in version 1 or 2 (`kv-v2` is accepted as Vault accepts it). A mount
is data (`vault_mounts`, see `core.mount_paths` for how its keys are stored). `secret/` always
exists: it is the design document's namespace, so it can be neither disabled nor moved.
Disabling a mount deletes every secret, version and metadata row under it in the same
transaction as the mount row; the audit trail stays. Moving a mount changes only its path (its
keys are stored under its id, so no ciphertext changes). Every change is one audited write;
authorisation (administrators only) is the caller's, as for the KV mount config.

Reads are routed by this process's copy of the mount table (`find_cached`), re-read at most once
a second and at once after a change made here; writes, and a path the copy has no mount for,
are routed by the table itself (`find`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from strongroom import errors
from strongroom.core.kv_types import parse_go_duration
from strongroom.core.mount_paths import DEFAULT_MOUNT, SECRET, MountRef, mount_path
from strongroom.core.state import VaultState
from strongroom.models import DEFAULT_ACTOR, Actor
from strongroom.storage import MountRow, Tx

__all__ = ["MountRow", "MountStore", "Mounts", "effective_version", "mounts_of", "resolve"]

_VISIBILITY = ("", "hidden", "unauth")
#: How long `find_cached` routes by this process's copy of the mount table (the bound on a
#: read seeing a change made by another process, as for revoked tokens).
ROUTING_STALENESS = 1.0
T = TypeVar("T")
_CONFIG_KEYS = ("default_lease_ttl", "max_lease_ttl", "listing_visibility", "force_no_cache")


class MountStore(Protocol):
    """The mount table (`tx.mounts`)."""

    def list_mounts(self) -> list[MountRow]: ...

    def mount_by_path(self, path: str) -> MountRow | None: ...

    def insert_mount(self, mount: MountRow, now: datetime) -> int: ...

    def update_mount(self, mount_id: int, now: datetime, **values: Any) -> None: ...

    def delete_mount(self, mount_id: int) -> int: ...


def mounts_of(tx: Tx) -> MountStore:
    """The mount queries of a transaction."""
    return tx.mounts


def effective_version(row: MountRow) -> int:
    """The KV version a mount serves. A `kv` mount enabled without a version is version 1,
    stored as 0 (options `{}`) or -1 (options null) so `sys/mounts` shows its options as
    Vault does."""
    return max(row.version, 1)


def _ref(row: MountRow) -> MountRef:
    lease = int(row.config.get("default_lease_ttl", 0))
    return MountRef(row.id, row.path, effective_version(row), lease, row.accessor)


def resolve(tx: Tx, path: str) -> MountRef:
    """The mount at `path` (canonical form; `secret/` needs no query).

    Raises:
        MountNotFound: nothing is mounted there.
    """
    if path == DEFAULT_MOUNT:
        return SECRET
    row = mounts_of(tx).mount_by_path(path)
    if row is None:
        raise errors.MountNotFound(f"no secrets engine is mounted at {path}")
    return _ref(row)


def _serving(table: Sequence[MountRef], request_path: str) -> tuple[MountRef, str] | None:
    """The first mount of `table` (longest path first) whose path `request_path` + `/`
    starts with, and the rest of the request path."""
    wanted = request_path + "/"
    for ref in table:
        if wanted.startswith(ref.path):
            return ref, request_path[len(ref.path) :]
    return None


def _version(options: object, default: int) -> int:
    """The version `options` asks for (`default` when it names none)."""
    if options is None:
        return -1 if default == 0 else default
    if not isinstance(options, dict):
        raise errors.InvalidInput("options must be an object")
    raw = options.get("version")
    if raw is None or raw == "":
        return default
    if str(raw) not in ("1", "2"):
        raise errors.InvalidInput("options.version must be 1 or 2")
    return int(str(raw))


def _engine_version(engine_type: object, options: object) -> int:
    if engine_type == "kv":
        return _version(options, 0)
    if engine_type == "kv-v2":
        return _version(options, 2)
    shown = str(engine_type)[:40]
    raise errors.InvalidInput(f'unsupported secrets engine type "{shown}": only "kv" is supported')


def _config(values: object, old: dict[str, Any] | None = None) -> dict[str, Any]:
    """A mount config (unset keys keep `old`)."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise errors.InvalidInput("config must be an object")
    # Other options Vault knows (audit_non_hmac_*, passthrough_request_headers, ...) have no
    # meaning here; like Vault with an option it does not know, they are ignored.
    config = dict(old or {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": False})
    for name in ("default_lease_ttl", "max_lease_ttl"):
        if values.get(name) not in (None, ""):
            config[name] = int(parse_go_duration(values[name]).total_seconds())
    visibility = values.get("listing_visibility")
    if visibility is not None:
        if visibility not in _VISIBILITY:
            raise errors.InvalidInput('listing_visibility must be "", "hidden" or "unauth"')
        config["listing_visibility"] = visibility
    if values.get("force_no_cache") is not None:
        if not isinstance(values["force_no_cache"], bool):
            raise errors.InvalidInput("force_no_cache must be a boolean")
        config["force_no_cache"] = values["force_no_cache"]
    if config["max_lease_ttl"] and config["default_lease_ttl"] > config["max_lease_ttl"]:
        raise errors.InvalidInput("default_lease_ttl cannot exceed max_lease_ttl")
    return config


def _description(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 1000:
        raise errors.InvalidInput("description must be a string of at most 1000 characters")
    return value


def _check_free(store: MountStore, path: str) -> None:
    """Refuse a path that is, contains or lies inside an existing mount."""
    for row in store.list_mounts():
        if path.startswith(row.path) or row.path.startswith(path):
            raise errors.MountExists(f"path is already in use at {row.path}")


class Mounts:
    """Secrets engine mounts: list, read, enable, disable, tune, move."""

    def __init__(
        self,
        state: VaultState,
        *,
        staleness: float = ROUTING_STALENESS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._staleness = staleness
        self._monotonic = monotonic
        #: (when it was read, every mount longest path first): `find`'s copy of the table,
        #: and the count of changes made here (a copy read before one is not kept).
        self._routing: tuple[float, tuple[MountRef, ...]] = (float("-inf"), ())
        self._generation = 0
        self._routing_lock = threading.Lock()

    def list(self, *, actor: Actor = DEFAULT_ACTOR) -> list[MountRow]:
        """Every mount, by path.

        Raises:
            VaultLocked: the vault is locked.
        """
        return self._state.read(
            "list_mounts", actor, None, lambda tx: (mounts_of(tx).list_mounts(), None)
        )

    def read(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> MountRow:
        """The mount at `path`.

        Raises:
            InvalidInput: bad mount path.
            MountNotFound: nothing is mounted there.
            VaultLocked: the vault is locked.
        """
        canonical = mount_path(path)
        return self._state.read(
            "read_mount", actor, canonical, lambda tx: (_get(tx, canonical), None)
        )

    def versions(self) -> dict[str, int]:
        """The KV version of every mount, by path (`secret/` included). Not audited: a policy
        being written or read uses it to name mount paths (that operation is audited).

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        with self._state.storage.read() as tx:
            return {row.path: effective_version(row) for row in mounts_of(tx).list_mounts()}

    def paths(self) -> frozenset[str]:
        """Every mount path (not audited: the Authorizer scopes policy rules with them).

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        return frozenset(self.versions())

    def find(self, request_path: str) -> tuple[MountRef, str] | None:
        """The mount serving a request path (longest matching mount path) and the rest of the
        path; None when no mount serves it. Reads the mount table (and keeps it for
        `find_cached`). Not audited: the operation it routes to is, and checks its mount
        again (one disabled meanwhile is not found there).

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        started, generation = self._monotonic(), self._generation
        with self._state.storage.read() as tx:
            rows = mounts_of(tx).list_mounts()
        table = tuple(sorted(map(_ref, rows), key=lambda ref: len(ref.path), reverse=True))
        with self._routing_lock:
            if generation == self._generation:  # (not read before a change made here)
                self._routing = (started, table)
        return _serving(table, request_path)

    def find_cached(self, request_path: str) -> tuple[MountRef, str] | None:
        """`find` without I/O, for reads: the mount serving `request_path` in this process's
        copy of the table, when it was read within the staleness bound (1 s); else None (then
        call `find`, which reads the table: a mount just enabled elsewhere is never missed).
        A mount changed by another process meanwhile may still route here for that long: the
        operation checks its mount by path again, so a disabled, moved or replaced mount is
        not read from; a write must be routed by `find`. Never raises."""
        read_at, table = self._routing
        if self._monotonic() - read_at > self._staleness:
            return None
        return _serving(table, request_path)

    def _write(self, action: str, actor: Actor, path: str, fn: Callable[[Tx], tuple[T, None]]) -> T:
        """A change of the mount table (`VaultState.write`), which `find_cached` then
        forgets its copy of: this process routes by the change at once."""
        try:
            return self._state.write(action, actor, path, fn)
        finally:
            with self._routing_lock:
                self._generation += 1
                self._routing = (float("-inf"), ())

    def enable(
        self,
        path: str,
        engine_type: str = "kv",
        *,
        options: object = None,
        description: object = None,
        config: object = None,
        actor: Actor = DEFAULT_ACTOR,
    ) -> MountRow:
        """Mount a new KV engine at `path`; return it.

        Raises:
            InvalidInput: bad or reserved path, unsupported type, options or config.
            MountExists: the path is, contains or lies inside a mount.
            VaultLocked: the vault is locked.
        """
        canonical = mount_path(path)
        version = _engine_version(engine_type, options)
        row = MountRow(
            0,
            canonical,
            "kv",
            version,
            _description(description),
            _config(config),
            str(uuid.uuid4()),
            f"kv_{uuid.uuid4().hex[:8]}",
        )

        def run(tx: Tx) -> tuple[MountRow, None]:
            store = mounts_of(tx)
            _check_free(store, canonical)
            mount_id = store.insert_mount(row, self._state.clock.now())
            return replace(row, id=mount_id, created_at=self._state.clock.now()), None

        return self._write("enable_mount", actor, canonical, run)

    def disable(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> int:
        """Unmount `path`, deleting every secret in it (one transaction); return how many
        secrets went (0, and no error, when nothing is mounted there: Vault's answer too).
        The audit trail stays.

        Raises:
            InvalidInput: bad path, or `secret/` (the design document's API lives there).
            VaultLocked: the vault is locked.
        """
        canonical = mount_path(path)
        if canonical == DEFAULT_MOUNT:
            raise errors.InvalidInput("cannot disable secret/: the vault's own API lives there")

        def run(tx: Tx) -> tuple[int, None]:
            store = mounts_of(tx)
            row = store.mount_by_path(canonical)
            return (0 if row is None else store.delete_mount(row.id)), None

        return self._write("disable_mount", actor, canonical, run)

    def tune(
        self,
        path: str,
        *,
        options: object = None,
        description: object = None,
        config: object = None,
        actor: Actor = DEFAULT_ACTOR,
    ) -> MountRow:
        """Change a mount's description, config or KV version (1 -> 2 upgrades in place,
        keeping every key; 2 -> 1 is refused, as in Vault); return it.

        Raises:
            InvalidInput: bad path, options, config, or a downgrade.
            MountNotFound: nothing is mounted there.
            VaultLocked: the vault is locked.
        """
        canonical = mount_path(path)

        def run(tx: Tx) -> tuple[MountRow, None]:
            store = mounts_of(tx)
            old = _get(tx, canonical)
            version = _version(options, old.version)
            if 0 < version < effective_version(old):
                raise errors.InvalidInput("cannot downgrade a KV mount from version 2 to 1")
            values: dict[str, Any] = {"version": version, "config": _config(config, old.config)}
            if description is not None:
                values["description"] = _description(description)
            store.update_mount(old.id, self._state.clock.now(), **values)
            return _get(tx, canonical), None

        return self._write("tune_mount", actor, canonical, run)

    def move(self, source: str, target: str, *, actor: Actor = DEFAULT_ACTOR) -> MountRow:
        """Move the mount at `source` to `target` with all its keys; return it.

        Raises:
            InvalidInput: bad or reserved paths, or `secret/` as source.
            MountNotFound: nothing is mounted at `source`.
            MountExists: `target` is, contains or lies inside another mount.
            VaultLocked: the vault is locked.
        """
        src, dst = mount_path(source), mount_path(target)
        if src == DEFAULT_MOUNT:
            raise errors.InvalidInput("cannot move secret/: the vault's own API lives there")

        def run(tx: Tx) -> tuple[MountRow, None]:
            store = mounts_of(tx)
            old = _get(tx, src)
            others = [r for r in store.list_mounts() if r.id != old.id]
            for row in others:
                if dst.startswith(row.path) or row.path.startswith(dst):
                    raise errors.MountExists(f"path is already in use at {row.path}")
            store.update_mount(old.id, self._state.clock.now(), path=dst)
            return _get(tx, dst), None

        return self._write("move_mount", actor, f"{src} -> {dst}", run)


def _get(tx: Tx, path: str) -> MountRow:
    row = mounts_of(tx).mount_by_path(path)
    if row is None:
        raise errors.MountNotFound(f"no secrets engine is mounted at {path}")
    return row
