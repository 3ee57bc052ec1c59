"""The real `bao` CLI manages and uses secrets engine mounts on our server, on SQLite and
PostgreSQL: `secrets enable/list/tune/move/disable`, `kv put/get/list -mount=` on a KV v2
mount, and `kv put/get/delete` on a KV v1 mount (the CLI picks the version through
`sys/internal/ui/mounts`)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MASTER_KEY, drop_pg_schema, make_pg_schema
from tests.integration.kv2_support import Strongroom, strongroom_server
from tests.integration.test_kv2_bao_cli import as_json, bao, ok


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Strongroom]:
    home = tmp_path_factory.mktemp("sr")
    if request.param == "sqlite":
        with strongroom_server(home, MASTER_KEY) as running:
            yield running
        return
    if not request.getfixturevalue("pg_ready"):
        pytest.skip("PostgreSQL not reachable")
    dsn, schema = make_pg_schema()
    try:
        with strongroom_server(home, MASTER_KEY, dsn) as running:
            yield running
    finally:
        drop_pg_schema(schema)


def test_secrets_and_kv_commands_on_mounts(server: Strongroom, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return bao(server, tmp_path, *args)

    ok(run("secrets", "enable", "-path=team", "-version=2", "-description=team a", "kv"))
    ok(run("secrets", "enable", "-path=kv1", "kv"))
    mounts = as_json(run("secrets", "list", "-format=json"))
    assert mounts["team/"]["options"] == {"version": "2"}
    assert mounts["team/"]["description"] == "team a"
    assert mounts["kv1/"]["type"] == "kv" and sorted(mounts) == ["kv1/", "secret/", "team/"]
    ok(run("kv", "put", "-mount=team", "app/db", "x=1"))
    ok(run("kv", "put", "-mount=team", "app/db", "x=2"))
    got = as_json(run("kv", "get", "-format=json", "-mount=team", "app/db"))["data"]
    assert got["data"] == {"x": "2"} and got["metadata"]["version"] == 2
    assert "x      2" in ok(run("kv", "get", "-mount=team", "app/db"))
    assert as_json(run("kv", "list", "-format=json", "-mount=team", "app")) == ["db"]
    assert run("kv", "get", "-mount=secret", "app/db").returncode == 2  # not at secret/
    ok(run("kv", "put", "kv1/app", "x=1"))
    ok(run("kv", "put", "kv1/app", "x=3"))
    v1 = as_json(run("kv", "get", "-format=json", "kv1/app"))
    assert v1["data"] == {"x": "3"} and v1["lease_duration"] == 768 * 3600
    ok(run("secrets", "tune", "-description=tuned", "team"))
    ok(run("secrets", "move", "team", "team-b"))
    assert as_json(run("kv", "get", "-format=json", "-mount=team-b", "app/db"))["data"]["data"] == {
        "x": "2"
    }
    ok(run("secrets", "disable", "team-b"))
    ok(run("kv", "delete", "kv1/app"))
    assert run("kv", "get", "kv1/app").returncode == 2
    refused = run("secrets", "disable", "secret")
    assert refused.returncode == 2 and "cannot disable secret/" in refused.stderr
    assert sorted(as_json(run("secrets", "list", "-format=json"))) == ["kv1/", "secret/"]
