"""Row converters: database rows (positional or named) to the dataclasses of `storage.base`."""

from __future__ import annotations

import json
from typing import Any

from strongroom.storage.base import (
    AuditRow,
    SecretRow,
    UserRow,
    VersionRow,
    new_secret_row,
    new_version_row,
)

__all__ = ["audit_row", "secret_row", "user_row", "version_row"]


def secret_row(row: Any) -> SecretRow:
    # Positional unpacking of `vault_secrets`' columns (in table order): several times cheaper
    # than attribute access on a Row, which matters when listing thousands of secrets.
    (
        sid,
        path,
        description,
        created_by,
        created_at,
        updated_at,
        version,
        expires_at,
        meta,
        max_versions,
        cas_required,
        delete_after,
        mount_id,
    ) = row[:13]
    return new_secret_row(
        sid,
        path,
        description,
        created_by,
        created_at,
        updated_at,
        version,
        expires_at,
        json.loads(meta) if meta and meta != "{}" else {},
        max_versions,
        bool(cas_required),
        delete_after,
        mount_id,
    )


def version_row(row: Any) -> VersionRow:
    """From `vault_secret_versions`' columns after `id`, in table order (positional, as
    `secret_row`)."""
    secret_id, version, value, key_term, updated_by, updated_at, deleted_at, destroyed = row[:8]
    return new_version_row(
        secret_id, version, value, key_term, updated_by, updated_at, deleted_at, bool(destroyed)
    )


def user_row(row: Any) -> UserRow:
    return UserRow(
        row.id,
        row.username,
        row.password_hash,
        row.role,
        list(json.loads(row.policies or "[]")),
        bool(row.disabled),
        row.created_at,
        row.totp_seed,
    )


def audit_row(row: Any) -> AuditRow:
    return AuditRow(
        row.id,
        row.timestamp,
        row.secret_id,
        row.path,
        row.user_id,
        row.action,
        row.ip_address,
        bool(row.success),
        row.error,
        row.request_id,
        row.mac,
    )
