"""The design document's secret commands at a KV mount other than `secret/` (`--mount`).

`/api/vault` and the core's `vault.secrets` serve `secret/` only, so `--mount secret` keeps the
commands exactly as they were. For another mount, `MountedSecrets` gives the commands the same
`VaultAPI` methods they use (create/get/update/delete/list/versions/rollback), written once over
a small `KVBackend`: `LocalKV` (the library's `vault.kv` with `mount=`) or `RemoteKV` (the
`/v1/<mount>/...` KV API through `client.Client.v1`, KV v2 or v1 as the server's
`sys/internal/ui/mounts/<mount>` says). A value is the KV object `{"value": "..."}`, as at
`secret/`; a key holding other fields reads as its JSON text (`versions.as_text`).

KV mounts keep no description, expiry, creator or per-version author: `create --description` and
`--expires-in` are refused there, and listings show user 0. A KV v1 mount keeps no versions on
the wire, so `versions`, `rollback` and `get --version` are refused on it, and `list` shows paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from strongroom import errors
from strongroom.core.mount_paths import mount_path
from strongroom.models import DEFAULT_ACTOR, Actor, SecretInfo, VersionInfo

if TYPE_CHECKING:
    from strongroom.client import Client
    from strongroom.core import Vault

__all__ = ["EPOCH", "KVBackend", "LocalKV", "MountedSecrets", "RemoteKV", "canonical"]

#: The time shown for what a KV v1 mount does not record.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def canonical(mount: str) -> str:
    """`team`, `/team/` -> `team/`.

    Raises:
        InvalidInput: not a valid mount path (as the library says locally).
    """
    return mount_path(mount)


@dataclass(frozen=True, slots=True)
class KeyMeta:
    """What a KV v2 key's metadata tells the commands."""

    created_at: datetime
    updated_at: datetime
    version: int
    versions: list[VersionInfo]


class KVBackend(Protocol):
    """One KV mount, local or remote. Paths are keys inside the mount."""

    mount: str
    kv_version: int

    def read(self, path: str, version: int | None) -> tuple[dict[str, Any], int]: ...

    def write(self, path: str, data: dict[str, Any], cas: int | None) -> int: ...

    def meta(self, path: str) -> KeyMeta: ...

    def delete(self, path: str) -> None: ...

    def folder(self, folder: str) -> list[str]: ...


class LocalKV:
    """A mount of the local vault (`vault.kv` with `mount=`)."""

    def __init__(self, vault: Vault, mount: str, actor: Actor) -> None:
        """Raises: MountNotFound, InvalidInput (bad mount path), VaultLocked."""
        from strongroom.core.mounts import effective_version

        row = vault.mounts.read(mount, actor=actor)
        self._vault, self._actor = vault, actor
        self.mount, self.kv_version = row.path, effective_version(row)

    def read(self, path: str, version: int | None) -> tuple[dict[str, Any], int]:
        found = self._vault.kv.read(path, version, mount=self.mount, actor=self._actor)
        return found.data, found.metadata.version

    def write(self, path: str, data: dict[str, Any], cas: int | None) -> int:
        return self._vault.kv.write(
            path, data, cas=cas, mount=self.mount, actor=self._actor
        ).version

    def meta(self, path: str) -> KeyMeta:
        m = self._vault.kv.metadata.read(path, mount=self.mount, actor=self._actor)
        found = [
            VersionInfo(n, v.created_at, 0, v.deletion_time, v.destroyed)
            for n, v in sorted(m.versions.items(), reverse=True)
        ]
        return KeyMeta(m.created_at, m.updated_at, m.current_version, found)

    def delete(self, path: str) -> None:
        self._vault.kv.metadata.delete(path, mount=self.mount, actor=self._actor)

    def folder(self, folder: str) -> list[str]:
        return self._vault.kv.metadata.list(folder, mount=self.mount, actor=self._actor)


def _time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return None if moment.year < 1971 else moment  # Vault's zero time: "not set"


