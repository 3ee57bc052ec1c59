"""Commands teams reach for beyond the document: run, export, backup, restore.

`run` and `export` work through `api.VaultAPI` (locally or against a server); `backup` and
`restore` work on the database itself through `core.backup`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import click

from strongroom import errors
from strongroom.api import VaultAPI
from strongroom.cli import render, startup
from strongroom.cli.inputs import dotenv_unless_json, format_option, mount_option
from strongroom.cli.progress import progress_bar
from strongroom.cli.session import global_options, session_of
from strongroom.config import child_environment
from strongroom.models import Actor

__all__ = ["COMMANDS", "env_name", "quote_dotenv"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


def env_name(path: str, prefix: str) -> str:
    """The variable for `path` under `prefix`: the rest upper-cased, non-alphanumerics as `_`.

    `app/billing/db-password` under `app/billing/` is `DB_PASSWORD`.
    """
    return _NOT_ALNUM.sub("_", path[len(prefix) :]).upper()


def quote_dotenv(value: str) -> str:
    """Single-quote `value` for POSIX sh: any value (quotes, `$`, newlines) reads back exactly."""
    return "'" + value.replace("'", "'\\''") + "'"


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    explicit: dict[str, str] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not _ENV_NAME.fullmatch(name) or not path:
            raise click.BadParameter(
                f"{pair!r} is not NAME=path (NAME: letters, digits, _)", param_hint="'--env'"
            )
        if name in explicit:
            raise click.BadParameter(f"{name} is given twice", param_hint="'--env'")
        explicit[name] = path
    return explicit


def collect(
    api: VaultAPI, prefix: str | None, pairs: tuple[str, ...], actor: Actor
) -> dict[str, str]:
    """Variable name -> value for every live secret under `prefix` plus the `--env` pairs.

    Raises:
        UsageError: neither --prefix nor --env.
        InvalidInput: two secrets map to one name, a value holds a NUL character.
        SecretNotFound: an `--env` path does not exist.
    """
    explicit = _parse_env(pairs)
    if prefix is None and not explicit:
        raise click.UsageError("give --prefix PREFIX and/or --env NAME=path")
    names: dict[str, str] = {}
    if prefix is not None:
        now = datetime.now(UTC)
        taken = set(explicit.values())
        for info in api.list_secrets(prefix, actor=actor):
            if info.path in taken or (info.expires_at is not None and info.expires_at <= now):
                continue
            name = env_name(info.path, prefix)
            if not name:
                raise errors.InvalidInput(
                    f"secret {info.path!r} gives an empty variable name; "
                    "name it with --env NAME=path"
                )
            if name in names:
                raise errors.InvalidInput(
                    f"secrets {names[name]!r} and {info.path!r} both map "
                    f"to {name}; name one with --env NAME=path"
                )
            names[name] = info.path
    for name, path in explicit.items():
        if name in names:
            raise errors.InvalidInput(f"--env {name} collides with secret {names[name]!r}")
        names[name] = path
    values: dict[str, str] = {}
    for name, path in sorted(names.items()):
        try:
            value = api.get_secret(path, actor=actor)
        except errors.SecretExpired:
            if path in explicit.values():
                raise
            continue
        if "\x00" in value:
            raise errors.InvalidInput(
                f"secret {path!r} holds a NUL character and cannot be an environment variable"
            )
        values[name] = value
    return values


prefix_option = click.option(
    "--prefix", metavar="PREFIX", help="Every secret whose path starts with PREFIX."
)
env_option = click.option(
    "--env",
    "pairs",
    multiple=True,
    metavar="NAME=PATH",
    help="Also set NAME from the secret at PATH (repeatable).",
)


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@prefix_option
@env_option
@mount_option
@global_options()
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def run(
    ctx: click.Context,
    prefix: str | None,
    pairs: tuple[str, ...],
    mount: str,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND with secrets as environment variables; exit with its exit code.

    Each secret under PREFIX becomes a variable named by the rest of its path,
    upper-cased, every character that is not a letter or digit as `_`
    (app/billing/db-password under app/billing/ is DB_PASSWORD). Two secrets with one
    name are an error; name them with --env. VAULT_MASTER_KEY is not passed on.

    \b
    Example:
      vaultctl run --prefix app/billing/ -- ./billing-server --port 8000
      vaultctl run --prefix app/billing/ --env STRIPE_KEY=api/stripe/secret-key -- env
    """
    s = session_of(ctx)
    values = collect(s.at_mount(mount), prefix, pairs, s.actor)
    s.close()
    env = child_environment(values)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], list(command), env)  # noqa: S606 - running it is the point
    except FileNotFoundError:
        raise click.exceptions.Exit(_exec_failed(f"command not found: {command[0]}", 127)) from None
    except OSError as exc:
        raise click.exceptions.Exit(
            _exec_failed(f"cannot run {command[0]}: {exc.strerror or type(exc).__name__}", 126)
        ) from None


def _exec_failed(message: str, code: int) -> int:
    click.echo(f"Error: {message}", err=True)
    return code


