"""Frozen value types shared by every layer, and the one path validator.

Nothing here does I/O or touches keys; these are the shapes that cross layer boundaries.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from strongroom import errors
from strongroom.records import constructor

#: An audit entry's MAC: hex HMAC-SHA256.
_HEX_MAC = re.compile(r"[0-9a-f]{64}")

__all__ = [
    "DEFAULT_ACTOR",
    "MAX_PATH_LENGTH",
    "SYSTEM_ACTOR",
    "Actor",
    "AuditAnchor",
    "AuditEntry",
    "AuditVerification",
    "SecretInfo",
    "VaultHealth",
    "VaultStatus",
    "VersionInfo",
    "new_actor",
    "secret_infos",
    "validate_path",
    "validate_prefix",
]

MAX_PATH_LENGTH = 500
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
#: A valid path in one match (every read's check): segments of `_SEGMENT` joined by `/`,
#: none of them `.` or `..`. What it refuses, `validate_path` explains segment by segment.
_VALID_PATH = re.compile(r"(?!\.\.?(?:/|$))[A-Za-z0-9._-]+(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._-]+)*")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks, as written into the audit entry of every operation.

    Built once per request (HTTP) or per invocation (CLI) and passed down unchanged.

    Attributes:
        user_id: the audited user id (the token's `sub`, or `--user-id` for the CLI).
        ip: the client IP address, or ``"cli"`` for local use.
        request_id: the request id, echoed in the audit entry (None for local calls).
        auth_method: how the caller authenticated (``"jwt"``, ``"login"``...), for later use;
            not written to the audit entry today.
        display_name: a human-readable name, for later use; not written to the audit entry.
    """

    user_id: int
    ip: str = "cli"
    request_id: str | None = None
    auth_method: str | None = None
    display_name: str | None = None


#: The actor of a library call that names nobody (`vault.get_secret(path)`): user 1 from the
#: command line, as the design document's library example attributes its calls. This is the
#: only place that default is written; docs/index.md documents it.
DEFAULT_ACTOR = Actor(user_id=1, ip="cli")

#: The vault itself, for entries no caller asked for (auto-lock after inactivity).
SYSTEM_ACTOR = Actor(user_id=0, ip="system")

#: `Actor(...)` built faster, for every request (`strongroom.records`).
new_actor = constructor(Actor)


def validate_path(path: object) -> str:
    """Return `path` unchanged if it is a valid secret path, else raise.

    A path is segments of `[A-Za-z0-9._-]` joined by `/`: no empty, `.` or `..` segment, no
    leading or trailing slash, at most 500 characters. There is exactly one spelling of each
    path, so the path bound into a ciphertext's AAD is the one every front-end uses.

    Raises:
        InvalidInput: the path is not a string or breaks a rule above.
    """
    if not isinstance(path, str) or not path:
        raise errors.InvalidInput("invalid path: must be a non-empty string")
    if len(path) <= MAX_PATH_LENGTH and _VALID_PATH.fullmatch(path):
        return path
    if len(path) > MAX_PATH_LENGTH:
        raise errors.InvalidInput(f"invalid path: longer than {MAX_PATH_LENGTH} characters")
    for segment in path.split("/"):
        if not segment:
            raise errors.InvalidInput("invalid path: empty segment (leading, trailing or '//')")
        if segment in (".", ".."):
            raise errors.InvalidInput("invalid path: '.' and '..' segments are not allowed")
        if not _SEGMENT.fullmatch(segment):
            raise errors.InvalidInput(
                "invalid path: segments may contain only letters, digits, '.', '_' and '-'"
            )
    return path


def validate_prefix(prefix: object) -> str:
    """Return a list prefix: any string up to 500 characters (matched literally, case-sensitive).

    Raises:
        InvalidInput: not a string, too long, or containing a NUL or control character.
    """
    if not isinstance(prefix, str):
        raise errors.InvalidInput("invalid prefix: must be a string")
    if len(prefix) > MAX_PATH_LENGTH:
        raise errors.InvalidInput(f"invalid prefix: longer than {MAX_PATH_LENGTH} characters")
    if any(ord(ch) < 32 for ch in prefix):
        raise errors.InvalidInput("invalid prefix: control characters are not allowed")
    return prefix


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A secret's metadata as listed (never its value)."""

    id: int
    path: str
    description: str | None
    created_by: int
    created_at: datetime
    updated_at: datetime
    version: int
    expires_at: datetime | None
    custom_metadata: dict[str, str] = field(default_factory=dict)
    max_versions: int = 0
    cas_required: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The design document's listing shape (times ISO-8601 UTC with `Z`)."""
        return {
            "id": self.id,
            "path": self.path,
            "description": self.description,
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "version": self.version,
            "expires_at": iso_or_none(self.expires_at),
        }


