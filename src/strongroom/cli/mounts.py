"""`vaultctl mount list|enable|disable|tune|move`: secrets engine mounts (the `kv` type, version
1 or 2), as `sys/mounts` manages them over HTTP. They work on the database directly (no --addr;
over HTTP use `bao secrets ...` or hvac) with the master key, and every change is audited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from strongroom.cli import render
from strongroom.cli.inputs import format_option
from strongroom.cli.session import Session, global_options, session_of

if TYPE_CHECKING:
    from strongroom.core.mounts import MountRow

__all__ = ["COMMANDS"]


def _session(ctx: click.Context, what: str) -> Session:
    s = session_of(ctx)
    s.require_local(what)
    return s


def _version(row: MountRow) -> int:
    from strongroom.core.mounts import effective_version  # the core: when a command runs

    return effective_version(row)


def _mount_dict(row: MountRow) -> dict[str, Any]:
    return {
        "path": row.path,
        "type": row.type,
        "version": _version(row),
        "description": row.description,
        "config": dict(row.config),
        "uuid": row.uuid,
        "accessor": row.accessor,
    }


def _line(row: MountRow) -> str:
    text = f"  {row.path}  kv v{_version(row)}"
    return text + (f"  {row.description}" if row.description else "")


def _config(default_lease_ttl: str | None, max_lease_ttl: str | None) -> dict[str, str]:
    given = {"default_lease_ttl": default_lease_ttl, "max_lease_ttl": max_lease_ttl}
    return {k: v for k, v in given.items() if v is not None}


@click.group()
def mount() -> None:
    """Manage secrets engine mounts (KV version 1 or 2 at any path).

    \b
    Example:
      vaultctl mount enable team --version 2 --description "team a"
      vaultctl mount list
      vaultctl mount move team team-a
      vaultctl mount disable team-a
    """


@mount.command("list")
@global_options()
@format_option
@click.pass_context
def mount_list(ctx: click.Context, fmt: str) -> None:
    """List the mounts.

    \b
    Example:
      vaultctl mount list --format json
    """
    s = _session(ctx, "mount list")
    rows = s.unlock_local().mounts.list(actor=s.actor)
    text = "\n".join([f"Found {len(rows)} mount(s):", *(_line(r) for r in rows)])
    render.emit(fmt, text, {"mounts": [_mount_dict(r) for r in rows], "count": len(rows)})


@mount.command("enable")
@click.argument("path")
@click.option("--version", "kv_version", type=click.Choice(["1", "2"]), default="2",
              show_default=True, help="KV version.")  # fmt: skip
@click.option("--description", default=None, help="What the mount is for.")
@click.option("--default-lease-ttl", default=None, help="Default lease TTL (e.g. 30m).")
@click.option("--max-lease-ttl", default=None, help="Maximum lease TTL (e.g. 1h).")
@global_options()
@format_option
@click.pass_context
def mount_enable(
    ctx: click.Context,
    path: str,
    kv_version: str,
    description: str | None,
    default_lease_ttl: str | None,
    max_lease_ttl: str | None,
    fmt: str,
) -> None:
    """Mount a new KV engine at PATH.

    \b
    Example:
      vaultctl mount enable kv1 --version 1
    """
    s = _session(ctx, "mount enable")
    row = s.unlock_local().mounts.enable(
        path,
        "kv",
        options={"version": kv_version},
        description=description,
        config=_config(default_lease_ttl, max_lease_ttl),
        actor=s.actor,
    )
    render.emit(fmt, f"Enabled kv v{kv_version} at {row.path}", _mount_dict(row), quiet=s.quiet)


@mount.command("disable")
@click.argument("path")
@global_options()
@format_option
@click.pass_context
def mount_disable(ctx: click.Context, path: str, fmt: str) -> None:
    """Unmount PATH, deleting every secret in it (the audit trail stays).

    \b
    Example:
      vaultctl mount disable team
    """
    s = _session(ctx, "mount disable")
    gone = s.unlock_local().mounts.disable(path, actor=s.actor)
    shown = path.strip("/") + "/"
    text = f"Disabled {shown} ({gone} secret(s) deleted)"
    render.emit(fmt, text, {"path": shown, "deleted": gone}, quiet=s.quiet)


@mount.command("tune")
@click.argument("path")
@click.option("--version", "kv_version", type=click.Choice(["2"]), default=None,
              help="Upgrade a KV v1 mount to v2 (its data is kept).")  # fmt: skip
@click.option("--description", default=None, help="New description.")
@click.option("--default-lease-ttl", default=None, help="Default lease TTL (e.g. 30m).")
@click.option("--max-lease-ttl", default=None, help="Maximum lease TTL (e.g. 1h).")
@global_options()
@format_option
@click.pass_context
def mount_tune(
    ctx: click.Context,
    path: str,
    kv_version: str | None,
    description: str | None,
    default_lease_ttl: str | None,
    max_lease_ttl: str | None,
    fmt: str,
) -> None:
    """Change a mount's description, TTLs or KV version.

    \b
    Example:
      vaultctl mount tune kv1 --version 2
    """
    s = _session(ctx, "mount tune")
    row = s.unlock_local().mounts.tune(
        path,
        options={"version": kv_version} if kv_version else None,
        description=description,
        config=_config(default_lease_ttl, max_lease_ttl),
        actor=s.actor,
    )
    render.emit(fmt, f"Tuned {row.path}", _mount_dict(row), quiet=s.quiet)


@mount.command("move")
@click.argument("source")
@click.argument("target")
@global_options()
@format_option
@click.pass_context
def mount_move(ctx: click.Context, source: str, target: str, fmt: str) -> None:
    """Move the mount at SOURCE, with every secret in it, to TARGET.

    \b
    Example:
      vaultctl mount move team team-a
    """
    s = _session(ctx, "mount move")
    row = s.unlock_local().mounts.move(source, target, actor=s.actor)
    render.emit(fmt, f"Moved {source.strip('/')}/ to {row.path}", _mount_dict(row), quiet=s.quiet)


COMMANDS = [mount]