@contextmanager
def _output(out: str | None, *, atomic: bool = False) -> Iterator[TextIO]:
    """stdout, or a new file readable by its owner only.

    With `atomic`, the file appears under its name only once complete (written beside it, then
    renamed), so an interrupted backup never leaves a truncated file that looks finished.
    """
    if out is None:
        yield sys.stdout
        return
    target = f"{out}.partial-{os.getpid()}" if atomic else out
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise errors.InvalidInput(
            f"cannot write {out!r}: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if atomic:
            os.replace(target, out)
    except BaseException:
        if atomic:
            Path(target).unlink(missing_ok=True)
        raise


@click.command(name="export")
@prefix_option
@env_option
@mount_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["dotenv", "json", "yaml"]),
    default=None,
    callback=dotenv_unless_json,
    help="dotenv lines are single-quoted for POSIX sh.  [default: dotenv]",
)
@click.option("--out", metavar="FILE", help="Write to FILE (mode 0600) instead of stdout.")
@global_options()
@click.pass_context
def export_(
    ctx: click.Context,
    prefix: str | None,
    pairs: tuple[str, ...],
    mount: str,
    fmt: str,
    out: str | None,
) -> None:
    """Print secrets under a prefix as NAME=value (dotenv), JSON or YAML.

    Names follow the rule of `vaultctl run`. The dotenv form can be sourced by a shell
    (`set -a; . ./app.env; set +a`) and gives back every value exactly.

    \b
    Example:
      vaultctl export --prefix app/billing/ --format dotenv --out app.env
      vaultctl export --prefix app/billing/ --format json
    """
    s = session_of(ctx)
    values = collect(s.at_mount(mount), prefix, pairs, s.actor)
    if fmt == "dotenv":
        text = "".join(f"{name}={quote_dotenv(value)}\n" for name, value in values.items())
    elif fmt == "json":
        text = json.dumps(values, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    else:
        import yaml

        text = (
            yaml.safe_dump(values, default_flow_style=False, allow_unicode=True, sort_keys=True)
            if values
            else "{}\n"
        )
    with _output(out) as stream:
        stream.write(text)


@click.command()
@click.option(
    "--out",
    "out",
    required=True,
    metavar="FILE",
    help="Write the backup to FILE (mode 0600; '-' for stdout).",
)
@global_options()
@format_option
@click.pass_context
def backup(ctx: click.Context, out: str, fmt: str) -> None:
    """Write a consistent snapshot of the whole vault (ciphertexts, keys as wrapped, audit).

    The file is only as sensitive as the database: values stay encrypted and the keys
    stay wrapped under the master key, which it needs to be restored.

    \b
    Example:
      vaultctl backup --out vault-2025-11-03.backup
    """
    s = session_of(ctx)
    s.require_local("backup")
    vault = s.local()
    s.unlocked()
    with (
        _output(None if out == "-" else out, atomic=True) as stream,
        progress_bar("Backing up", enabled=out != "-") as update,
    ):
        summary = vault.backup.write(stream, actor=s.actor, progress=update)
    if out == "-":
        return
    message = "Backup written successfully"
    render.emit(
        fmt,
        f"{message}: {out} ({summary.secrets} secret(s), {summary.versions} version(s), "
        f"{summary.audit_entries} audit entries as of the snapshot, before this backup's "
        "own entry)",
        {"message": message, "file": out, "counts": summary.counts, "vault_id": summary.vault_id},
        quiet=s.quiet,
    )


@click.command()
@click.option("--in", "source", required=True, metavar="FILE", help="The backup file to restore.")
@global_options()
@format_option
@click.pass_context
def restore(ctx: click.Context, source: str, fmt: str) -> None:
    """Restore a backup into an EMPTY database (SQLite or PostgreSQL), verified.

    Nothing is written unless the file is intact, the master key opens it, every
    version decrypts and the audit chain verifies; the restored vault is then opened
    with the key and checked again.

    \b
    Example:
      vaultctl restore --in vault-2025-11-03.backup --db-dsn postgresql://vault@db/vault
    """
    from strongroom.core.backup import restore as load_backup

    s = session_of(ctx)
    s.require_local("restore")
    path = Path(source)
    if not path.is_file():
        raise errors.InvalidInput(f"cannot read backup {source!r}: no such file")
    key = s.master_key()
    assert key is not None  # noqa: S101 - prompt=True never returns None
    startup.collector_on()  # (a long command that opens no Session vault: cli.startup)
    with progress_bar("Restoring") as update:
        summary = load_backup(
            s.settings.db_dsn,
            path,
            key,
            s.settings.vault_config(),
            actor=s.actor,
            progress=update,
        )
    message = "Backup restored and verified successfully"
    render.emit(
        fmt,
        f"{message}: {summary.secrets} secret(s), {summary.versions} version(s), "
        f"{summary.audit_entries} audit entries",
        {"message": message, "counts": summary.counts, "vault_id": summary.vault_id},
        quiet=s.quiet,
    )


COMMANDS: list[click.Command] = [run, export_, backup, restore]