#: The slot of each field of `SecretInfo`, in field order: what `secret_infos` sets.
_SECRET_INFO_SLOTS = [getattr(SecretInfo, f.name) for f in fields(SecretInfo)]


def secret_infos(columns: Sequence[Sequence[Any]]) -> list[SecretInfo]:
    """`SecretInfo` objects from columns of values: one sequence per field, in field order,
    all of one length (`[SecretInfo(*row) for row in zip(*columns)]`, the same objects).

    Built a field at a time through the slots, which a frozen dataclass's `__init__` does a
    value at a time with `object.__setattr__` (1.7 us per object here: most of the cost of
    listing a thousand secrets, docs/decisions.md). Every field is given, so no default
    applies, and `SecretInfo` has no `__post_init__` to skip (a test holds both).

    Raises:
        ValueError: not one column per field, or columns of different lengths.
    """
    if len(columns) != len(_SECRET_INFO_SLOTS):
        raise ValueError(f"expected {len(_SECRET_INFO_SLOTS)} columns, got {len(columns)}")
    count = len(columns[0])
    if any(len(column) != count for column in columns):
        raise ValueError("columns of different lengths")
    new = object.__new__
    infos = [new(SecretInfo) for _ in range(count)]
    for slot, column in zip(_SECRET_INFO_SLOTS, columns, strict=True):
        deque(map(slot.__set__, infos, column), maxlen=0)  # (consumes the map, keeps nothing)
    return infos


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One version of a secret, newest first in listings."""

    version: int
    updated_at: datetime
    updated_by: int
    deleted_at: datetime | None = None
    destroyed: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON shape of one version's metadata."""
        return {
            "version": self.version,
            "updated_at": iso(self.updated_at),
            "updated_by": self.updated_by,
            "deleted_at": iso_or_none(self.deleted_at),
            "destroyed": self.destroyed,
        }


@dataclass(frozen=True, slots=True)
class VaultStatus:
    """What `status()` reports; reading it is not activity."""

    locked: bool
    initialized: bool
    vault_id: str | None
    terms: int
    current_term: int | None


@dataclass(frozen=True, slots=True)
class VaultHealth:
    """The design document's `/health` body."""

    locked: bool
    last_access: datetime | None
    auto_lock: bool
    audit: bool

    def as_dict(self) -> dict[str, Any]:
        """The documented JSON shape (times as ISO-8601 UTC with `Z`)."""
        return {
            "locked": self.locked,
            "last_access": iso(self.last_access) if self.last_access else None,
            "auto_lock": self.auto_lock,
            "audit": self.audit,
        }


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit entry. It never carries a secret value, a key or a token."""

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

    def as_dict(self) -> dict[str, Any]:
        """JSON shape of one entry (entries never hold a value, key or token)."""
        return {
            "id": self.id,
            "timestamp": iso(self.timestamp),
            "secret_id": self.secret_id,
            "path": self.path,
            "user_id": self.user_id,
            "action": self.action,
            "ip_address": self.ip_address,
            "success": self.success,
            "error": self.error,
            "request_id": self.request_id,
        }


@dataclass(frozen=True, slots=True)
class AuditAnchor:
    """A point of the audit chain kept outside the vault (`vaultctl audit export` writes the
    last exported entry's id and MAC): verifying against it detects the deletion of every
    entry from that one on, which the chain alone cannot see.

    Raises:
        InvalidInput: an id that is not a positive integer, or a MAC that is not 64 hex digits.
    """

    id: int
    mac: str

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id < 1:
            raise errors.InvalidInput("an audit anchor's id must be a positive integer")
        if not isinstance(self.mac, str) or not _HEX_MAC.fullmatch(self.mac):
            raise errors.InvalidInput("an audit anchor's mac must be 64 hexadecimal digits")


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """Result of verifying the audit hash chain."""

    ok: bool
    entries: int
    first_bad_id: int | None
    unchained: int = 0
    reason: str | None = None


def iso(moment: datetime) -> str:
    """Format an aware datetime as ISO-8601 UTC with a `Z` suffix, seconds precision."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_or_none(moment: datetime | None) -> str | None:
    """`iso(moment)`, or None."""
    return iso(moment) if moment is not None else None
