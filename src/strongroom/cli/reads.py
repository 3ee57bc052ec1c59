"""Reads the CLI composes from `api.VaultAPI` calls (the same locally and against a server)."""

from __future__ import annotations

from strongroom.api import VaultAPI
from strongroom.models import Actor

__all__ = ["current_version"]


def current_version(api: VaultAPI, path: str, actor: Actor) -> int | None:
    """The number of the current version of the secret at `path` (the newest one stored).

    `get --format json` reads this version by number, so the value and the version it prints
    belong together even if another writer adds a version meanwhile. It costs one more audited
    read (`versions`), which needs the same `read` capability as the value itself.

    Raises:
        SecretNotFound: nothing at `path` (as `get` would say).
        VaultLocked / PermissionDenied: as for any read.
    """
    found = api.list_versions(path, actor=actor)
    return max((v.version for v in found), default=None)
