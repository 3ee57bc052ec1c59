"""The design document's commands: one small function each, parse -> one vault call -> render.

Every command is written against `api.VaultAPI`, so it runs the same locally and remotely.
"""

from __future__ import annotations

from datetime import timedelta

import click

from strongroom.cli import render
from strongroom.cli.inputs import (
    format_option,
    mount_option,
    parse_expires_in,
    path_option,
    read_value,
    value_options,
)
from strongroom.cli.progress import progress_bar
from strongroom.cli.reads import current_version
from strongroom.cli.session import global_options, session_of

__all__ = ["COMMANDS"]

WRITE_SHOWN = ("user_id",)


# -- secrets ----------------------------------------------------------------------------------
@click.command()
@path_option
@mount_option
@value_options
@click.option(
    "--description",
    metavar="TEXT",
    help="Human-readable description (stored in plaintext: keep secrets out of it).",
)
@click.option(
    "--expires-in",
    callback=parse_expires_in,
    metavar="DURATION",
    help="Expire after DURATION: 30s, 15m, 24h, 7d, 90d or combinations like 1h30m.",
)
@global_options(show=WRITE_SHOWN)
@format_option
@click.pass_context
def create(
    ctx: click.Context,
    path: str,
    mount: str,
    value: str | None,
    value_file: str | None,
    description: str | None,
    expires_in: timedelta | None,
    fmt: str,
) -> None:
    """Create a secret (version 1).

    \b
    Example:
      vaultctl create --path "api/stripe/secret-key" --value "sk_live_..." \\
        --description "Stripe API secret key" --expires-in "90d" --user-id 1
      printf %s "$PASSWORD" | vaultctl create --path db/password --value -
    """
    s = session_of(ctx)
    text = read_value(value, value_file)
    info = s.at_mount(mount, initialise=True).create_secret(
        path, text, description=description, actor=s.actor, expires_in=expires_in
    )
    message = "Secret created successfully"
    render.emit(
        fmt,
        f"{message}: {info.path}",
        {
            "message": message,
            "path": info.path,
            "version": info.version,
            "expires_at": render.iso(info.expires_at),
        },
        quiet=s.quiet,
    )


@click.command()
@path_option
@mount_option
@click.option(
    "--version",
    type=click.IntRange(min=1),
    metavar="N",
    help="Read version N instead of the current one.",
)
@global_options()
@format_option
@click.pass_context
def get(ctx: click.Context, path: str, mount: str, version: int | None, fmt: str) -> None:
    """Print a secret's value.

    \b
    Example:
      vaultctl get --path "api/stripe/secret-key"
      vaultctl get --path "api/stripe/secret-key" --version 1
      PASSWORD=$(vaultctl get --path db/password --quiet)
    """
    s = session_of(ctx)
    api = s.at_mount(mount)
    if version is None and fmt == "json" and getattr(api, "versioned", True):
        version = current_version(api, path, s.actor)  # JSON names the version it read
    if version is None:
        value = api.get_secret(path, actor=s.actor)
    else:
        value = api.get_secret_version(path, version, actor=s.actor)
    if fmt == "json":
        render.emit_json({"path": path, "value": value, "version": version})
    elif s.quiet:
        click.echo(value)
    else:
        click.echo(f"Path: {path}\nValue: {value}")


@click.command()
@path_option
@mount_option
@value_options
@global_options(show=WRITE_SHOWN)
@format_option
@click.pass_context
def update(
    ctx: click.Context,
    path: str,
    mount: str,
    value: str | None,
    value_file: str | None,
    fmt: str,
) -> None:
    """Store a new value as a new version (old versions are kept for rollback).

    \b
    Example:
      vaultctl update --path "api/stripe/secret-key" --value "sk_live_new_key_..." --user-id 1
    """
    s = session_of(ctx)
    text = read_value(value, value_file)
    number = s.at_mount(mount).update_secret(path, text, actor=s.actor)
    message = "Secret updated successfully"
    render.emit(
        fmt,
        f"{message}: {path} (version {number})",
        {"message": message, "path": path, "version": number},
        quiet=s.quiet,
    )


