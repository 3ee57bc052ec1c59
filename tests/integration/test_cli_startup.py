"""`vaultctl` starts light (issue #16, CLI latency): a remote command loads neither the storage
layer nor the server nor the crypto bindings, and the benchmark of its latency runs."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click

from strongroom.cli.main import COMMAND_MODULES, cli
from tests.integration.server_proc import ServerProcess, token

# pygments: httpx imports its own command-line tool (rich, pygments) unless told not to
# (`strongroom.cli`).
HEAVY = (
    "sqlalchemy",
    "alembic",
    "uvicorn",
    "starlette",
    "jinja2",
    "cryptography",
    "argon2",
    "pygments",
    "jwt",
)
BENCH = Path(__file__).resolve().parents[2] / "bench" / "cli_latency.py"

PROBE = """
import json, sys
from strongroom.cli.main import run
code = run(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(%r)))
cli = sorted(m.rpartition(".")[2] for m in sys.modules if m.startswith("strongroom.cli."))
print(json.dumps({"code": code, "heavy": heavy, "cli": cli}), file=sys.stderr)
"""


def loaded(args: list[str], env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE % json.dumps(HEAVY), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )
    result: dict[str, object] = json.loads(done.stderr.strip().splitlines()[-1])
    result["stdout"] = done.stdout
    return result


def test_help_and_remote_get_load_no_storage_server_or_crypto(tmp_path: Path) -> None:
    # (`vaultctl --help` lists every command, so it loads `server` too: not on a hot path.)
    assert loaded(["get", "--help"], {})["heavy"] == []
    server = ServerProcess(tmp_path).start()
    try:
        with server.client() as api:
            assert api.post("/api/vault/secrets", json={"path": "a/b", "value": "v"}).is_success
        remote = {"VAULT_ADDR": server.url, "VAULT_TOKEN": token()}
        got = loaded(["get", "--path", "a/b"], remote)
        assert got["code"] == 0 and "Value: v" in str(got["stdout"]), got
        assert got["heavy"] == [], got
        # only the module of `get` among the command modules (`main.COMMAND_MODULES`)
        loaded_commands = set(COMMAND_MODULES.values()) & set(got["cli"])  # type: ignore[call-overload]
        assert loaded_commands == {"commands"}, got
    finally:
        assert server.stop() == 0, server.output()


def test_command_table_names_every_command_where_it_is_defined() -> None:
    by_module: dict[str, set[str]] = {}
    for name, module in COMMAND_MODULES.items():
        by_module.setdefault(module, set()).add(name)
    for module, names in by_module.items():
        defined = importlib.import_module(f"strongroom.cli.{module}").COMMANDS
        assert {command.name for command in defined} == names, module
    ctx = click.Context(cli)
    listed = cli.list_commands(ctx)
    assert listed == sorted(COMMAND_MODULES)
    assert all(getattr(cli.get_command(ctx, name), "name", None) == name for name in listed)
    assert cli.get_command(ctx, "no-such-command") is None


def test_local_commands_still_load_what_they_need(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'v.db'}",
        "VAULT_MASTER_KEY": "correct-horse-battery-staple-0417",
    }
    env.update({k: v for k, v in os.environ.items() if k.startswith("STRONGROOM_ARGON2")})
    created = loaded(["create", "--path", "a/b", "--value", "v"], env)
    assert created["code"] == 0, created
    assert {"sqlalchemy", "cryptography", "argon2"} <= set(created["heavy"])  # type: ignore[call-overload]
    got = loaded(["get", "--path", "a/b"], env)
    assert got["code"] == 0 and "Value: v" in str(got["stdout"]), got
    # (PyJWT loads most of `cryptography`: a local get needs none of it)
    assert "jwt" not in set(got["heavy"]), got  # type: ignore[call-overload]


def test_cli_latency_benchmark_produces_numbers() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--runs", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=BENCH.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("remote get (--addr)", "local get"):
        line = next(x for x in done.stdout.splitlines() if x.startswith(name))
        assert re.search(r"median +\d+\.\d ms .* cpu +\d+\.\d ms", line), line
