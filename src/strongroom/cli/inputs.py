"""Option parsing shared by commands: --format, --path, values from flag/stdin/file, durations."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from strongroom import errors
from strongroom.clock import parse_duration

__all__ = [
    "FORMAT_HELP",
    "dotenv_unless_json",
    "format_option",
    "mount_option",
    "parse_expires_in",
    "path_option",
    "read_value",
    "value_options",
]

FORMAT_HELP = "Output format; json has stable keys and ISO-8601 UTC times."


def _group_format(ctx: click.Context) -> str | None:
    """The `--format` given before the command name (`vaultctl --format json get ...`)."""
    root = ctx.find_root()
    flags = getattr(root.obj, "flags", None)
    value = flags.get("group_format") if isinstance(flags, dict) else None
    return value if isinstance(value, str) else None


def _text_or_json(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    return value or _group_format(ctx) or "text"


def dotenv_unless_json(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """`export --format`: its own choice, else json when `vaultctl --format json` asked for it."""
    return value or ("json" if _group_format(ctx) == "json" else "dotenv")


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default=None,
    callback=_text_or_json,
    help=f"{FORMAT_HELP}  [default: text]",  # the default applies after `vaultctl --format`
)
path_option = click.option(
    "--path", required=True, metavar="PATH", help="Secret path, e.g. service/component/key."
)


def parse_expires_in(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> timedelta | None:
    """Click callback: `--expires-in` through `clock.parse_duration` (usage error if malformed)."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except errors.InvalidInput as exc:
        raise click.BadParameter(exc.message, ctx=ctx, param=param) from None


def read_value(value: str | None, value_file: str | None) -> str:
    """The secret value from `--value`, `--value -` (stdin) or `--value-file`.

    Standard input loses one trailing newline (so `echo v | vaultctl ...` stores `v`); a file
    is taken verbatim.

    Raises:
        UsageError: neither or both given.
        InvalidInput: stdin closed, unreadable file, not UTF-8.
    """
    if (value is None) == (value_file is None):
        raise click.UsageError(
            "give the value with exactly one of --value VALUE, --value - "
            "(standard input) or --value-file FILE"
        )
    if value_file is not None:
        try:
            data = Path(value_file).read_bytes()
        except OSError as exc:
            raise errors.InvalidInput(
                f"cannot read value file {value_file!r}: {exc.strerror or type(exc).__name__}"
            ) from None
        return _decode(data, f"value file {value_file!r}")
    if value != "-":
        return value or ""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        raise errors.InvalidInput("--value -: standard input is closed")
    try:
        data = stdin.buffer.read()
    except (OSError, ValueError) as exc:
        raise errors.InvalidInput("--value -: cannot read standard input") from exc
    text = _decode(data, "standard input")
    return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidInput(f"{what} is not UTF-8 text") from None


def value_options(f: Any) -> Any:
    """`--value` and `--value-file`."""
    f = click.option("--value-file", metavar="FILE", help="Read the value from FILE (verbatim).")(f)
    return click.option(
        "--value",
        metavar="VALUE",
        help="Secret value; '-' reads standard input (one trailing newline "
        "stripped). Prefer '-' or --value-file: arguments are visible "
        "in the process list.",
    )(f)


mount_option = click.option(
    "--mount",
    default="secret",
    show_default=True,
    metavar="PATH",
    help="The KV mount (v2 or v1) to work in; secret is the design document's namespace.",
)
