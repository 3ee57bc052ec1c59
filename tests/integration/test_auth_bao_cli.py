"""The real `bao` CLI against our server for auth and policies (issue 15): `bao policy write`
with an HCL file, `bao token create -policy=…`, `bao token revoke`, `bao login -method=userpass`;
the same commands against a real OpenBao dev server give the same outcome."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom import open_vault
from tests.conftest import MASTER_KEY, fast_config
from tests.integration.kv2_support import (
    ROOT_TOKEN,
    bao_binary,
    bao_dev_server,
    strongroom_server,
)

PASSWORD = "correct-horse-battery"
HCL = 'path "secret/data/team/*" {\n  capabilities = ["read", "create", "update"]\n}\n'


def run(url: str, home: Path, token: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update({"HOME": str(home), "VAULT_ADDR": url})
    if token is not None:
        env["VAULT_TOKEN"] = token
    return subprocess.run(
        [bao_binary(), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def scenario(url: str, admin: str, home: Path) -> dict[str, Any]:
    r: dict[str, Any] = {}
    policy_file = home / "team.hcl"
    policy_file.write_text(HCL)
    r["policy_write"] = run(
        url, home, admin, "policy", "write", "team", str(policy_file)
    ).returncode
    r["policy_listed"] = "team" in run(url, home, admin, "policy", "list").stdout
    made = run(url, home, admin, "token", "create", "-policy=team", "-format=json")
    assert made.returncode == 0, made.stderr
    child = json.loads(made.stdout)["auth"]["client_token"]
    r["child_write"] = run(url, home, child, "kv", "put", "secret/team/a", "k=v").returncode
    r["child_read_other"] = run(url, home, child, "kv", "get", "secret/other/b").returncode
    r["revoke"] = run(url, home, admin, "token", "revoke", child).returncode
    r["after_revoke"] = run(url, home, child, "token", "lookup").returncode
    login = run(url, home, None, "login", "-method=userpass", "-format=json",
                "username=uma", f"password={PASSWORD}")  # fmt: skip
    assert login.returncode == 0, login.stderr
    r["login_auth_keys"] = sorted(json.loads(login.stdout)["auth"])
    r["bad_login"] = run(url, home, None, "login", "-method=userpass",
                         "username=uma", "password=wrong-password").returncode  # fmt: skip
    wrote = run(url, home, admin, "write", "auth/approle/role/ci", "token_policies=team",
                "secret_id_num_uses=2", "token_ttl=10m")  # fmt: skip
    r["approle_write"] = wrote.returncode
    role_id = json.loads(
        run(url, home, admin, "read", "-format=json", "auth/approle/role/ci/role-id").stdout
    )["data"]["role_id"]
    made_sid = run(
        url, home, admin, "write", "-f", "-format=json", "auth/approle/role/ci/secret-id"
    )
    secret = json.loads(made_sid.stdout)["data"]["secret_id"]
    logged = run(url, home, None, "write", "-format=json", "auth/approle/login",
                 f"role_id={role_id}", f"secret_id={secret}")  # fmt: skip
    assert logged.returncode == 0, logged.stderr
    approle_token = json.loads(logged.stdout)["auth"]["client_token"]
    r["approle_token_write"] = run(
        url, home, approle_token, "kv", "put", "secret/team/b", "k=v"
    ).returncode
    r["approle_bad_login"] = run(url, home, None, "write", "auth/approle/login",
                                 f"role_id={role_id}", "secret_id=nope").returncode  # fmt: skip
    return r


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    sr_home, bao_home = tmp_path_factory.mktemp("sr"), tmp_path_factory.mktemp("bao")
    with strongroom_server(sr_home, MASTER_KEY) as ours, bao_dev_server(bao_home) as bao:
        vault = open_vault(ours.dsn, fast_config())
        vault.access.create_user("uma", PASSWORD, "App", policies=["team"])
        vault.close()
        run(bao.url, bao_home, ROOT_TOKEN, "auth", "enable", "userpass")
        run(bao.url, bao_home, ROOT_TOKEN, "auth", "enable", "approle")
        run(bao.url, bao_home, ROOT_TOKEN, "write", "auth/userpass/users/uma",
            f"password={PASSWORD}", "policies=team")  # fmt: skip
        yield scenario(ours.url, ours.token(), sr_home), scenario(bao.url, ROOT_TOKEN, bao_home)


def test_bao_cli_answers_as_openbao(results: tuple[dict[str, Any], dict[str, Any]]) -> None:
    ours, bao = results
    ignored = {"login_auth_keys"}
    assert {k: v for k, v in ours.items() if k not in ignored} == {
        k: v for k, v in bao.items() if k not in ignored
    }
    assert ours["child_write"] == 0 and ours["child_read_other"] != 0 and ours["after_revoke"] != 0
    assert set(bao["login_auth_keys"]) - {"identity_policies", "entity_id"} <= set(
        ours["login_auth_keys"]
    )
