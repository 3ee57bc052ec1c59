"""hvac 2.4 against our real server AND a real OpenBao dev server: the same scenario on both,
then every response compared field by field.

Only the fields in `DIFFERENT` may differ (ids, times, versions, and OpenBao-only additions);
times are compared as "a time" (or ""), everything else by value. The Strongroom-only checks
(policies, audit, content type) follow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import hvac
import pytest
from hvac import exceptions as hx

from strongroom import open_vault
from tests.conftest import MASTER_KEY, fast_config
from tests.integration.kv2_support import ROOT_TOKEN, Strongroom, bao_dev_server, strongroom_server

_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")

#: Fields that legitimately differ, by scenario step ("*": every step). Each with its reason.
DIFFERENT: dict[str, set[str]] = {
    # Request ids are random; `mount_type` is sent by Vault >= 1.x but not by OpenBao 2.7.
    "*": {"request_id", "mount_type"},
    # OpenBao-only metadata check-and-set fields (not in Vault, not served by us).
    "meta": {"current_metadata_version", "metadata_cas_required"},
    "meta_after": {"current_metadata_version", "metadata_cas_required"},
    # Build, cluster and clock facts of two different servers.
    "health": {"version", "cluster_name", "cluster_id", "server_time_utc", "performance_standby"},
    "seal_status": {
        "version",
        "cluster_name",
        "cluster_id",
        "commit_date",
        "build_date",
        "storage_type",
    },
    "seal_status_sealed": {"version", "commit_date", "build_date", "storage_type"},
    "unseal": {
        "version",
        "cluster_name",
        "cluster_id",
        "commit_date",
        "build_date",
        "storage_type",
    },
}
#: lookup-self describes two different token systems (a Strongroom JWT, a Vault root token):
#: only the set of keys is compared.
KEYS_ONLY = {"lookup_self"}


@dataclass(frozen=True)
class Target:
    url: str
    token: str
    unseal_key: str


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Strongroom, Target, Target]]:
    with (
        strongroom_server(tmp_path_factory.mktemp("sr"), MASTER_KEY) as ours,
        bao_dev_server(tmp_path_factory.mktemp("bao")) as bao,
    ):
        yield (
            ours,
            Target(ours.url, ours.token(), MASTER_KEY),
            Target(bao.url, ROOT_TOKEN, bao.unseal_key),
        )


def _error(fn: Callable[[], object]) -> tuple[str, list[str] | None]:
    try:
        fn()
    except hx.VaultError as exc:
        return type(exc).__name__, exc.errors
    return "no error", None


def scenario(t: Target) -> dict[str, Any]:
    """Every hvac call the issue lists; returns each response (or status / error) by name."""
    client = hvac.Client(url=t.url, token=t.token)
    strict = hvac.Client(url=t.url, token=t.token, strict_http=True)
    kv = client.secrets.kv.v2
    r: dict[str, Any] = {}
    r["is_authenticated"] = client.is_authenticated()
    r["is_authenticated_bad"] = hvac.Client(url=t.url, token="bogus").is_authenticated()
    r["forbidden"] = _error(
        lambda: hvac.Client(url=t.url, token="bogus").secrets.kv.v2.read_secret_version(
            "hv/app", raise_on_deleted_version=True
        )
    )
    r["write_1"] = kv.create_or_update_secret("hv/app", {"user": "u", "password": "p1"})
    r["write_cas"] = kv.create_or_update_secret("hv/app", {"user": "u", "password": "p2"}, cas=1)
    r["cas_conflict"] = _error(lambda: kv.create_or_update_secret("hv/app", {"x": "1"}, cas=1))
    r["cas_new"] = kv.create_or_update_secret("hv/new", {"x": "1"}, cas=0)
    r["read_latest"] = kv.read_secret_version("hv/app", raise_on_deleted_version=True)
    r["read_v1"] = kv.read_secret_version("hv/app", version=1, raise_on_deleted_version=True)
    r["read_missing"] = _error(
        lambda: kv.read_secret_version("hv/none", raise_on_deleted_version=True)
    )
    r["read_bad_version"] = _error(
        lambda: kv.read_secret_version("hv/app", version=9, raise_on_deleted_version=True)
    )
    # hvac's patch reads the secret without `raise_on_deleted_version` and so always warns.
    with pytest.warns(DeprecationWarning, match="raise_on_deleted_version"):
        r["patch"] = kv.patch("hv/app", {"port": "5432"})
    r["read_patched"] = kv.read_secret_version("hv/app", raise_on_deleted_version=True)
    for path in ("hv/dir/x", "hv/dir/y", "hv/other"):
        kv.create_or_update_secret(path, {"k": "v"})
    r["list"] = kv.list_secrets("hv")
    r["list_strict"] = strict.secrets.kv.v2.list_secrets("hv/")
    r["list_missing"] = _error(lambda: kv.list_secrets("hv/nothing"))
    r["meta_update"] = kv.update_metadata(
        "hv/app", max_versions=5, custom_metadata={"owner": "ops", "n": 1}
    ).status_code
    r["meta"] = kv.read_secret_metadata("hv/app")
    r["delete_latest"] = kv.delete_latest_version_of_secret("hv/app").status_code
    r["read_deleted"] = kv.read_secret_version("hv/app", raise_on_deleted_version=False)
    r["read_deleted_raise"] = _error(
        lambda: kv.read_secret_version("hv/app", raise_on_deleted_version=True)
    )
    r["delete_versions"] = kv.delete_secret_versions("hv/app", [1]).status_code
    r["undelete"] = kv.undelete_secret_versions("hv/app", [1, 3]).status_code
    r["read_undeleted"] = kv.read_secret_version("hv/app", version=3, raise_on_deleted_version=True)
    r["destroy"] = kv.destroy_secret_versions("hv/app", [2]).status_code
    r["read_destroyed"] = _error(
        lambda: kv.read_secret_version("hv/app", version=2, raise_on_deleted_version=False)
    )
    r["meta_after"] = kv.read_secret_metadata("hv/app")
    r["delete_metadata"] = kv.delete_metadata_and_all_versions("hv/other").status_code
    r["read_after_metadata_delete"] = _error(lambda: kv.read_secret_metadata("hv/other"))
    r["health"] = client.sys.read_health_status(method="GET")
    r["health_head"] = client.sys.read_health_status().status_code
    r["is_sealed"] = client.sys.is_sealed()
    r["seal_status"] = client.sys.read_seal_status()
    r["lookup_self"] = client.auth.token.lookup_self()
    r["seal"] = client.sys.seal().status_code
    r["is_sealed_after_seal"] = client.sys.is_sealed()
    r["seal_status_sealed"] = client.sys.read_seal_status()
    r["read_sealed"] = _error(
        lambda: kv.read_secret_version("hv/app", raise_on_deleted_version=True)
    )
    r["health_sealed"] = client.sys.read_health_status(method="GET").status_code
    r["unseal"] = client.sys.submit_unseal_key(t.unseal_key)
    r["read_after_unseal"] = kv.read_secret_version("hv/app", raise_on_deleted_version=True)
    for c in (client, strict):
        c.adapter.close()
    return r


def normalise(value: Any, ignore: set[str], keys_only: bool = False) -> Any:
    """Times become "<time>"; ignored keys are dropped; with `keys_only`, only key sets stay."""
    if isinstance(value, dict):
        if keys_only:
            return sorted(k for k in value if k not in ignore)
        return {k: normalise(v, ignore) for k, v in value.items() if k not in ignore}
    if isinstance(value, list | tuple):
        return [normalise(v, ignore) for v in value]
    if isinstance(value, str) and _TIME.fullmatch(value):
        return "<time>"
    return value


@pytest.fixture(scope="module")
def results(servers: tuple[Strongroom, Target, Target]) -> tuple[dict[str, Any], dict[str, Any]]:
    _, ours, bao = servers
    return scenario(ours), scenario(bao)


def test_every_hvac_call_answers_as_openbao(
    results: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    ours, bao = results
    assert ours.keys() == bao.keys()
    for step in bao:
        ignore = DIFFERENT["*"] | DIFFERENT.get(step, set())
        if step in KEYS_ONLY:
            mine = normalise(ours[step]["data"], ignore, keys_only=True)
            theirs = normalise(bao[step]["data"], ignore, keys_only=True)
        else:
            mine, theirs = normalise(ours[step], ignore), normalise(bao[step], ignore)
        assert mine == theirs, f"step {step!r} differs"


def test_scenario_values(results: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The semantics behind the shapes (the same on both servers, checked on ours)."""
    r, _ = results
    assert r["is_authenticated"] and not r["is_authenticated_bad"]
    assert r["forbidden"] == ("Forbidden", ["permission denied"])
    assert r["cas_conflict"] == (
        "InvalidRequest",
        ["check-and-set parameter did not match the current version"],
    )
    assert r["read_missing"] == ("InvalidPath", [])
    assert r["read_latest"]["data"]["data"] == {"user": "u", "password": "p2"}
    assert r["read_v1"]["data"]["data"]["password"] == "p1"
    assert r["read_patched"]["data"]["data"] == {"user": "u", "password": "p2", "port": "5432"}
    assert r["list"]["data"]["keys"] == ["app", "dir/", "new", "other"]
    assert r["meta"]["data"]["custom_metadata"] == {"owner": "ops", "n": "1"}
    assert r["read_deleted"]["data"]["data"] is None
    assert r["read_destroyed"][0] == "InvalidPath"
    assert r["meta_after"]["data"]["versions"]["2"]["destroyed"] is True
    assert r["read_sealed"][0] == "VaultDown" and r["health_sealed"] == 503
    assert r["is_sealed_after_seal"] and not r["unseal"]["sealed"]
    assert r["read_after_unseal"]["data"]["metadata"]["version"] == 3