class RemoteKV:
    """A mount of a server, through its Vault-compatible `/v1/` KV API."""

    def __init__(self, client: Client, mount: str) -> None:
        """Raises: MountNotFound (no such mount, or one the token may not see)."""
        want = canonical(mount)
        try:
            found = client.v1("GET", f"sys/internal/ui/mounts/{quote(want, safe='/')}")
        except (errors.PermissionDenied, errors.NotFound):
            found = None
        data = (found or {}).get("data") or {}
        if data.get("path") != want or data.get("type") not in ("kv", "kv-v2"):
            raise errors.MountNotFound(f"no secrets engine is mounted at {want}")
        options = data.get("options") or {}
        self._client, self.mount = client, want
        self.kv_version = 2 if str(options.get("version")) == "2" or data["type"] == "kv-v2" else 1

    def _url(self, part: str, path: str) -> str:
        middle = f"{part}/" if self.kv_version == 2 and part else ""
        return f"{quote(self.mount, safe='/')}{middle}{quote(path, safe='/')}"

    def _get(self, part: str, path: str, **params: Any) -> dict[str, Any]:
        try:
            answer = self._client.v1("GET", self._url(part, path), params=params or None)
        except errors.NotFound:
            raise (errors.VersionNotFound() if params else errors.SecretNotFound()) from None
        return (answer or {}).get("data") or {}

    def read(self, path: str, version: int | None) -> tuple[dict[str, Any], int]:
        if self.kv_version == 1:
            return self._get("", path), 0
        found = self._get("data", path, **({"version": version} if version else {}))
        if found.get("data") is None:  # deleted or destroyed: Vault answers 404 with metadata
            raise errors.VersionNotFound() if version else errors.SecretNotFound()
        return found["data"], int(found["metadata"]["version"])

    def write(self, path: str, data: dict[str, Any], cas: int | None) -> int:
        if self.kv_version == 1:
            self._client.v1("POST", self._url("", path), json=data)
            return 0
        body: dict[str, Any] = {"data": data}
        if cas is not None:
            body["options"] = {"cas": cas}
        try:
            answer = self._client.v1("POST", self._url("data", path), json=body)
        except errors.InvalidInput as exc:
            if "check-and-set" in str(exc):
                raise errors.VersionConflict() from None
            raise
        return int(((answer or {}).get("data") or {})["version"])

    def meta(self, path: str) -> KeyMeta:
        d = self._get("metadata", path)
        found = [
            VersionInfo(
                int(n),
                _time(v.get("created_time")) or EPOCH,
                0,
                _time(v.get("deletion_time")),
                bool(v.get("destroyed")),
            )
            for n, v in sorted(d.get("versions", {}).items(), key=lambda i: -int(i[0]))
        ]
        return KeyMeta(
            _time(d.get("created_time")) or EPOCH,
            _time(d.get("updated_time")) or EPOCH,
            int(d.get("current_version", 0)),
            found,
        )

    def delete(self, path: str) -> None:
        self._client.v1("DELETE", self._url("metadata", path))

    def folder(self, folder: str) -> list[str]:
        keys = self._get("metadata", folder, list="true").get("keys") or []
        return [str(k) for k in keys]


