"""Mount paths and the names one key takes inside a mount: where it is stored, what its
audit entries record, and which path a policy names for it. Pure functions, no I/O.

- A mount path is `[a-zA-Z0-9_-]+(/[a-zA-Z0-9_-]+)*/`, at most 200 characters, not under
  `sys/`, `auth/`, `identity/` or `cubbyhole/`. Callers may leave out the slashes around it.
- `secret/` (id 1) is the design document's namespace: its keys are stored, audited and named
  by policies exactly as before mounts existed, so existing ciphertexts (whose AAD binds the
  stored path), audit entries and policy rules keep their meaning.
- A key of another mount is stored as `<mount id>:<key>`: ":" never occurs in a key, so no two
  mounts' keys collide, and the mount is bound into the ciphertext's AAD (a row moved between
  mounts fails to decrypt). The id, not the path, is used, so `move` keeps every ciphertext.
- Audit entries of another mount record `<mount path without its slash>:<key>`
  (`team:app/db`); policies name Vault's paths (`team/data/app/db` for KV v2,
  `team/app/db` for KV v1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from strongroom import errors
from strongroom.models import MAX_PATH_LENGTH, validate_path

__all__ = [
    "DEFAULT_MOUNT",
    "DEFAULT_MOUNT_ID",
    "MAX_MOUNT_PATH",
    "RESERVED",
    "SECRET",
    "MountRef",
    "audit_path",
    "mount_path",
    "policy_path",
    "storage_path",
    "storage_prefix",
]

DEFAULT_MOUNT = "secret/"
DEFAULT_MOUNT_ID = 1
MAX_MOUNT_PATH = 200
RESERVED = ("sys/", "auth/", "identity/", "cubbyhole/")
_MOUNT = re.compile(r"[a-zA-Z0-9_-]+(/[a-zA-Z0-9_-]+)*/")


@dataclass(frozen=True, slots=True)
class MountRef:
    """What an operation needs of the mount it runs in: id, path, KV version, and the lease
    duration its KV v1 reads report (seconds, 0: the default)."""

    id: int
    path: str
    version: int
    lease_ttl: int = 0
    #: The mount's accessor (`kv_...`): what names it where its path must not show (metrics).
    accessor: str = ""


SECRET = MountRef(DEFAULT_MOUNT_ID, DEFAULT_MOUNT, 2)  # labelled `secret/`: public anyway


def mount_path(name: object) -> str:
    """The canonical form of a mount path (`team` -> `team/`).

    Raises:
        InvalidInput: not a valid mount path, or a reserved one.
    """
    if not isinstance(name, str):
        raise errors.InvalidInput("mount path must be a string")
    path = name.strip("/") + "/"
    if len(path) > MAX_MOUNT_PATH or not _MOUNT.fullmatch(path):
        raise errors.InvalidInput(
            "invalid mount path: segments of letters, digits, '_' and '-' joined by '/'"
            f" (at most {MAX_MOUNT_PATH} characters)"
        )
    if path.startswith(RESERVED):
        raise errors.InvalidInput(f"cannot mount under reserved path {path.split('/')[0]}/")
    return path


def storage_path(mount: MountRef, key: str) -> str:
    """The path a key of `mount` is stored under (validated).

    Raises:
        InvalidInput: bad key, or too long once the mount is added.
    """
    validate_path(key)
    if mount.id == DEFAULT_MOUNT_ID:
        return key
    stored = f"{mount.id}:{key}"
    if len(stored) > MAX_PATH_LENGTH:
        raise errors.InvalidInput(f"invalid path: longer than {MAX_PATH_LENGTH} characters")
    return stored


def storage_prefix(mount: MountRef) -> str:
    """What every stored path of `mount` starts with."""
    return "" if mount.id == DEFAULT_MOUNT_ID else f"{mount.id}:"


def audit_path(mount: str, key: str | None) -> str | None:
    """The path an audit entry records for `key` (or a folder) of the mount at `mount`."""
    if mount == DEFAULT_MOUNT:
        return key
    return f"{mount.rstrip('/')}:{key or ''}"


def policy_path(mount: MountRef, kind: str, key: str) -> str:
    """The path a policy rule must match for `kind` (`data`, `metadata`, `delete`,
    `undelete`, `destroy`, `subkeys`) of `key` in `mount`."""
    if mount.id == DEFAULT_MOUNT_ID:
        return key
    if mount.version == 1:
        return f"{mount.path}{key}"
    return f"{mount.path}{kind}/{key}"
