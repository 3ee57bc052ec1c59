"""HCL policies for mounts other than `secret/` (`sys/policies/acl`), checked with hvac against
our real server AND a real OpenBao dev server: a token holding a policy for a KV v2 mount
(`team/`) and a KV v1 mount (`legacy/`) is allowed and refused exactly as OpenBao decides
(read, list, write, metadata, delete, destroy, undelete), and a rule naming a mount never
reaches `secret/`'s key of the same name (nor a `secret/` rule another mount's key).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import hvac
import pytest
from hvac import exceptions as hx

from tests.conftest import MASTER_KEY
from tests.integration.kv2_support import ROOT_TOKEN, bao_dev_server, strongroom_server

HCL = """
path "team/data/app/*" {
  capabilities = ["read", "create", "update"]
}
path "team/metadata/app/*" {
  capabilities = ["read", "list"]
}
path "team/delete/app/*" {
  capabilities = ["update"]
}
path "team/subkeys/app/*" {
  capabilities = ["read"]
}
path "legacy/app/*" {
  capabilities = ["read", "list", "create"]
}
path "secret/data/shared/*" {
  capabilities = ["read"]
}
"""


def _outcome(fn: Callable[[], object]) -> str:
    try:
        fn()
    except hx.VaultError as exc:
        return type(exc).__name__
    return "allowed"


def _seed(admin: hvac.Client) -> None:
    admin.sys.enable_secrets_engine("kv", path="team", options={"version": "2"})
    admin.sys.enable_secrets_engine("kv", path="legacy", options={"version": "1"})
    kv2, kv1 = admin.secrets.kv.v2, admin.secrets.kv.v1
    for key in ("app/one", "app/two", "other/x"):
        kv2.create_or_update_secret(key, secret={"v": key}, mount_point="team")
    for key in ("app/a", "other/b"):
        kv1.create_or_update_secret(key, secret={"v": key}, mount_point="legacy")
    for key in ("shared/s", "team/data/app/one", "legacy/app/a", "app/one"):
        kv2.create_or_update_secret(key, secret={"v": key})


def scenario(url: str, admin_token: str) -> dict[str, str]:
    admin = hvac.Client(url=url, token=admin_token)
    _seed(admin)
    admin.sys.create_or_update_acl_policy("mounts", HCL)
    token = admin.auth.token.create(policies=["mounts"], ttl="1h")["auth"]["client_token"]
    user = hvac.Client(url=url, token=token)
    kv2, kv1 = user.secrets.kv.v2, user.secrets.kv.v1
    strict = {"raise_on_deleted_version": True}
    team: dict[str, Any] = {"mount_point": "team"}
    legacy: dict[str, Any] = {"mount_point": "legacy"}
    steps: dict[str, Callable[[], object]] = {
        "team read app": lambda: kv2.read_secret_version("app/one", **strict, **team),
        "team read other": lambda: kv2.read_secret_version("other/x", **strict, **team),
        "team list app": lambda: kv2.list_secrets("app", **team),
        "team list root": lambda: kv2.list_secrets("", **team),
        "team list other": lambda: kv2.list_secrets("other", **team),
        "team read metadata": lambda: kv2.read_secret_metadata("app/one", **team),
        "team read metadata other": lambda: kv2.read_secret_metadata("other/x", **team),
        "team subkeys": lambda: user.adapter.get("/v1/team/subkeys/app/one"),
        "team create": lambda: kv2.create_or_update_secret("app/new", secret={"a": 1}, **team),
        "team update": lambda: kv2.create_or_update_secret("app/one", secret={"a": 2}, **team),
        "team create other": lambda: kv2.create_or_update_secret("other/y", secret={}, **team),
        "team write metadata": lambda: kv2.update_metadata("app/one", max_versions=3, **team),
        "team delete latest": lambda: kv2.delete_latest_version_of_secret("app/one", **team),
        "team delete versions": lambda: kv2.delete_secret_versions("app/two", [1], **team),
        "team undelete": lambda: kv2.undelete_secret_versions("app/two", [1], **team),
        "team destroy": lambda: kv2.destroy_secret_versions("app/one", [1], **team),
        "team delete metadata": lambda: kv2.delete_metadata_and_all_versions("app/one", **team),
        "legacy read app": lambda: kv1.read_secret("app/a", **legacy),
        "legacy read other": lambda: kv1.read_secret("other/b", **legacy),
        "legacy list app": lambda: kv1.list_secrets("app", **legacy),
        "legacy list root": lambda: kv1.list_secrets("", **legacy),
        "legacy create": lambda: kv1.create_or_update_secret("app/new", secret={"a": 1}, **legacy),
        "legacy update": lambda: kv1.create_or_update_secret("app/a", secret={"a": 1}, **legacy),
        "legacy delete": lambda: kv1.delete_secret("app/a", **legacy),
        "secret read shared": lambda: user.secrets.kv.v2.read_secret_version("shared/s", **strict),
        # secret/'s keys named like a mount rule: the mount rule does not reach them.
        "secret read team-named key": lambda: kv2.read_secret_version(
            "team/data/app/one", **strict
        ),
        "secret read legacy-named key": lambda: kv2.read_secret_version("legacy/app/a", **strict),
        "secret read app/one": lambda: kv2.read_secret_version("app/one", **strict),
    }
    out = {name: _outcome(step) for name, step in steps.items()}
    out["policy read back"] = _outcome(lambda: admin.sys.read_acl_policy("mounts"))
    admin.adapter.close()
    user.adapter.close()
    return out


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, str], dict[str, str], str]]:
    with (
        strongroom_server(tmp_path_factory.mktemp("sr"), MASTER_KEY) as ours,
        bao_dev_server(tmp_path_factory.mktemp("bao")) as bao,
    ):
        mine = scenario(ours.url, ours.token())
        admin = hvac.Client(url=ours.url, token=ours.token())
        text = admin.sys.read_acl_policy("mounts")["data"]["policy"]
        # What a read returns is accepted back and means the same.
        admin.sys.create_or_update_acl_policy("again", text)
        again = admin.sys.read_acl_policy("again")["data"]["policy"]
        admin.adapter.close()
        yield mine, scenario(bao.url, ROOT_TOKEN), text + "\n--\n" + again


def test_mount_policy_decisions_match_openbao(
    results: tuple[dict[str, str], dict[str, str], str],
) -> None:
    ours, bao, _ = results
    assert ours == bao
    # The scenario exercises both outcomes on every kind of operation.
    assert ours["team read app"] == "allowed" and ours["team read other"] == "Forbidden"
    assert ours["team delete versions"] == "allowed" and ours["team destroy"] == "Forbidden"
    assert ours["legacy create"] == "allowed" and ours["legacy update"] == "Forbidden"
    assert ours["secret read team-named key"] == "Forbidden"
    assert ours["secret read legacy-named key"] == "Forbidden"


def test_policy_reads_back_as_mount_paths(
    results: tuple[dict[str, str], dict[str, str], str],
) -> None:
    text, _, again = results[2].partition("\n--\n")
    assert 'path "team/data/app/*"' in text and 'path "legacy/app/*"' in text
    assert 'path "team/delete/app/*" {\n  capabilities = ["update"]' in text
    assert "secret/data/team" not in text
    assert again == text
