"""`vaultctl user|token|policy` as subprocesses (issues #4 and #5)."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest

from tests.integration.cli_support import Vaultctl, one_error_line

JWT_SECRET = "x" * 40


@pytest.fixture
def vc(tmp_path: Path) -> Vaultctl:
    return Vaultctl(
        f"sqlite:///{tmp_path / 'v.db'}", tmp_path, extra_env={"VAULT_JWT_SECRET": JWT_SECRET}
    )


def test_users_policies_and_tokens(vc: Vaultctl) -> None:
    out = vc.ok(
        "user",
        "create",
        "--username",
        "alice",
        "--role",
        "Admin",
        "--password-stdin",
        input="correct horse battery\n",
    )
    assert "User created: alice" in out
    vc.ok(
        "user",
        "create",
        "--username",
        "app",
        "--role",
        "App",
        "--policy",
        "billing",
        "--password-stdin",
        input="another password 123\n",
    )
    listed = json.loads(vc.ok("user", "list", "--format", "json"))
    assert [(u["username"], u["role"], u["policies"]) for u in listed["users"]] == [
        ("alice", "Admin", []),
        ("app", "App", ["billing"]),
    ]
    assert "password" not in json.dumps(listed)
    assert "(disabled)" in vc.ok("user", "disable", "--username", "alice") + vc.ok("user", "list")
    one_error_line(vc("user", "disable", "--username", "nobody"), 1, "user not found")
    one_error_line(
        vc(
            "user",
            "create",
            "--username",
            "alice",
            "--role",
            "Admin",
            "--password-stdin",
            input="correct horse battery\n",
        ),
        1,
    )

    assert "1 rule" in vc.ok("policy", "write", "billing", input="app/billing/*: read, list\n")
    assert "app/billing/*: list, read" in vc.ok("policy", "list")
    one_error_line(vc("policy", "write", "bad", input="app/*: fly\n"), 2, "capabilities")
    vc.ok("policy", "delete", "billing")
    one_error_line(vc("policy", "delete", "billing"), 1, "not found")

    data = json.loads(
        vc.ok(
            "token",
            "create",
            "--user-id",
            "42",
            "--role",
            "App",
            "--policy",
            "billing",
            "--ttl",
            "2h",
            "--jwt",
            "--format",
            "json",
        )
    )
    claims = jwt.decode(data["token"], JWT_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"], claims["policies"]) == ("42", "App", ["billing"])
    assert claims["exp"] - claims["iat"] == 7200


def test_token_needs_the_jwt_secret_and_a_valid_ttl(vc: Vaultctl) -> None:
    vc.extra_env = {}
    one_error_line(
        vc("token", "create", "--jwt", "--user-id", "1", "--role", "Admin"), 2, "VAULT_JWT_SECRET"
    )
    vc.extra_env = {"VAULT_JWT_SECRET": "too-short"}
    one_error_line(vc("token", "create", "--jwt", "--user-id", "1", "--role", "Admin"), 2, "32")
    vc.extra_env = {"VAULT_JWT_SECRET": JWT_SECRET}
    r = vc("token", "create", "--user-id", "1", "--role", "Admin", "--ttl", "soon")
    assert r.code == 2 and "30s, 15m" in r.err


def test_user_create_without_password_source_fails(vc: Vaultctl) -> None:
    r = vc("user", "create", "--username", "bob", "--role", "Admin", stdin=-3)
    assert r.code == 2 and "password" in r.err


def test_user_commands_in_remote_mode_go_to_the_server(vc: Vaultctl) -> None:
    # Since #15 user commands work remotely (/api/vault/users); a dead server is one clear line.
    vc.extra_env = {"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "t"}
    one_error_line(vc("user", "list"), 1, "cannot reach the server")


def test_recorded_tokens_from_the_cli(vc: Vaultctl) -> None:
    vc.ok("unlock")
    made = json.loads(
        vc.ok("token", "create", "--user-id", "42", "--role", "App", "--policy", "billing",
              "--ttl", "1h", "--max-ttl", "2h", "--format", "json")
    )  # fmt: skip
    assert made["token"].startswith("sr.") and made["policies"] == ["billing"]
    accessor = made["accessor"]
    listed = json.loads(vc.ok("token", "list", "--user-id", "42", "--format", "json"))
    assert [t["accessor"] for t in listed["tokens"]] == [accessor]
    assert made["token"] not in json.dumps(listed)
    looked = json.loads(vc.ok("token", "lookup", accessor, "--format", "json"))
    assert looked["max_expires_at"] == made["max_expires_at"]
    r = vc("token", "renew", accessor, "--increment", "5h")
    assert r.code == 0 and "capped" in r.err
    vc.ok("token", "revoke", "--token-stdin", input=made["token"] + "\n")
    one_error_line(vc("token", "lookup", accessor), 1, "not found")
    r = vc("token", "revoke", "--accessor", "x", "--user-id", "1")
    assert r.code == 2 and "exactly one" in r.err
