"""Rows that cross the storage seam. Storage is untrusted and dumb: it never sees plaintext or keys.

Values arrive as opaque envelopes (text) made by the crypto layer; storage only persists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from strongroom.records import constructor

__all__ = [
    "AppRoleRow",
    "AppSecretRow",
    "AuditRow",
    "KVConfigRow",
    "KeysRow",
    "MountRow",
    "NewAudit",
    "PolicyRow",
    "SecretRow",
    "TermRow",
    "TokenRow",
    "UserRow",
    "VersionRow",
    "new_audit_entry",
    "new_secret_row",
    "new_version_row",
]


@dataclass(frozen=True, slots=True)
class KeysRow:
    """The single `vault_keys` row: salt, KDF parameters, wrapped root key, rotation state."""

    vault_id: str
    salt: bytes
    kdf_params: dict[str, Any]
    wrapped_root: str
    rotation: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TermRow:
    """One data key, wrapped under the root key, with its shared encryption counter."""

    term: int
    wrapped_key: str
    created_at: datetime
    encryptions: int = 0


@dataclass(frozen=True, slots=True)
class SecretRow:
    """A `vault_secrets` row."""

    id: int
    path: str
    description: str | None
    created_by: int
    created_at: datetime
    updated_at: datetime
    version: int
    expires_at: datetime | None
    metadata: dict[str, str] = field(default_factory=dict)
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0
    mount_id: int = 1


@dataclass(frozen=True, slots=True)
class VersionRow:
    """A `vault_secret_versions` row; `value` is an envelope, None once destroyed."""

    secret_id: int
    version: int
    value: str | None
    key_term: int | None
    updated_by: int
    updated_at: datetime
    deleted_at: datetime | None = None
    destroyed: bool = False


@dataclass(frozen=True, slots=True)
class NewAudit:
    """An audit entry about to be written (the MAC is computed over these fields and the id)."""

    timestamp: datetime
    secret_id: int | None
    path: str | None
    user_id: int
    action: str
    ip_address: str
    success: bool
    error: str | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class AuditRow:
    """A stored audit entry with its id and chain MAC (None for entries written while locked)."""

    id: int
    timestamp: datetime
    secret_id: int | None
    path: str | None
    user_id: int
    action: str
    ip_address: str
    success: bool
    error: str | None
    request_id: str | None
    mac: str | None


@dataclass(frozen=True, slots=True)
class KVConfigRow:
    """The mount-wide KV v2 settings of one mount (columns of its `vault_mounts` row).

    `delete_version_after` is in seconds; 0 means never. `max_versions` 0 means no mount limit.
    """

    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0


@dataclass(frozen=True, slots=True)
class UserRow:
    """A built-in user (`vault_users`): an Argon2id hash, never a password."""

    id: int
    username: str
    password_hash: str
    role: str
    policies: list[str]
    disabled: bool
    created_at: datetime
    totp_seed: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyRow:
    """A named path policy (`vault_policies`); `rules` is its JSON text."""

    name: str
    rules: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MountRow:
    """A secrets engine mount (`vault_mounts`); `path` ends in `/`, `config` is a JSON object
    (`default_lease_ttl`, `max_lease_ttl`, `listing_visibility`)."""

    id: int
    path: str
    type: str
    version: int
    description: str
    config: dict[str, Any]
    uuid: str
    accessor: str
    kv: KVConfigRow = field(default_factory=KVConfigRow)
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TokenRow:
    """A recorded token (`vault_tokens`): its accessor and SHA-256 hash, never the token.

    `max_expires_at` is the latest a renewal may reach (`created_at` + the token's max TTL);
    `ttl` is the period, in seconds, a renewal without an increment extends it by.
    `parent` is the creating token's accessor: revoking it revokes this one (Vault's tree).
    """

    accessor: str
    token_hash: str
    user_id: int
    role: str
    policies: list[str]
    kind: str
    issuer: int
    created_at: datetime
    expires_at: datetime
    max_expires_at: datetime
    ttl: int
    last_used_at: datetime | None = None
    #: The accessor of the token that created this one (revoked with it); None: an orphan.
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class AppRoleRow:
    """An AppRole role (`vault_approles`); durations in seconds, 0 = none; `id` 0 until stored."""

    id: int
    name: str
    role_id: str
    policies: list[str]
    token_ttl: int
    token_max_ttl: int
    secret_id_ttl: int
    secret_id_num_uses: int
    bound_cidrs: list[str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AppSecretRow:
    """A secret id of an AppRole (`vault_approle_secrets`): its SHA-256, never the secret id.
    `uses_left` 0 means unlimited."""

    accessor: str
    role_name: str
    secret_hash: str
    created_at: datetime
    expires_at: datetime | None
    uses_left: int
    bound_cidrs: list[str]


#: `SecretRow(...)`, `VersionRow(...)` and `NewAudit(...)` built faster, for the rows every read
#: and write builds (`strongroom.records`).
new_secret_row = constructor(SecretRow)
new_version_row = constructor(VersionRow)
new_audit_entry = constructor(NewAudit)
