"""Vault's wire shapes for the `/v1/` API: the response envelope, times, durations, and the JSON
form of the core's KV v2 types (`core.kv_types`).

Pure functions, no I/O. Field names and formats follow Vault/OpenBao byte for byte where a
client could notice (RFC 3339 times with trailing zeros trimmed, Go duration strings,
`custom_metadata` null when empty, `deletion_time` "" when unset).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from strongroom.core.kv_types import (
    KVConfig,
    KVMetadata,
    KVVersionMeta,
    KVVersionState,
    format_go_duration,
)
from strongroom.core.mounts import MountRow

__all__ = [
    "config_json",
    "envelope",
    "metadata_json",
    "mount_json",
    "rfc3339",
    "tune_json",
    "version_meta_json",
]


def rfc3339(moment: datetime | None) -> str:
    """Go's RFC 3339 with nanoseconds as Vault prints it (trailing zeros trimmed); "" for None."""
    if moment is None:
        return ""
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    # isoformat: `YYYY-MM-DDTHH:MM:SS`, `.ffffff` unless the microseconds are 0, then `+00:00`
    # (strftime cost three times as much, on every timestamp of every KV response)
    text = utc.isoformat()[:-6]
    if utc.microsecond:
        text = text.rstrip("0")
    return text + "Z"


def envelope(
    data: Any, *, request_id: str | None = None, mount_type: str | None = "kv", auth: Any = None
) -> dict[str, Any]:
    """Vault's response envelope around `data`."""
    body: dict[str, Any] = {
        "request_id": request_id or str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": auth,
    }
    if mount_type is not None:
        body["mount_type"] = mount_type
    return body


def version_meta_json(meta: KVVersionMeta) -> dict[str, Any]:
    """The `metadata` of a `data/` read or the `data` of a `data/` write."""
    return {
        "created_time": rfc3339(meta.created_at),
        "custom_metadata": dict(meta.custom_metadata) or None,
        "deletion_time": rfc3339(meta.deletion_time),
        "destroyed": meta.destroyed,
        "version": meta.version,
    }


def _state_json(state: KVVersionState) -> dict[str, Any]:
    return {
        "created_time": rfc3339(state.created_at),
        "deletion_time": rfc3339(state.deletion_time),
        "destroyed": state.destroyed,
    }


def metadata_json(meta: KVMetadata) -> dict[str, Any]:
    """The `data` of a `metadata/` read."""
    return {
        "cas_required": meta.cas_required,
        "created_time": rfc3339(meta.created_at),
        "current_version": meta.current_version,
        "custom_metadata": dict(meta.custom_metadata) or None,
        "delete_version_after": format_go_duration(meta.delete_version_after),
        "max_versions": meta.max_versions,
        "oldest_version": meta.oldest_version,
        "updated_time": rfc3339(meta.updated_at),
        "versions": {str(n): _state_json(s) for n, s in sorted(meta.versions.items())},
    }


def config_json(config: KVConfig) -> dict[str, Any]:
    """The `data` of a `config` read."""
    return {
        "cas_required": config.cas_required,
        "delete_version_after": format_go_duration(config.delete_version_after),
        "max_versions": config.max_versions,
    }


def _options(version: int) -> dict[str, str] | None:
    """A mount's options as Vault shows them (see `core.mounts.effective_version`)."""
    return None if version < 0 else {"version": str(version)} if version else {}


def mount_json(mount: MountRow, *, with_path: bool) -> dict[str, Any]:
    """A mount as `sys/mounts` and `sys/internal/ui/mounts/...` describe it."""
    config: dict[str, Any] = {
        "default_lease_ttl": mount.config.get("default_lease_ttl", 0),
        "force_no_cache": mount.config.get("force_no_cache", False),
        "max_lease_ttl": mount.config.get("max_lease_ttl", 0),
    }
    if mount.config.get("listing_visibility"):
        config["listing_visibility"] = mount.config["listing_visibility"]
    body: dict[str, Any] = {
        "accessor": mount.accessor,
        "config": config,
        "deprecation_status": "supported",
        "description": mount.description,
        "external_entropy_access": False,
        "local": False,
        "options": _options(mount.version),
        "plugin_version": "",
        "running_plugin_version": "",
        "running_sha256": "",
        "seal_wrap": False,
        "type": mount.type,
        "uuid": mount.uuid,
    }
    if with_path:
        body["path"] = mount.path
    return body


#: What `sys/mounts/<path>/tune` reports for a TTL the mount leaves unset (Vault's 768h).
SYSTEM_DEFAULT_TTL = 768 * 3600


def tune_json(mount: MountRow) -> dict[str, Any]:
    """A mount's tunable settings as `GET sys/mounts/<path>/tune` reports them."""
    body: dict[str, Any] = {
        "default_lease_ttl": mount.config.get("default_lease_ttl") or SYSTEM_DEFAULT_TTL,
        "description": mount.description,
        "force_no_cache": mount.config.get("force_no_cache", False),
        "max_lease_ttl": mount.config.get("max_lease_ttl") or SYSTEM_DEFAULT_TTL,
    }
    if mount.config.get("listing_visibility"):
        body["listing_visibility"] = mount.config["listing_visibility"]
    if mount.version > 0:
        body["options"] = {"version": str(mount.version)}
    return body
