"""docs/cli.md documents every `vaultctl` command, with its current `--help` (cog), and every
command's help has an example."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from strongroom.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = ROOT / "docs" / "cli.md"


def _walk(command: click.Command | None, path: list[str]) -> Iterator[list[str]]:
    yield path
    if isinstance(command, click.Group):
        ctx = click.Context(command)  # (vaultctl's commands load when asked for)
        for name in command.list_commands(ctx):
            yield from _walk(command.get_command(ctx, name), [*path, name])


COMMANDS = [p for p in _walk(cli, []) if p]


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_command_documented_with_example(path: list[str]) -> None:
    heading = f"### `vaultctl {' '.join(path)}`"
    assert heading in CLI_DOC.read_text(encoding="utf-8"), (
        f"{heading} missing from docs/cli.md: run `cog -r docs/cli.md`"
    )
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="vaultctl")
    assert result.exit_code == 0
    assert "Example" in result.output


def test_cli_doc_is_current() -> None:
    from cogapp import Cog

    status = Cog().main(["cog", "--check", str(CLI_DOC)])
    assert status == 0, "docs/cli.md is stale: run `cog -r docs/cli.md`"