class MountedSecrets:
    """The secret commands' `VaultAPI` methods at one KV mount (not `secret/`)."""

    def __init__(self, kv: KVBackend) -> None:
        self.kv = kv

    @property
    def versioned(self) -> bool:
        """False for a KV v1 mount (no versions, no metadata on the wire)."""
        return self.kv.kv_version == 2

    def _versions_only(self, what: str) -> None:
        if not self.versioned:
            raise errors.InvalidInput(f"{what}: the KV v1 mount {self.kv.mount} keeps no versions")

    def _exists(self, path: str) -> bool:
        try:
            self.kv.read(path, None)
        except errors.NotFound:
            return False
        return True

    def create_secret(
        self,
        path: str,
        value: str,
        *,
        description: str | None = None,
        expires_in: timedelta | None = None,
        actor: Actor = DEFAULT_ACTOR,
    ) -> SecretInfo:
        """Create the key (refused when it exists). Raises: SecretExists, InvalidInput."""
        if description is not None or expires_in is not None:
            raise errors.InvalidInput(
                f"--description and --expires-in are kept at secret/ only, not at {self.kv.mount}"
            )
        if not self.versioned and self._exists(path):
            raise errors.SecretExists()
        try:
            number = self.kv.write(path, {"value": value}, 0 if self.versioned else None)
        except errors.VersionConflict:
            raise errors.SecretExists() from None
        now = datetime.now(UTC)
        return SecretInfo(0, path, None, actor.user_id, now, now, number, None)

    def get_secret(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> str:
        """The current value. Raises: SecretNotFound."""
        from strongroom.core.versions import as_text  # the core: local mode only

        return as_text(self.kv.read(path, None)[0])

    def get_secret_version(self, path: str, version: int, *, actor: Actor = DEFAULT_ACTOR) -> str:
        """One version's value. Raises: SecretNotFound, VersionNotFound, InvalidInput (v1)."""
        self._versions_only("--version")
        from strongroom.core.versions import as_text

        return as_text(self.kv.read(path, version)[0])

    def update_secret(self, path: str, value: str, *, actor: Actor = DEFAULT_ACTOR) -> int:
        """A new version of an existing key. Raises: SecretNotFound."""
        if not self.versioned:
            if not self._exists(path):
                raise errors.SecretNotFound()
            return self.kv.write(path, {"value": value}, None)
        return self._write_next(path, {"value": value}, self.kv.meta(path).version)

    def _write_next(self, path: str, data: dict[str, Any], current: int) -> int:
        """Write the version after `current` (check-and-set: works on `cas_required` mounts,
        and a concurrent writer gets a conflict rather than a lost update)."""
        try:
            return self.kv.write(path, data, current)
        except errors.VersionConflict:
            raise errors.Conflict(f"{path} changed meanwhile; try again") from None

    def delete_secret(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> None:
        """Delete the key and every version. Raises: SecretNotFound."""
        if self.versioned:
            self.kv.meta(path)  # SecretNotFound as at secret/ (KV deletes answer 204 anyway)
        elif not self._exists(path):
            raise errors.SecretNotFound()
        self.kv.delete(path)

    def list_versions(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> list[VersionInfo]:
        """Versions, newest first. Raises: SecretNotFound, InvalidInput (v1)."""
        self._versions_only("versions")
        return self.kv.meta(path).versions

    def rollback_secret(self, path: str, version: int, *, actor: Actor = DEFAULT_ACTOR) -> int:
        """`version`'s value as a new version. Raises: VersionNotFound, InvalidInput (v1)."""
        self._versions_only("rollback")
        data = self.kv.read(path, version)[0]
        return self._write_next(path, data, self.kv.meta(path).version)

    def _keys(self, folder: str) -> list[str]:
        try:
            found = self.kv.folder(folder)
        except errors.NotFound:
            return []
        keys: list[str] = []
        for name in found:
            if name.endswith("/"):
                keys += self._keys(folder + name)
            else:
                keys.append(folder + name)
        return keys

    def list_secrets(self, prefix: str = "", *, actor: Actor = DEFAULT_ACTOR) -> list[SecretInfo]:
        """Keys starting with `prefix` (literal), by path; v1 mounts give paths only."""
        folder = prefix[: prefix.rfind("/") + 1]
        paths = sorted(p for p in self._keys(folder) if p.startswith(prefix))
        found: list[SecretInfo] = []
        for path in paths:
            if not self.versioned:
                found.append(SecretInfo(0, path, None, 0, EPOCH, EPOCH, 0, None))
                continue
            try:
                meta = self.kv.meta(path)
            except errors.NotFound:  # deleted meanwhile
                continue
            found.append(
                SecretInfo(0, path, None, 0, meta.created_at, meta.updated_at, meta.version, None)
            )
        return found