@click.command()
@path_option
@mount_option
@global_options(show=WRITE_SHOWN)
@format_option
@click.pass_context
def delete(ctx: click.Context, path: str, mount: str, fmt: str) -> None:
    """Delete a secret and all its versions (its audit history stays).

    \b
    Example:
      vaultctl delete --path "api/stripe/secret-key" --user-id 1
    """
    s = session_of(ctx)
    s.at_mount(mount).delete_secret(path, actor=s.actor)
    message = "Secret deleted successfully"
    render.emit(fmt, f"{message}: {path}", {"message": message, "path": path}, quiet=s.quiet)


@click.command(name="list")
@click.option(
    "--prefix",
    default="",
    metavar="PREFIX",
    help="Only paths starting with PREFIX (literal, case-sensitive).",
)
@mount_option
@global_options()
@format_option
@click.pass_context
def list_(ctx: click.Context, prefix: str, mount: str, fmt: str) -> None:
    """List secrets (metadata only, never values).

    \b
    Example:
      vaultctl list
      vaultctl list --prefix "database/"
    """
    s = session_of(ctx)
    api = s.at_mount(mount)
    secrets = api.list_secrets(prefix, actor=s.actor)
    paths_only = not getattr(api, "versioned", True)  # a KV v1 mount keeps no metadata
    if fmt == "json":
        shown = [{"path": i.path} if paths_only else i.as_dict() for i in secrets]
        render.emit_json({"secrets": shown, "count": len(secrets)})
    elif s.quiet or paths_only:
        if not s.quiet:
            click.echo(f"Found {len(secrets)} secret(s):")
        for info in secrets:
            click.echo(info.path)
    else:
        click.echo(render.render_list(secrets))


@click.command()
@path_option
@mount_option
@global_options()
@format_option
@click.pass_context
def versions(ctx: click.Context, path: str, mount: str, fmt: str) -> None:
    """List the versions of a secret, newest first.

    \b
    Example:
      vaultctl versions --path "database/postgres/password"
    """
    s = session_of(ctx)
    found = s.at_mount(mount).list_versions(path, actor=s.actor)
    render.emit(
        fmt,
        render.render_versions(found),
        {"path": path, "versions": [v.as_dict() for v in found], "count": len(found)},
    )


@click.command()
@path_option
@mount_option
@click.option(
    "--version",
    type=click.IntRange(min=1),
    required=True,
    metavar="N",
    help="The version whose value becomes current again.",
)
@global_options(show=WRITE_SHOWN)
@format_option
@click.pass_context
def rollback(ctx: click.Context, path: str, mount: str, version: int, fmt: str) -> None:
    """Make an old version's value current again (stored as a new version).

    \b
    Example:
      vaultctl rollback --path "database/postgres/password" --version 1
    """
    s = session_of(ctx)
    number = s.at_mount(mount).rollback_secret(path, version, actor=s.actor)
    message = "Secret rolled back successfully"
    render.emit(
        fmt,
        f"{message}: {path} (version {version} restored as version {number})",
        {"message": message, "path": path, "version": number, "restored_from": version},
        quiet=s.quiet,
    )


@click.command()
@global_options()
@format_option
@click.pass_context
def cleanup(ctx: click.Context, fmt: str) -> None:
    """Delete every expired secret (each deletion is audited).

    \b
    Example:
      vaultctl cleanup
    """
    s = session_of(ctx)
    api = s.unlocked()
    with progress_bar("Cleaning up") as update:
        count = api.cleanup_expired(actor=s.actor, progress=update)
    render.emit(
        fmt,
        f"✅ Cleaned up {count} expired secret(s)",
        {"message": "Cleanup completed", "count": count},
        quiet=s.quiet,
    )


@click.command()
@click.option(
    "--length",
    type=click.IntRange(1, 1024),
    default=32,
    show_default=True,
    metavar="BYTES",
    help="Random bytes in the token (printed URL-safe base64).",
)
@global_options()
@format_option
@click.pass_context
def generate(ctx: click.Context, length: int, fmt: str) -> None:
    """Generate a secure random token (not stored).

    \b
    Example:
      vaultctl generate
      vaultctl generate --length 64
    """
    s = session_of(ctx)
    token = s.unlocked().generate_token(length, actor=s.actor)
    render.emit(fmt, token, {"token": token, "length": length})


COMMANDS: list[click.Command] = [
    create,
    get,
    update,
    delete,
    list_,
    versions,
    rollback,
    cleanup,
    generate,
]
