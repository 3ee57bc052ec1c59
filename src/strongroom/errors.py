"""The one exception tree of Strongroom; adapters map it to HTTP and exit codes exactly once.

```
StrongroomError                       internal             500  exit 1
├── InvalidInput (ValueError)         invalid_input        400  exit 2
│   ├── PayloadTooLarge               payload_too_large    413  exit 2
│   └── UnsupportedMediaType          unsupported_media_type 415 exit 2
├── AuthenticationFailed              unauthenticated      401  exit 1
│   └── SecondFactorFailed            second_factor_failed 401  exit 1
├── PermissionDenied                  permission_denied    403  exit 1
├── InvalidMasterKey                  invalid_master_key   400  exit 1
├── VaultLocked                       vault_locked         423  exit 1
├── NotFound (LookupError)            not_found            404  exit 1
│   ├── SecretNotFound                secret_not_found     404  exit 1
│   │   └── SecretExpired             secret_expired       404  exit 1
│   ├── VersionNotFound               version_not_found    404  exit 1
│   │   └── VersionDeleted            version_deleted      404  exit 1
│   ├── UserNotFound                  user_not_found       404  exit 1
│   └── MountNotFound                 mount_not_found      404  exit 1
├── Conflict                          conflict             409  exit 1
│   ├── SecretExists                  secret_exists        409  exit 1
│   ├── VersionConflict               version_conflict     409  exit 1
│   └── MountExists                   mount_exists         409  exit 1
├── TooManyAttempts                   rate_limited         429  exit 1
├── IntegrityError                    integrity_error      500  exit 1
└── StorageUnavailable                storage_unavailable  503  exit 1
```

Messages are one line, start lower-case and never contain a secret value, a key or SQL.
This module imports nothing but the standard library.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "Conflict",
    "IntegrityError",
    "InvalidInput",
    "InvalidMasterKey",
    "MountChanged",
    "MountExists",
    "MountNotFound",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "SecondFactorFailed",
    "SecretExists",
    "SecretExpired",
    "SecretNotFound",
    "StorageUnavailable",
    "StrongroomError",
    "TooManyAttempts",
    "UnsupportedMediaType",
    "UserNotFound",
    "VaultLocked",
    "VersionConflict",
    "VersionDeleted",
    "VersionNotFound",
    "error_for_code",
]


class StrongroomError(Exception):
    """Root of every error Strongroom raises on purpose."""

    code = "internal"
    http_status = 500
    exit_code = 1
    default_message = "internal error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        """The one-line, secret-free message."""
        return str(self.args[0]) if self.args else self.default_message


class InvalidInput(StrongroomError, ValueError):
    """A caller passed a value the vault will not accept (path, version, length, duration...)."""

    code = "invalid_input"
    http_status = 400
    exit_code = 2
    default_message = "invalid input"


class PayloadTooLarge(InvalidInput):
    """A value or request body exceeds the configured limit."""

    code = "payload_too_large"
    http_status = 413
    default_message = "payload too large"


class UnsupportedMediaType(InvalidInput):
    """A request body that is not JSON."""

    code = "unsupported_media_type"
    http_status = 415
    default_message = "request body must be JSON (Content-Type: application/json)"


class AuthenticationFailed(StrongroomError):
    """No, a malformed, an expired or a wrongly signed credential."""

    code = "unauthenticated"
    http_status = 401
    default_message = "authentication failed"


class SecondFactorFailed(AuthenticationFailed):
    """The password matched, but the user's TOTP code is missing, wrong or already used."""

    code = "second_factor_failed"
    default_message = "invalid TOTP code"


class PermissionDenied(StrongroomError):
    """The caller is authenticated but may not do this."""

    code = "permission_denied"
    http_status = 403
    default_message = "permission denied"


class InvalidMasterKey(StrongroomError):
    """The master key does not open this vault's root key."""

    code = "invalid_master_key"
    http_status = 400
    default_message = "invalid master key"


class VaultLocked(StrongroomError):
    """The vault holds no keys; unlock it first."""

    code = "vault_locked"
    http_status = 423
    default_message = "vault is locked"


class NotFound(StrongroomError, LookupError):
    """Something named by the caller does not exist."""

    code = "not_found"
    http_status = 404
    default_message = "not found"


class SecretNotFound(NotFound):
    """No secret at that path."""

    code = "secret_not_found"
    default_message = "secret not found"


class MountNotFound(NotFound):
    """No secrets engine is mounted at that path."""

    code = "mount_not_found"
    default_message = "no secrets engine is mounted at that path"


class MountChanged(MountNotFound):
    """The mount a read was routed to (`Mounts.find_cached`, a copy of the mount table) is no
    longer what is mounted at its path, or no longer that KV version: route it again."""

    code = "mount_changed"
    default_message = "the mount at that path changed: route the request again"


class SecretExpired(SecretNotFound):
    """The secret exists but its TTL has passed; it reads as not found."""

    code = "secret_expired"
    default_message = "secret expired"


class VersionNotFound(NotFound):
    """The secret has no such version (or it was deleted or destroyed)."""

    code = "version_not_found"
    default_message = "version not found"


class VersionDeleted(VersionNotFound):
    """The version exists but is soft-deleted or destroyed (KV v2).

    `details` carries the version's metadata (a `core.kv.KVVersionMeta`), which the
    Vault-compatible API returns with its 404, as Vault does.
    """

    code = "version_deleted"
    default_message = "version deleted"

    def __init__(self, message: str | None = None, details: object = None) -> None:
        super().__init__(message)
        self.details = details


class UserNotFound(NotFound):
    """No built-in user with that id or name."""

    code = "user_not_found"
    default_message = "user not found"


class Conflict(StrongroomError):
    """The request conflicts with the stored state."""

    code = "conflict"
    http_status = 409
    default_message = "conflict"


class SecretExists(Conflict):
    """A secret already exists at that path."""

    code = "secret_exists"
    default_message = "secret already exists"


class MountExists(Conflict):
    """A secrets engine is already mounted at (or above, or below) that path."""

    code = "mount_exists"
    default_message = "path is already in use"


class VersionConflict(Conflict):
    """A check-and-set write named a version that is not the current one."""

    code = "version_conflict"
    default_message = "check-and-set parameter did not match the current version"


class TooManyAttempts(StrongroomError):
    """Too many failed attempts; retry after `retry_after` seconds."""

    code = "rate_limited"
    http_status = 429
    default_message = "too many failed attempts"

    def __init__(self, message: str | None = None, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IntegrityError(StrongroomError):
    """Stored data failed authentication: tampered, swapped, truncated or unknown key term."""

    code = "integrity_error"
    http_status = 500
    default_message = "integrity check failed: stored data was modified or is corrupt"


class StorageUnavailable(StrongroomError):
    """The database cannot be reached or refused the write; nothing was changed.

    `cause` names what went wrong in words ("disk full", "database connection lost"), never the
    driver's exception; the message is "storage unavailable: <cause>".
    """

    code = "storage_unavailable"
    http_status = 503
    default_message = "storage unavailable"

    def __init__(self, message: str | None = None, *, cause: str | None = None) -> None:
        super().__init__(message or (f"storage unavailable: {cause}" if cause else None))
        self.cause = cause


def _all_subclasses(cls: type[StrongroomError]) -> list[type[StrongroomError]]:
    found: list[type[StrongroomError]] = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


def error_for_code(code: str) -> type[StrongroomError]:
    """The class whose `code` is `code` (StrongroomError when unknown); for the client."""
    for cls in _all_subclasses(StrongroomError):
        if cls.code == code:
            return cls
    return StrongroomError
