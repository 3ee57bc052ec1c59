"""`vaultctl audit`: read the audit log, verify its hash chain, export it as JSON lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from strongroom.cli import render
from strongroom.cli.inputs import format_option
from strongroom.cli.session import global_options, session_of
from strongroom.clock import parse_duration

__all__ = ["audit"]


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """`--since`: an ISO-8601 time (UTC when no offset is given) or a duration ago (`24h`)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            return datetime.now(UTC) - parse_duration(value)
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is neither an ISO-8601 time (2025-11-03T10:00:00Z) nor a duration "
                "(30s, 15m, 24h, 7d)",
                ctx=ctx,
                param=param,
            ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.group(invoke_without_command=True)
@click.option("--path", metavar="PATH", help="Only entries about this secret path.")
@click.option("--action", metavar="ACTION", help="Only this action (read, update, ...).")
@click.option(
    "--since",
    callback=_since,
    metavar="TIME",
    help="Only entries at or after TIME (ISO-8601, or a duration ago such as 24h).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=50,
    show_default=True,
    help="At most this many entries, newest first.",
)
@global_options()
@format_option
@click.pass_context
def audit(
    ctx: click.Context,
    path: str | None,
    action: str | None,
    since: datetime | None,
    limit: int,
    fmt: str,
) -> None:
    """Show audit log entries, newest first (or verify / export the log).

    \b
    Example:
      vaultctl audit --path "database/postgres/password" --limit 50
      vaultctl audit verify
      vaultctl audit export --since 2025-11-01T00:00:00Z > audit.jsonl
    """
    if ctx.invoked_subcommand is not None:
        return
    s = session_of(ctx)
    entries = s.unlocked().audit_logs(path=path, action=action, since=since, limit=limit)
    render.emit(
        fmt,
        render.render_audit(entries, with_path=path is None),
        {"entries": [e.as_dict() for e in entries], "count": len(entries)},
    )


@audit.command()
@global_options()
@format_option
@click.pass_context
def verify(ctx: click.Context, fmt: str) -> None:
    """Verify the audit hash chain end to end (exit 1 names the first bad entry).

    \b
    Example:
      vaultctl audit verify
    """
    s = session_of(ctx)
    result = s.unlocked().verify_audit()
    render.emit(
        fmt,
        render.render_verification(result),
        {
            "ok": result.ok,
            "entries": result.entries,
            "first_bad_id": result.first_bad_id,
            "unchained": result.unchained,
            "reason": result.reason,
        },
    )
    if not result.ok:
        ctx.exit(1)


@audit.command()
@click.option(
    "--since",
    callback=_since,
    metavar="TIME",
    help="Only entries at or after TIME (ISO-8601, or a duration ago such as 7d).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=10_000,
    show_default=True,
    help="At most this many entries (the newest ones).",
)
@global_options()
@click.pass_context
def export(ctx: click.Context, since: datetime | None, limit: int) -> None:
    """Print audit entries as JSON lines, oldest first, for shipping to a SIEM.

    \b
    Example:
      vaultctl audit export --since 2025-11-01T00:00:00Z > audit.jsonl
      vaultctl audit export --since 24h | ship-to-siem
    """
    s = session_of(ctx)
    entries = s.unlocked().audit_logs(since=since, limit=limit)
    for entry in reversed(entries):
        click.echo(json.dumps(entry.as_dict(), sort_keys=True, ensure_ascii=False))
    if len(entries) == limit:
        click.echo(
            f"Warning: exported only the newest {limit} entries; export older ones with an "
            "earlier --since window or a larger --limit",
            err=True,
        )
