"""Request-field checks and the JSON shapes of responses (the design document's field names)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from strongroom import errors
from strongroom.models import AuditEntry, SecretInfo, VersionInfo, iso

#: Versions, limits and lengths are 32-bit integer columns; larger numbers are refused here.
MAX_INT = 2**31 - 1

__all__ = ["audit_json", "int_field", "secret_json", "str_field", "version_json", "when"]


def str_field(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """A string field of a JSON body (None when absent and optional).

    Raises:
        InvalidInput: missing when required, not a string, or not encodable as UTF-8.
    """
    value = body.get(name)
    if value is None:
        if required:
            raise errors.InvalidInput(f"missing field {name!r}")
        return None
    if not isinstance(value, str):
        raise errors.InvalidInput(f"field {name!r} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # JSON allows lone surrogates ("\ud800"); UTF-8 does not
        raise errors.InvalidInput(f"field {name!r} must be valid Unicode text") from exc
    return value


def int_field(raw: object, name: str, *, default: int | None = None) -> int:
    """A non-negative integer from a JSON number or a query-string digit string.

    Raises:
        InvalidInput: anything else.
    """
    if raw is None and default is not None:
        return default
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 9:
        return int(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) <= MAX_INT:
        return raw
    raise errors.InvalidInput(f"{name} must be a positive integer")


def when(moment: datetime | None) -> str | None:
    """ISO-8601 UTC, or None."""
    return iso(moment) if moment is not None else None


def secret_json(info: SecretInfo) -> dict[str, Any]:
    """A secret's listed metadata, as the design document shows it."""
    return {
        "id": info.id,
        "path": info.path,
        "description": info.description,
        "created_by": info.created_by,
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
        "version": info.version,
        "expires_at": when(info.expires_at),
    }


def version_json(v: VersionInfo) -> dict[str, Any]:
    """One version's metadata."""
    return {
        "version": v.version,
        "updated_at": iso(v.updated_at),
        "updated_by": v.updated_by,
        "deleted_at": when(v.deleted_at),
        "destroyed": v.destroyed,
    }


def audit_json(e: AuditEntry) -> dict[str, Any]:
    """One audit entry."""
    return {
        "id": e.id,
        "timestamp": iso(e.timestamp),
        "secret_id": e.secret_id,
        "path": e.path,
        "user_id": e.user_id,
        "action": e.action,
        "ip_address": e.ip_address,
        "success": e.success,
        "error": e.error,
        "request_id": e.request_id,
    }
