"""`vaultctl`: the command group, its global options, and the one error -> exit-code handler.

Exit codes: 0 ok, 1 the operation failed (locked, not found, wrong key...), 2 usage error; each
`StrongroomError` carries its own `exit_code`. Errors are one line on stderr (`Error: ...`), with
a traceback only under `--debug`. Commands live in the modules `COMMAND_MODULES` names.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Sequence
from typing import cast

import click

from strongroom import __version__, errors
from strongroom.cli import hints
from strongroom.cli.session import Session, global_options

__all__ = ["cli", "main"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

#: Where each command is defined (in its module's `COMMANDS`). A command's module is imported
#: when the command runs or is listed, so `vaultctl --addr ... get` imports `commands` and
#: nothing of the server, the KV import or the administration commands (issue 16: 150 ms
#: wall). `tests/integration/test_cli_startup.py` holds this table to the modules.
COMMAND_MODULES: dict[str, str] = {
    **dict.fromkeys(["unlock", "lock", "status"], "lockstate"),
    **dict.fromkeys(
        [
            "create",
            "get",
            "update",
            "delete",
            "list",
            "versions",
            "rollback",
            "cleanup",
            "generate",
        ],
        "commands",
    ),
    "rotate": "keys",
    "audit": "audit",
    "webhook": "webhook",
    **dict.fromkeys(["run", "export", "backup", "restore"], "admin"),
    **dict.fromkeys(["user", "policy"], "access"),
    "mount": "mounts",
    "token": "tokens",
    "approle": "approle",
    "import-vault": "import_vault",
    "server": "server",
}
#: Commands with options of their own instead of the global ones: the server outlives any one
#: command's session; import-vault's --addr/--token name the source Vault.
OWN_OPTIONS = frozenset({"import-vault", "server"})

GLOBAL_EPILOG = (
    "Global options (--db-dsn, --master-key, --master-key-file, --addr, --token, "
    "--user-id, --quiet, --debug; see 'vaultctl --help') are accepted here too."
)


def _with_epilog(command: click.Command) -> click.Command:
    command.epilog = command.epilog or GLOBAL_EPILOG
    for sub in getattr(command, "commands", {}).values():
        _with_epilog(sub)
    return command


class _Commands(click.Group):
    """A group whose commands load on use (`COMMAND_MODULES`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMAND_MODULES and cmd_name not in self.commands:
            module = importlib.import_module(f"strongroom.cli.{COMMAND_MODULES[cmd_name]}")
            for command in cast(list[click.Command], module.COMMANDS):
                if command.name == cmd_name:
                    own = cmd_name in OWN_OPTIONS
                    self.add_command(command if own else _with_epilog(command))
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands, context_settings=CONTEXT_SETTINGS)
@global_options(on_group=True)
@click.version_option(__version__, prog_name="vaultctl")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Strongroom's vault command line: encrypted, versioned, audited secrets.

    Global options may be given before or after the command name. With --addr (or
    VAULT_ADDR) and --token, commands go to a running `vaultctl server` instead of the
    database. Exit codes: 0 ok, 1 operation failed, 2 usage error.

    \b
    Example:
      export VAULT_MASTER_KEY="your-super-secret-master-key-here"
      vaultctl create --path "database/postgres/password" --value "my-secure-password"
      vaultctl get --path "database/postgres/password"
    """
    if isinstance(ctx.obj, Session):
        ctx.call_on_close(ctx.obj.close)


#: Click >= 8.2 raises this for a group called without a command (8.1 prints help itself).
_NO_ARGS_IS_HELP: tuple[type[click.UsageError], ...] = tuple(
    c for c in [getattr(click.exceptions, "NoArgsIsHelpError", None)] if c is not None
)


def _fail(message: str, code: int) -> int:
    click.echo(f"Error: {message}", err=True)
    return code


def run(argv: Sequence[str] | None = None) -> int:
    """Run `vaultctl` with `argv`; return the exit code instead of exiting."""
    session = Session()
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="vaultctl",
            standalone_mode=False,
            obj=session,
        )
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except _NO_ARGS_IS_HELP as exc:  # bare `vaultctl` or `vaultctl audit`: the help text
        click.echo(exc.format_message(), err=True)
        return exc.exit_code
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        return _fail(exc.format_message().rstrip(".") + hint, exc.exit_code)
    except click.ClickException as exc:
        return _fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        return _fail("aborted", 1)
    except errors.StrongroomError as exc:
        if session.debug:
            traceback.print_exc()
        return _fail(hints.message_for(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 1
    except Exception as exc:
        if session.debug:
            traceback.print_exc()
        return _fail(f"unexpected {type(exc).__name__}; rerun with --debug for details", 1)


def main() -> None:
    """Run `vaultctl` and exit with its code (the console script's `cli.startup.main` calls
    this once the garbage collector is off)."""
    sys.exit(run())
