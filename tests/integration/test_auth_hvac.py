"""hvac's token, userpass and ACL-policy calls against our real server AND a real OpenBao dev
server: the same scenario on both, then response shapes (the key sets of `auth` and `data`)
compared, and the allowed/refused decisions of a policy compared exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import hvac
import pytest
from hvac import exceptions as hx

from strongroom import open_vault
from tests.conftest import (
    MASTER_KEY,
    drop_pg_schema,
    fast_config,
    make_pg_schema,
)
from tests.integration.kv2_support import ROOT_TOKEN, bao_dev_server, strongroom_server

HCL = """
path "secret/data/app/*" {
  capabilities = ["read", "create", "update"]
}
path "secret/metadata/app/*" {
  capabilities = ["list"]
}
"""
PASSWORD = "correct-horse-battery"

Setup = Callable[[hvac.Client], None]


def _refused(fn: Callable[[], object]) -> str:
    try:
        fn()
    except hx.VaultError as exc:
        return type(exc).__name__
    return "allowed"


def scenario(url: str, admin_token: str, add_user: Setup) -> dict[str, Any]:
    admin = hvac.Client(url=url, token=admin_token)
    r: dict[str, Any] = {}
    admin.sys.create_or_update_acl_policy("app", HCL)
    r["policy_listed"] = "app" in admin.sys.list_acl_policies()["data"]["keys"]
    kv = admin.secrets.kv.v2
    kv.create_or_update_secret("app/one", secret={"v": "1"})
    kv.create_or_update_secret("other/two", secret={"v": "2"})
    made = admin.auth.token.create(policies=["app"], ttl="1h", explicit_max_ttl="2h")
    r["create"] = made
    child = hvac.Client(url=url, token=made["auth"]["client_token"])
    r["lookup_self"] = child.auth.token.lookup_self()
    ckv = child.secrets.kv.v2
    strict = {"raise_on_deleted_version": True}
    r["decisions"] = {
        "read app": _refused(lambda: ckv.read_secret_version("app/one", **strict)),
        "write app": _refused(lambda: ckv.create_or_update_secret("app/new", secret={"a": "b"})),
        "list app": _refused(lambda: ckv.list_secrets("app")),
        "read other": _refused(lambda: ckv.read_secret_version("other/two", **strict)),
        "delete app": _refused(lambda: ckv.delete_metadata_and_all_versions("app/one")),
    }  # fmt: skip
    r["renew_self"] = child.auth.token.renew_self(increment="30m")
    accessor = made["auth"]["accessor"]
    r["lookup_accessor"] = admin.auth.token.lookup_accessor(accessor)
    r["revoke_accessor"] = admin.auth.token.revoke_accessor(accessor).status_code
    r["child_after_revoke"] = child.is_authenticated()
    other = hvac.Client(
        url=url, token=admin.auth.token.create(policies=["app"])["auth"]["client_token"]
    )
    r["revoke_self"] = other.auth.token.revoke_self().status_code
    r["other_after_revoke"] = other.is_authenticated()
    add_user(admin)
    r["userpass"] = hvac.Client(url=url).auth.userpass.login("alice", PASSWORD)
    r["bad_password"] = _refused(
        lambda: hvac.Client(url=url).auth.userpass.login("alice", "nope-nope-nope")
    )
    approle = admin.auth.approle
    approle.create_or_update_approle(
        "ci", token_policies=["app"], token_ttl="10m", secret_id_num_uses=1
    )
    rid = approle.read_role_id("ci")["data"]["role_id"]
    made_sid = approle.generate_secret_id("ci")["data"]
    r["secret_id_keys"] = sorted(made_sid)
    r["approle"] = hvac.Client(url=url).auth.approle.login(rid, made_sid["secret_id"])
    r["approle_used_up"] = _refused(
        lambda: hvac.Client(url=url).auth.approle.login(rid, made_sid["secret_id"])
    )
    r["approle_bad_secret"] = _refused(
        lambda: hvac.Client(url=url).auth.approle.login(rid, "not-a-secret-id")
    )
    r["bad_hcl"] = _refused(lambda: admin.sys.create_or_update_acl_policy("bad", 'path "x" {'))
    admin.adapter.close()
    return r


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    dsn = None
    if request.param == "postgresql":
        if not request.getfixturevalue("pg_ready"):
            pytest.skip("PostgreSQL is not reachable")
        dsn, schema = make_pg_schema()
    try:
        with (
            strongroom_server(tmp_path_factory.mktemp("sr"), MASTER_KEY, dsn) as ours,
            bao_dev_server(tmp_path_factory.mktemp("bao")) as bao,
        ):

            def ours_user(_: hvac.Client) -> None:
                vault = open_vault(ours.dsn, fast_config())
                try:
                    vault.access.create_user("alice", PASSWORD, "App", policies=["app"])
                finally:
                    vault.close()

            def bao_user(admin: hvac.Client) -> None:
                admin.sys.enable_auth_method("userpass")
                admin.auth.userpass.create_or_update_user("alice", PASSWORD, policies=["app"])
                admin.sys.enable_auth_method("approle")

            yield (
                scenario(ours.url, ours.token(), ours_user),
                scenario(bao.url, ROOT_TOKEN, bao_user),
            )
    finally:
        if dsn is not None:
            drop_pg_schema(schema)


def _keys(value: dict[str, Any] | None) -> list[str]:
    return sorted(value or {})


#: Keys OpenBao sends that we do not (no entities, no identity policies, no CIDR-bound tokens;
#: the time of the last renewal is not recorded).
BAO_ONLY = {
    "identity_policies",
    "entity_id",
    "bound_cidrs",
    "external_namespace_policies",
    "ttl",
    "meta",
    "last_renewal",
    "last_renewal_time",
}


@pytest.mark.parametrize("step", ["create", "renew_self", "userpass", "approle"])
def test_auth_blocks_have_vaults_shape(
    results: tuple[dict[str, Any], dict[str, Any]], step: str
) -> None:
    ours, bao = results
    assert set(_keys(bao[step]["auth"])) - BAO_ONLY <= set(_keys(ours[step]["auth"])), step
    for key in ("client_token", "accessor", "policies", "lease_duration", "renewable"):
        assert type(ours[step]["auth"][key]) is type(bao[step]["auth"][key]), (step, key)
    assert sorted(set(_keys(ours[step])) - {"mount_type"}) == sorted(
        set(_keys(bao[step])) - {"mount_type"}
    )


@pytest.mark.parametrize("step", ["lookup_self", "lookup_accessor"])
def test_lookups_have_vaults_shape(
    results: tuple[dict[str, Any], dict[str, Any]], step: str
) -> None:
    ours, bao = results
    assert set(_keys(bao[step]["data"])) - BAO_ONLY <= set(_keys(ours[step]["data"])), step


def test_decisions_and_revocations_match_openbao(
    results: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    ours, bao = results
    for key in ("decisions", "policy_listed", "revoke_accessor", "child_after_revoke",
                "revoke_self", "other_after_revoke", "bad_password", "bad_hcl", "secret_id_keys",
                "approle_used_up", "approle_bad_secret"):  # fmt: skip
        assert ours[key] == bao[key], key
    assert ours["decisions"]["read other"] == "Forbidden"
    # Exactly the policies given, never the creator's role (OpenBao adds its `default`).
    assert ours["create"]["auth"]["policies"] == ["app"]
    assert set(bao["create"]["auth"]["policies"]) == {"app", "default"}
    assert ours["userpass"]["auth"]["client_token"].startswith("sr.")