def test_errors_have_vaults_exact_content_type(
    servers: tuple[Strongroom, Target, Target], results: object
) -> None:
    ours, _, _ = servers  # `results`: the scenario wrote the secrets read here
    headers = {"X-Vault-Token": ours.token()}
    missing = httpx.get(f"{ours.url}/v1/secret/data/hv/none", headers=headers)
    assert missing.status_code == 404 and missing.json() == {"errors": []}
    assert missing.headers["content-type"] == "application/json"
    denied = httpx.get(f"{ours.url}/v1/secret/data/hv/app")
    assert denied.status_code == 403 and denied.json() == {"errors": ["permission denied"]}
    assert denied.headers["content-type"] == "application/json"
    bad = httpx.patch(f"{ours.url}/v1/secret/data/hv/app", headers=headers, json={"data": {}})
    assert bad.status_code == 415 and bad.headers["content-type"] == "application/json"
    merged = httpx.patch(
        f"{ours.url}/v1/secret/data/hv/app",
        content=b'{"data":{"port":null}}',
        headers={**headers, "Content-Type": "application/merge-patch+json"},
    )
    assert merged.status_code == 200
    bearer = httpx.get(
        f"{ours.url}/v1/secret/data/hv/app", headers={"Authorization": f"Bearer {ours.token()}"}
    )
    assert bearer.status_code == 200 and "port" not in bearer.json()["data"]["data"]
    deep: dict[str, Any] = {}
    for _ in range(40):
        deep = {"a": deep}
    nested = httpx.post(f"{ours.url}/v1/secret/data/hv/deep", headers=headers, json={"data": deep})
    assert nested.status_code == 400 and "nested too deeply" in nested.json()["errors"][0]
    unknown = httpx.get(f"{ours.url}/v1/kv/data/x", headers=headers)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/json"


