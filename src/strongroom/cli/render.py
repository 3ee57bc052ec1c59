"""Output of `vaultctl`: the design document's text formats and the stable `--format json` shapes.

Text formats are exactly the document's (`Path: ...`, `Found N secret(s):` blocks, audit lines
`✅ <time> - User ID <n> - <action> - <ip>`); times are ISO-8601 UTC with `Z`, seconds precision.
JSON keys never change meaning between releases; times there use the same format.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from strongroom.models import (
    AuditEntry,
    AuditVerification,
    SecretInfo,
    VaultStatus,
    VersionInfo,
    iso_or_none,
)

__all__ = [
    "emit",
    "emit_json",
    "iso",
    "render_audit",
    "render_list",
    "render_status",
    "render_verification",
    "render_versions",
]


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 UTC with `Z`, or None."""
    return iso_or_none(moment)


def emit_json(data: Any) -> None:
    """Print one JSON document (sorted keys, UTF-8)."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def emit(fmt: str, text: str | None, data: dict[str, Any], *, quiet: bool = False) -> None:
    """Print `text` (unless quiet or None) or `data` as JSON, according to `fmt`."""
    if fmt == "json":
        emit_json(data)
    elif text is not None and not quiet:
        click.echo(text)


def render_list(secrets: list[SecretInfo]) -> str:
    """`Found N secret(s):` followed by one block per secret."""
    lines = [f"Found {len(secrets)} secret(s):"]
    for s in secrets:
        lines += ["", f"Path: {s.path}"]
        if s.description:
            lines.append(f"  Description: {s.description}")
        lines += [
            f"  Version: {s.version}",
            f"  Created: {iso(s.created_at)}",
            f"  Updated: {iso(s.updated_at)}",
        ]
        if s.expires_at is not None:
            lines.append(f"  Expires: {iso(s.expires_at)}")
    return "\n".join(lines)


def render_versions(versions: list[VersionInfo]) -> str:
    """`Found N version(s):` followed by one block per version, newest first."""
    lines = [f"Found {len(versions)} version(s):"]
    for v in versions:
        lines += [
            "",
            f"Version: {v.version}",
            f"  Updated: {iso(v.updated_at)}",
            f"  Updated By: User ID {v.updated_by}",
        ]
        if v.deleted_at is not None:
            lines.append(f"  Deleted: {iso(v.deleted_at)}")
        if v.destroyed:
            lines.append("  Destroyed: yes")
    return "\n".join(lines)


def render_audit(entries: list[AuditEntry], *, with_path: bool) -> str:
    """`Found N audit log(s):` and one `✅/❌ time - User ID n - action - ip` line per entry.

    Without a `--path` filter each line also names the entry's path, when it has one.
    """
    lines = [f"Found {len(entries)} audit log(s):", ""]
    for e in entries:
        line = (
            f"{'✅' if e.success else '❌'} {iso(e.timestamp)} - User ID {e.user_id} - "
            f"{e.action} - {e.ip_address}"
        )
        if with_path and e.path:
            line += f" - {e.path}"
        lines.append(line)
    return "\n".join(lines if entries else lines[:1])


def render_status(status: VaultStatus, where: str) -> str:
    """Lock and initialisation state, and where the vault lives."""
    lines = [
        f"Vault status: {'locked' if status.locked else 'unlocked'}",
        f"Initialized: {'yes' if status.initialized else 'no'}",
        where,
    ]
    if not status.locked and status.current_term is not None:
        lines.append(f"Key terms: {status.terms} (current {status.current_term})")
    return "\n".join(lines)


def render_verification(result: AuditVerification) -> str:
    """`chain intact: N entries`, or the first entry that breaks the chain."""
    if result.ok:
        text = f"chain intact: {result.entries} entries"
        if result.unchained:
            text += f" ({result.unchained} unchained entries written while locked)"
        return text
    return (
        f"chain broken at entry {result.first_bad_id}: "
        f"{result.reason or 'entry changed, removed or inserted'}"
    )
