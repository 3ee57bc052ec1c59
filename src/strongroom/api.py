"""VaultAPI: the method set both `core.Vault` (local) and `client.Client` (HTTP) implement.

The CLI is written once against this protocol; a typed assignment in the tests checks that both
implementations satisfy it. Every audited operation takes one `actor` (`models.Actor`: user id,
client IP or `"cli"`, request id), which goes into the audit entry; `models.DEFAULT_ACTOR` when
the caller names nobody.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from strongroom.models import (
    DEFAULT_ACTOR,
    Actor,
    AuditAnchor,
    AuditEntry,
    AuditVerification,
    SecretInfo,
    VaultHealth,
    VaultStatus,
    VersionInfo,
)

__all__ = ["Progress", "RotationResult", "VaultAPI"]

#: Called with (done, total) while long work runs (rotation, cleanup); total may grow.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class RotationResult:
    """What a rotation did: the data-key term now current and how many versions it re-encrypted."""

    term: int
    reencrypted: int
    secrets: int


class VaultAPI(Protocol):
    """The operations of the vault, independent of where the vault runs."""

    @property
    def is_locked(self) -> bool:
        """True when the vault holds no keys."""
        ...

    def unlock(self, master_key: str, *, actor: Actor = DEFAULT_ACTOR) -> None:
        """Unlock (initialising an empty vault on first use)."""
        ...

    def lock(self, *, actor: Actor = DEFAULT_ACTOR) -> None:
        """Drop every key from memory."""
        ...

    def status(self) -> VaultStatus:
        """Lock state and keyring summary; not activity."""
        ...

    def health(self) -> VaultHealth:
        """The design document's health body; not activity."""
        ...

    def create_secret(
        self,
        path: str,
        value: str,
        *,
        description: str | None = None,
        expires_in: timedelta | None = None,
        actor: Actor = DEFAULT_ACTOR,
    ) -> SecretInfo:
        """Create a new secret at `path` (version 1)."""
        ...

    def get_secret(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> str:
        """Return the current value."""
        ...

    def get_secret_version(
        self,
        path: str,
        version: int,
        *,
        actor: Actor = DEFAULT_ACTOR,
    ) -> str:
        """Return the value of one version."""
        ...

    def update_secret(
        self,
        path: str,
        value: str,
        *,
        actor: Actor = DEFAULT_ACTOR,
    ) -> int:
        """Store a new version; return its number."""
        ...

    def delete_secret(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> None:
        """Delete the secret and all its versions (its audit history stays)."""
        ...

    def list_secrets(self, prefix: str = "", *, actor: Actor = DEFAULT_ACTOR) -> list[SecretInfo]:
        """Secrets whose path starts with `prefix` (literal, case-sensitive), by path."""
        ...

    def list_versions(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> list[VersionInfo]:
        """Versions of a secret, newest first."""
        ...

    def rollback_secret(
        self,
        path: str,
        version: int,
        *,
        actor: Actor = DEFAULT_ACTOR,
    ) -> int:
        """Store a new version whose value is `version`'s; return the new number."""
        ...

    def rotate_secret(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> RotationResult:
        """Re-encrypt every version of one secret under the newest data-key term."""
        ...

    def rotate_all(
        self,
        new_master_key: str,
        *,
        actor: Actor = DEFAULT_ACTOR,
        progress: Progress | None = None,
    ) -> RotationResult:
        """Re-wrap the root key under a new master key and re-encrypt every version."""
        ...

    def cleanup_expired(
        self,
        *,
        actor: Actor = DEFAULT_ACTOR,
        progress: Progress | None = None,
    ) -> int:
        """Remove expired secrets; return how many."""
        ...

    def generate_token(self, length: int = 32, *, actor: Actor = DEFAULT_ACTOR) -> str:
        """A URL-safe random string from `length` random bytes (1..1024)."""
        ...

    def audit_logs(
        self,
        *,
        path: str | None = None,
        user_id: int | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[AuditEntry]:
        """Audit entries matching every given filter, newest first."""
        ...

    def verify_audit(self, anchor: AuditAnchor | None = None) -> AuditVerification:
        """Check the audit hash chain end to end (and against an exported `anchor`)."""
        ...

    def export_audit(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[Mapping[str, object]]:
        """Every entry in [`since`, `until`), oldest first, with its MAC; streamed."""
        ...

    def close(self) -> None:
        """Release connections and drop keys."""
        ...