def test_policies_apply_and_v1_is_audited(
    servers: tuple[Strongroom, Target, Target], results: object
) -> None:
    ours, _, _ = servers  # `results`: the scenario wrote the secrets read here
    local = open_vault(ours.dsn, fast_config(auto_lock=False))
    try:
        local.access.write_policy("kv2-ro", "hv/dir/*: read, list")
        app = hvac.Client(url=ours.url, token=ours.token("app", 42, ("kv2-ro",)))
        kv = app.secrets.kv.v2
        assert kv.read_secret_version("hv/dir/x", raise_on_deleted_version=True)["data"][
            "data"
        ] == {"k": "v"}
        assert kv.list_secrets("hv/dir")["data"]["keys"] == ["x", "y"]
        with pytest.raises(hx.Forbidden):
            kv.create_or_update_secret("hv/dir/x", {"k": "w"})
        with pytest.raises(hx.Forbidden):
            kv.read_secret_version("hv/app", raise_on_deleted_version=True)
        with pytest.raises(hx.Forbidden):
            app.sys.seal()
        assert app.is_authenticated()
        app.adapter.close()
        local.unlock(MASTER_KEY)
        reads = local.audit_logs(path="hv/dir/x", user_id=42)
        assert [(e.action, e.success) for e in reads[:2]] == [("write", False), ("read", True)]
        assert reads[0].error == "PermissionDenied" and reads[0].ip_address == "127.0.0.1"
        # The scenario's operations only: hvac's patch is a read and a write, and the raw PATCH
        # test may run on another xdist worker (with a server of its own).
        assert {e.action for e in local.audit_logs(path="hv/app", user_id=1, limit=500)} >= {
            "create",
            "update",
            "read",
            "soft_delete",
            "undelete",
            "destroy",
            "write_metadata",
            "read_metadata",
        }
        assert local.verify_audit().ok
    finally:
        local.close()
