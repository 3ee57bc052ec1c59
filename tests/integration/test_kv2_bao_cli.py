"""The real `bao` CLI, pointed at our server with VAULT_ADDR/VAULT_TOKEN (or BAO_*), runs the
everyday KV v2 commands and `status` unchanged."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MASTER_KEY
from tests.integration.kv2_support import Strongroom, bao_binary, strongroom_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strongroom]:
    with strongroom_server(tmp_path_factory.mktemp("sr"), MASTER_KEY) as running:
        yield running


def bao(
    server: Strongroom,
    home: Path,
    *args: str,
    prefix: str = "VAULT",
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update({"HOME": str(home), f"{prefix}_ADDR": server.url, f"{prefix}_TOKEN": server.token()})
    return subprocess.run(
        [bao_binary(), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(done))


def test_kv_commands(server: Strongroom, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return bao(server, tmp_path, *args)

    assert (
        as_json(run("kv", "put", "-format=json", "secret/cli/a", "k=v", "n=1"))["data"]["version"]
        == 1
    )
    ok(run("kv", "put", "secret/cli/a", "k=w"))
    ok(run("kv", "put", "secret/cli/b/c", "x=1"))
    latest = as_json(run("kv", "get", "-format=json", "secret/cli/a"))["data"]
    assert latest["data"] == {"k": "w"} and latest["metadata"]["version"] == 2
    assert "k      v" in ok(run("kv", "get", "-version=1", "secret/cli/a"))
    assert as_json(run("kv", "list", "-format=json", "secret/cli")) == ["a", "b/"]
    meta = as_json(run("kv", "metadata", "get", "-format=json", "secret/cli/a"))["data"]
    assert meta["current_version"] == 2 and sorted(meta["versions"]) == ["1", "2"]
    assert (
        as_json(run("kv", "patch", "-format=json", "secret/cli/a", "extra=1"))["data"]["version"]
        == 3
    )
    ok(run("kv", "delete", "secret/cli/a"))
    gone = ok(run("kv", "get", "secret/cli/a"))  # as with OpenBao: metadata only, exit 0
    assert "deletion_time      20" in gone and "== Data ==" not in gone
    ok(run("kv", "undelete", "-versions=3", "secret/cli/a"))
    ok(run("kv", "destroy", "-versions=1", "secret/cli/a"))
    after = as_json(run("kv", "metadata", "get", "-format=json", "secret/cli/a"))["data"]
    assert after["versions"]["1"]["destroyed"] is True
    assert as_json(run("kv", "get", "-format=json", "secret/cli/a"))["data"]["data"] == {
        "k": "w",
        "extra": "1",
    }
    ok(run("kv", "rollback", "-version=2", "secret/cli/a"))
    assert as_json(run("kv", "get", "-format=json", "secret/cli/a"))["data"]["data"] == {"k": "w"}
    ok(run("kv", "metadata", "put", "-max-versions=7", "-custom-metadata=team=ops", "secret/cli/a"))
    meta = as_json(run("kv", "metadata", "get", "-format=json", "secret/cli/a"))["data"]
    assert meta["max_versions"] == 7 and meta["custom_metadata"] == {"team": "ops"}
    ok(run("kv", "metadata", "delete", "secret/cli/b/c"))
    assert as_json(run("kv", "list", "-format=json", "secret/cli")) == ["a"]
    missing = run("kv", "get", "secret/cli/none")
    assert missing.returncode == 2 and "No value found" in missing.stderr


def test_status_seal_and_unseal(server: Strongroom, tmp_path: Path) -> None:
    for prefix in ("VAULT", "BAO"):
        out = ok(bao(server, tmp_path, "status", prefix=prefix))
        assert "Sealed          false" in out and "Total Shares    1" in out
    ok(bao(server, tmp_path, "operator", "seal"))
    try:
        sealed = bao(server, tmp_path, "status")
        assert sealed.returncode == 2 and "Sealed             true" in sealed.stdout
        refused = bao(server, tmp_path, "kv", "get", "secret/cli/a")
        assert refused.returncode == 2 and "Vault is sealed" in refused.stderr
    finally:
        unsealed = bao(server, tmp_path, "operator", "unseal", server.master_key)
    assert unsealed.returncode == 0 and "Sealed          false" in unsealed.stdout
