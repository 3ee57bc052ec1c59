"""hvac against our real server AND a real OpenBao dev server: secrets engine mounts
(`sys.enable_secrets_engine`, `list_mounted_secrets_engines`, `read_mount_configuration`,
`tune_mount_configuration`, `move_backend`, `disable_secrets_engine`) and the whole
`secrets.kv.v1` / `secrets.kv.v2` method sets at non-default mounts, compared field by field.

OpenBao upgrades a KV mount and moves a mount in the background: the scenario polls (with a
deadline) until the result is visible, on both servers alike. The Strongroom-only checks
(administrators only, `secret/` refused, policies naming mount paths, audit) follow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import hvac
import pytest
from hvac import exceptions as hx

from strongroom import open_vault
from tests.conftest import MASTER_KEY, fast_config
from tests.integration.kv2_support import ROOT_TOKEN, Strongroom, bao_dev_server, strongroom_server
from tests.integration.test_kv2_hvac import Target, normalise

#: Mounts the scenario makes (OpenBao also lists its own sys/, identity/, cubbyhole/).
MOUNTS = ("secret/", "team/", "legacy/", "plain/", "a/b/", "moved/")
#: Fields that legitimately differ, by step ("*": every step).
DIFFERENT: dict[str, set[str]] = {
    "*": {"request_id", "mount_type", "accessor", "uuid", "running_plugin_version"}
    # OpenBao-only metadata check-and-set fields (not in Vault, not served by us).
    | {"current_metadata_version", "metadata_cas_required"},
    # Upgrade and move messages describe two implementations (background job vs. at once).
    "upgrade": {"warnings"},
    "move": {"migration_id", "warnings"},
}


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


def _eventually(fn: Callable[[], Any], deadline_s: float = 15.0) -> Any:
    """`fn()` once it stops raising (OpenBao finishes upgrades and moves in the background)."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return fn()
        except (hx.VaultError, KeyError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _mine(listing: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in listing["data"].items() if k in MOUNTS}


def _sys_scenario(client: hvac.Client, r: dict[str, Any]) -> None:
    sys = client.sys
    r["enable_v2"] = sys.enable_secrets_engine(
        "kv",
        path="team",
        description="team a",
        config={"default_lease_ttl": "30m", "max_lease_ttl": "1h"},
        options={"version": "2"},
    ).status_code
    r["enable_v1"] = sys.enable_secrets_engine(
        "kv", path="legacy", description="old", options={"version": "1"}
    ).status_code
    r["enable_plain"] = sys.enable_secrets_engine("kv", path="plain").status_code
    r["enable_nested"] = sys.enable_secrets_engine(
        "kv", path="a/b", options={"version": "2"}
    ).status_code
    r["enable_existing"] = _error(lambda: sys.enable_secrets_engine("kv", path="team"))
    r["enable_inside"] = _error(lambda: sys.enable_secrets_engine("kv", path="team/inner"))
    r["enable_reserved"] = _error(lambda: sys.enable_secrets_engine("kv", path="sys/x"))[0]
    r["enable_unknown_type"] = _error(lambda: sys.enable_secrets_engine("nope", path="db"))[0]
    r["list"] = _mine(sys.list_mounted_secrets_engines())
    r["read_config"] = sys.read_mount_configuration("team")
    r["read_config_v1"] = sys.read_mount_configuration("legacy")
    r["read_mount"] = client.adapter.get("/v1/sys/mounts/team")
    r["read_missing"] = _error(lambda: sys.read_mount_configuration("nothere"))[0]
    r["tune"] = sys.tune_mount_configuration(
        "team", default_lease_ttl="10m", description="tuned", listing_visibility="hidden"
    ).status_code
    r["read_tuned"] = sys.read_mount_configuration("team")
    r["ui_mount"] = client.adapter.get("/v1/sys/internal/ui/mounts/team/app/db")
    r["ui_mount_v1"] = client.adapter.get("/v1/sys/internal/ui/mounts/legacy/x")


def _kv2_scenario(client: hvac.Client, r: dict[str, Any]) -> None:
    kv = client.secrets.kv.v2
    m = "team"
    r["v2_configure"] = kv.configure(max_versions=4, mount_point=m).status_code
    r["v2_read_config"] = kv.read_configuration(mount_point=m)
    r["v2_secret_config"] = kv.read_configuration()
    r["v2_write"] = kv.create_or_update_secret("app/db", {"user": "u", "pw": "1"}, mount_point=m)
    r["v2_write_cas"] = kv.create_or_update_secret("app/db", {"pw": "2"}, cas=1, mount_point=m)
    r["v2_cas_conflict"] = _error(
        lambda: kv.create_or_update_secret("app/db", {"pw": "x"}, cas=1, mount_point=m)
    )
    with pytest.warns(DeprecationWarning, match="raise_on_deleted_version"):
        r["v2_patch"] = kv.patch("app/db", {"port": "5432"}, mount_point=m)
    r["v2_read"] = kv.read_secret_version("app/db", mount_point=m, raise_on_deleted_version=True)
    r["v2_read_v1"] = kv.read_secret_version(
        "app/db", version=1, mount_point=m, raise_on_deleted_version=True
    )
    r["v2_subkeys"] = client.adapter.get(f"/v1/{m}/subkeys/app/db")
    kv.create_or_update_secret("app/db", {"where": "secret"})
    kv.create_or_update_secret("app/other", {"k": "v"}, mount_point=m)
    r["v2_isolated"] = kv.read_secret_version(
        "app/db", mount_point=m, raise_on_deleted_version=True
    )["data"]["data"]
    r["v2_list"] = kv.list_secrets("app", mount_point=m)
    r["v2_update_meta"] = kv.update_metadata(
        "app/db", max_versions=3, custom_metadata={"o": "ops"}, mount_point=m
    ).status_code
    r["v2_meta"] = kv.read_secret_metadata("app/db", mount_point=m)
    r["v2_delete_latest"] = kv.delete_latest_version_of_secret("app/db", mount_point=m).status_code
    r["v2_delete"] = kv.delete_secret_versions("app/db", [1], mount_point=m).status_code
    r["v2_undelete"] = kv.undelete_secret_versions("app/db", [1, 3], mount_point=m).status_code
    r["v2_destroy"] = kv.destroy_secret_versions("app/db", [2], mount_point=m).status_code
    r["v2_meta_after"] = kv.read_secret_metadata("app/db", mount_point=m)
    r["v2_delete_all"] = kv.delete_metadata_and_all_versions("app/other", mount_point=m).status_code
    r["v2_nested"] = kv.create_or_update_secret("x", {"n": "1"}, mount_point="a/b")
    r["v2_nested_read"] = kv.read_secret_version(
        "x", mount_point="a/b", raise_on_deleted_version=True
    )


def _kv1_scenario(client: hvac.Client, r: dict[str, Any]) -> None:
    kv = client.secrets.kv.v1
    m = "legacy"
    r["v1_create"] = kv.create_or_update_secret("app/db", {"x": "1"}, mount_point=m).status_code
    r["v1_update"] = kv.create_or_update_secret("app/db", {"x": "2"}, mount_point=m).status_code
    kv.create_or_update_secret("app/dir/y", {"y": "1"}, mount_point=m)
    r["v1_read"] = kv.read_secret("app/db", mount_point=m)
    r["v1_list"] = kv.list_secrets("app", mount_point=m)
    r["v1_missing"] = _error(lambda: kv.read_secret("app/none", mount_point=m))
    r["v1_delete"] = kv.delete_secret("app/db", mount_point=m).status_code
    r["v1_read_deleted"] = _error(lambda: kv.read_secret("app/db", mount_point=m))
    kv.create_or_update_secret("keep", {"k": "v"}, mount_point="plain")
    r["upgrade"] = client.sys.tune_mount_configuration("plain", options={"version": "2"})
    r["after_upgrade"] = _eventually(
        lambda: client.secrets.kv.v2.read_secret_version(
            "keep", mount_point="plain", raise_on_deleted_version=True
        )["data"]["data"]
    )


def _move_disable_scenario(client: hvac.Client, r: dict[str, Any]) -> None:
    sys, kv = client.sys, client.secrets.kv.v2
    r["move_onto_existing"] = _error(lambda: sys.move_backend("team", "legacy"))[0]
    r["move_secret_missing"] = _error(lambda: sys.move_backend("nothing", "else"))[0]
    r["move"] = sys.move_backend("team", "moved")
    migration = r["move"]["data"]["migration_id"]

    def moved() -> dict[str, Any]:
        status: dict[str, Any] = client.adapter.get(f"/v1/sys/remount/status/{migration}")
        assert status["data"]["migration_info"]["status"] == "success"
        return status

    r["move_status"] = normalise(_eventually(moved), {"migration_id"})
    r["read_moved"] = kv.read_secret_version(
        "app/db", mount_point="moved", raise_on_deleted_version=True
    )["data"]["data"]
    r["read_old_path"] = _error(
        lambda: kv.read_secret_version("app/db", mount_point="team", raise_on_deleted_version=True)
    )
    r["list_after_move"] = _mine(sys.list_mounted_secrets_engines())
    r["disable"] = sys.disable_secrets_engine("moved").status_code
    r["disable_missing"] = sys.disable_secrets_engine("nothere").status_code
    r["enable_again"] = sys.enable_secrets_engine(
        "kv", path="moved", options={"version": "2"}
    ).status_code
    r["empty_after_reenable"] = _error(lambda: kv.list_secrets("", mount_point="moved"))
    r["secret_untouched"] = kv.read_secret_version("app/db", raise_on_deleted_version=True)["data"][
        "data"
    ]
    r["list_final"] = _mine(sys.list_mounted_secrets_engines())


def scenario(t: Target) -> dict[str, Any]:
    client = hvac.Client(url=t.url, token=t.token)
    r: dict[str, Any] = {}
    _sys_scenario(client, r)
    _kv2_scenario(client, r)
    _kv1_scenario(client, r)
    _move_disable_scenario(client, r)
    client.adapter.close()
    return r


@pytest.fixture(scope="module")
def results(servers: tuple[Strongroom, Target, Target]) -> tuple[dict[str, Any], dict[str, Any]]:
    _, ours, bao = servers
    return scenario(ours), scenario(bao)


def test_every_mount_call_answers_as_openbao(
    results: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    ours, bao = results
    assert ours.keys() == bao.keys()
    for step in bao:
        ignore = DIFFERENT["*"] | DIFFERENT.get(step, set())
        mine, theirs = normalise(ours[step], ignore), normalise(bao[step], ignore)
        assert mine == theirs, f"step {step!r} differs:\n ours {mine}\n bao  {theirs}"


def test_mount_scenario_values(results: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The semantics behind the shapes (the same on both servers, checked on ours)."""
    r, _ = results
    assert r["enable_existing"] == ("InvalidRequest", ["path is already in use at team/"])
    assert r["enable_reserved"] == r["enable_unknown_type"] == "InvalidRequest"
    assert r["v2_isolated"] == {"pw": "2", "port": "5432"}
    assert r["v2_list"]["data"]["keys"] == ["db", "other"]
    assert r["v1_read"]["data"] == {"x": "2"}
    assert r["v1_list"]["data"]["keys"] == ["db", "dir/"]
    assert r["after_upgrade"] == {"k": "v"}
    assert r["read_moved"] == {"pw": "2", "port": "5432"}
    assert r["empty_after_reenable"][0] == "InvalidPath"
    assert r["secret_untouched"] == {"where": "secret"}
    assert sorted(r["list_final"]) == ["a/b/", "legacy/", "moved/", "plain/", "secret/"]


def test_only_administrators_manage_mounts_and_secret_stays(
    servers: tuple[Strongroom, Target, Target], results: object
) -> None:
    ours, _, _ = servers
    app = hvac.Client(url=ours.url, token=ours.token("app", 42))
    admin = hvac.Client(url=ours.url, token=ours.token("Admin", 7))
    before = admin.sys.list_mounted_secrets_engines()["data"]
    calls: list[Callable[[], object]] = [
        lambda: app.sys.enable_secrets_engine("kv", path="mine"),
        lambda: app.sys.disable_secrets_engine("legacy"),
        lambda: app.sys.tune_mount_configuration("legacy", description="x"),
        lambda: app.sys.move_backend("legacy", "elsewhere"),
    ]
    for call in calls:
        with pytest.raises(hx.Forbidden):
            call()
    with pytest.raises(hx.InvalidRequest, match="cannot disable secret/"):
        admin.sys.disable_secrets_engine("secret")
    with pytest.raises(hx.InvalidRequest, match="cannot move secret/"):
        admin.sys.move_backend("secret", "other")
    with pytest.raises(hx.InvalidRequest):
        admin.sys.tune_mount_configuration("legacy", options={"version": "1"}, max_lease_ttl="x")
    assert admin.sys.list_mounted_secrets_engines()["data"] == before
    # Reading mounts is for administrators, as in Vault without a sys/mounts policy; the UI
    # preflight shows a caller only secret/ and the mounts its policies reach.
    for read in (
        app.sys.list_mounted_secrets_engines,
        lambda: app.sys.read_mount_configuration("legacy"),
    ):
        with pytest.raises(hx.Forbidden):
            read()
    ui = httpx.get(f"{ours.url}/v1/sys/internal/ui/mounts", headers={"X-Vault-Token": app.token})
    assert list(ui.json()["data"]["secret"]) == ["secret/"]
    hidden = httpx.get(
        f"{ours.url}/v1/sys/internal/ui/mounts/legacy/app", headers={"X-Vault-Token": app.token}
    )
    assert hidden.status_code == 403, hidden.text  # as for a mount that does not exist
    app.adapter.close()
    admin.adapter.close()


def test_policies_name_mount_paths_and_audit_records_the_mount(
    servers: tuple[Strongroom, Target, Target], results: object
) -> None:
    ours, _, _ = servers
    local = open_vault(ours.dsn, fast_config(auto_lock=False))
    try:
        local.access.write_policy("mounts-ro", "a/b/data/*: read\nlegacy/app/*: read, list")
        app = hvac.Client(url=ours.url, token=ours.token("app", 43, ("mounts-ro",)))
        ui = httpx.get(
            f"{ours.url}/v1/sys/internal/ui/mounts", headers={"X-Vault-Token": app.token}
        )
        assert sorted(ui.json()["data"]["secret"]) == ["a/b/", "legacy/", "secret/"]
        local.access.write_policy("everything-in-secret", "*: read, list")
        wide = ours.token("app", 44, ("everything-in-secret",))
        ui = httpx.get(f"{ours.url}/v1/sys/internal/ui/mounts", headers={"X-Vault-Token": wide})
        assert list(ui.json()["data"]["secret"]) == ["secret/"]  # `*` is a secret/ rule only
        assert app.secrets.kv.v2.read_secret_version(
            "x", mount_point="a/b", raise_on_deleted_version=True
        )["data"]["data"] == {"n": "1"}
        assert app.secrets.kv.v1.read_secret("app/dir/y", mount_point="legacy")["data"] == {
            "y": "1"
        }
        with pytest.raises(hx.Forbidden):  # the same key at secret/: another secret
            app.secrets.kv.v2.read_secret_version("x", raise_on_deleted_version=True)
        with pytest.raises(hx.Forbidden):
            app.secrets.kv.v2.create_or_update_secret("x", {"n": "2"}, mount_point="a/b")
        app.adapter.close()
        local.unlock(MASTER_KEY)
        reads = local.audit_logs(path="a/b:x", user_id=43)
        assert [(e.action, e.success) for e in reads[:1]] == [("read", True)]
        assert {e.action for e in local.audit_logs(path="legacy/", user_id=1)} >= {"enable_mount"}
        assert local.verify_audit().ok
    finally:
        local.close()
    for path in ("nomount/data/x", "legacy/app/dir/y", "a/b/data/x"):  # no mount names leak
        anonymous = httpx.get(f"{ours.url}/v1/{path}")
        assert anonymous.status_code == 403, path
        assert anonymous.json() == {"errors": ["permission denied"]}
    headers = {"X-Vault-Token": ours.token()}
    unknown = httpx.get(f"{ours.url}/v1/nomount/data/x", headers=headers)
    assert unknown.status_code == 404
    assert unknown.json() == {
        "errors": ['no handler for route "nomount/data/x". route entry not found.']
    }


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "sys/mounts/bad1", {"type": 5}),
        ("POST", "sys/mounts/bad2", {"type": ["kv"]}),
        ("POST", "sys/mounts/bad3", {"type": "kv", "options": "2"}),
        ("POST", "sys/mounts/bad4", {"type": "kv", "options": {"version": {"a": 1}}}),
        ("POST", "sys/mounts/bad5", {"type": "kv", "config": [1]}),
        ("POST", "sys/mounts/bad6", {"type": "kv", "config": {"default_lease_ttl": True}}),
        ("POST", "sys/mounts/bad7", {"type": "kv", "config": {"max_lease_ttl": 1e300}}),
        ("POST", "sys/mounts/bad8", {"type": "kv", "description": 5}),
        ("POST", "sys/mounts/bad8", {}),
        ("POST", "sys/mounts/caf%C3%A9", {"type": "kv"}),
        ("POST", "sys/mounts/" + "a" * 300, {"type": "kv"}),
        ("POST", "sys/mounts/a..b", {"type": "kv"}),
        ("POST", "sys/mounts/legacy/tune", {"default_lease_ttl": {"a": 1}}),
        ("POST", "sys/mounts/legacy/tune", {"listing_visibility": ["x"]}),
        ("POST", "sys/mounts/legacy/tune", {"options": {"version": "3"}}),
        ("POST", "sys/remount", {"from": 1, "to": "x"}),
        ("POST", "sys/remount", {"from": "legacy"}),
        ("POST", "sys/remount", {"from": "legacy", "to": "a b"}),
        ("DELETE", "sys/mounts/sys", None),
    ],
)
def test_bad_mount_requests_are_400_and_change_nothing(
    servers: tuple[Strongroom, Target, Target],
    results: object,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    ours, _, _ = servers
    headers = {"X-Vault-Token": ours.token()}
    before = httpx.get(f"{ours.url}/v1/sys/mounts", headers=headers).json()["data"]
    answer = httpx.request(method, f"{ours.url}/v1/{path}", headers=headers, json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"] and answer.headers["content-type"] == "application/json"
    assert httpx.get(f"{ours.url}/v1/sys/mounts", headers=headers).json()["data"] == before
