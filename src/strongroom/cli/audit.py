"""`vaultctl audit`: read the audit log, verify its hash chain (optionally against an exported
anchor), export it streamed as JSON lines or CSV."""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import click

from strongroom import errors
from strongroom.cli import render
from strongroom.cli.inputs import format_option
from strongroom.cli.progress import progress_bar
from strongroom.cli.session import global_options, session_of
from strongroom.clock import parse_duration
from strongroom.core.audit_export import EXPORT_FORMATS, encode_batch, header
from strongroom.models import AuditAnchor

__all__ = ["COMMANDS", "audit", "read_anchor"]

_BATCH = 1000


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
@click.option(
    "--anchor",
    "anchor_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also check against the head a previous `audit export` wrote (detects deleted "
    "newest entries).",
)
@global_options()
@format_option
@click.pass_context
def verify(ctx: click.Context, anchor_file: Path | None, fmt: str) -> None:
    """Verify the audit hash chain end to end (exit 1 names the first bad entry).

    With --anchor, the entry the anchor names must still be there with the same MAC, so
    deleting the newest entries is detected too.

    \b
    Example:
      vaultctl audit verify
      vaultctl audit verify --anchor /mnt/offhost/audit.jsonl.anchor.json
    """
    s = session_of(ctx)
    anchor = read_anchor(anchor_file) if anchor_file is not None else None
    result = s.unlocked().verify_audit(anchor)
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
    "--until",
    callback=_since,
    metavar="TIME",
    help="Only entries before TIME (ISO-8601, or a duration ago such as 1d).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPORT_FORMATS),
    default="jsonl",
    show_default=True,
    help="JSON lines, or CSV with a header line.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE instead of standard output.",
)
@click.option(
    "--anchor",
    "anchor_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the last exported entry's id and MAC to FILE (default with --output: "
    "FILE.anchor.json) for `audit verify --anchor`.",
)
@global_options()
@click.pass_context
def export(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    fmt: str,
    output: Path | None,
    anchor_file: Path | None,
) -> None:
    """Export every audit entry (or the --since/--until window), oldest first, streamed.

    Memory stays flat however long the log is. Each row carries the entry's fields and its
    chain MAC (never a value). The last row's id and MAC are the anchor that `audit verify
    --anchor` checks: keep anchors off this host (docs/security.md). A progress count is shown
    on a terminal.

    \b
    Example:
      vaultctl audit export > audit.jsonl
      vaultctl audit export --since 2025-11-01T00:00:00Z --format csv -o audit.csv
      vaultctl audit export --since 24h | ship-to-siem
    """
    s = session_of(ctx)
    rows = s.unlocked().export_audit(since=since, until=until)
    if output is not None and anchor_file is None:
        anchor_file = output.with_name(output.name + ".anchor.json")
    with contextlib.ExitStack() as stack:
        out: TextIO = sys.stdout
        if output is not None:
            out = stack.enter_context(output.open("w", encoding="utf-8", newline=""))
        progress = stack.enter_context(progress_bar("exporting audit entries"))
        last, count = _write_rows(rows, fmt, out, progress)
    if last is None:
        click.echo("no audit entries in that window", err=True)
        return
    head = {"id": last["id"], "mac": last["mac"], "timestamp": last["timestamp"]}
    if anchor_file is not None:
        anchor_file.write_text(json.dumps(head) + "\n", encoding="utf-8")
        where = f"anchor written to {anchor_file}"
    else:
        where = f"anchor: {json.dumps(head)}"
    click.echo(f"exported {count} entries; {where}", err=True)


def _write_rows(
    rows: Iterator[Mapping[str, object]],
    fmt: str,
    out: TextIO,
    progress: Callable[[int, int], None],
) -> tuple[Mapping[str, object] | None, int]:
    """Write rows in batches; return (last row, count)."""
    out.write(header(fmt))
    last: Mapping[str, object] | None = None
    count = 0
    while batch := list(itertools.islice(rows, _BATCH)):
        out.write(encode_batch(batch, fmt))
        last = batch[-1]
        count += len(batch)
        progress(count, count)
    out.flush()
    return last, count


def read_anchor(path: Path) -> AuditAnchor:
    """The anchor a previous export wrote.

    Raises:
        click.BadParameter: the file is missing or not an anchor.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ident, mac = data["id"], data["mac"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise click.BadParameter(
            f"{path} is not an audit anchor ({type(exc).__name__})", param_hint="--anchor"
        ) from None
    try:
        return AuditAnchor(ident, mac)
    except errors.InvalidInput as exc:
        raise click.BadParameter(f"{path}: {exc.message}", param_hint="--anchor") from None


COMMANDS: list[click.Command] = [audit]
