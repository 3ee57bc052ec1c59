"""AppRole (issue 15): role_id stable, secret ids hashed, TTL, use limits, CIDR binding, and a
login that yields a recorded token with exactly the role's policies; failures audited."""

from __future__ import annotations

from datetime import timedelta

import pytest

from strongroom import Vault, errors
from strongroom.clock import ManualClock
from strongroom.core.approle import MACHINE_BASE, RoleSettings
from strongroom.core.token_records import TOKEN_ROLE
from strongroom.models import Actor

INSIDE = Actor(0, "10.1.2.3", "r1")
OUTSIDE = Actor(0, "192.168.0.9", "r2")


def test_login_gives_a_recorded_token_with_the_roles_policies(vault: Vault) -> None:
    settings = RoleSettings(policies=("deploy",), token_ttl=600, token_max_ttl=1200)
    role = vault.approle.write_role("ci", settings)
    again = vault.approle.write_role("ci", RoleSettings(policies=("deploy", "read")))
    assert again.role_id == role.role_id and again.id == role.id  # role_id is stable
    vault.approle.write_role("ci", settings)
    made = vault.approle.new_secret_id("ci")
    listed = vault.approle.list_secret_ids("ci")
    assert [s.accessor for s in listed] == [made.accessor]
    assert made.secret_id not in repr(listed)  # only its hash is stored
    issued = vault.approle.login(role.role_id, made.secret_id, actor=INSIDE)
    who = vault.tokens.verify(issued.token, INSIDE)
    assert (who.user_id, who.role, who.policies) == (
        MACHINE_BASE + role.id,
        TOKEN_ROLE,
        ("deploy",),
    )
    assert issued.info.ttl == timedelta(seconds=600) and issued.info.kind == "approle"


def test_bad_logins_are_refused_and_audited(vault: Vault, clock: ManualClock) -> None:
    settings = RoleSettings(secret_id_ttl=60, secret_id_num_uses=2, bound_cidrs=("10.0.0.0/8",))
    role = vault.approle.write_role("app", settings)
    used = vault.approle.new_secret_id("app")
    for _ in range(2):
        vault.approle.login(role.role_id, used.secret_id, actor=INSIDE)
    cases = [
        (role.role_id, used.secret_id, INSIDE),  # used up (and deleted)
        (role.role_id, vault.approle.new_secret_id("app").secret_id, OUTSIDE),  # CIDR mismatch
        ("no-such-role", "x", INSIDE),
    ]
    narrow = vault.approle.new_secret_id("app", bound_cidrs=["10.9.9.0/24"])
    cases.append((role.role_id, narrow.secret_id, INSIDE))  # the secret id's own CIDR
    expiring = vault.approle.new_secret_id("app")
    clock.advance(timedelta(seconds=61))
    cases.append((role.role_id, expiring.secret_id, INSIDE))  # expired
    for rid, sid, who in cases:
        with pytest.raises(errors.AuthenticationFailed, match="invalid role or secret ID"):
            vault.approle.login(rid, sid, actor=who)
    refused = [e for e in vault.audit_logs(action="approle_login", limit=50) if not e.success]
    assert len(refused) == len(cases)
    assert used.accessor not in [s.accessor for s in vault.approle.list_secret_ids("app")]


def test_destroy_and_bad_input(vault: Vault) -> None:
    role = vault.approle.write_role("r", RoleSettings())
    made = vault.approle.new_secret_id("r")
    vault.approle.destroy_secret_id("r", made.accessor)
    with pytest.raises(errors.AuthenticationFailed):
        vault.approle.login(role.role_id, made.secret_id, actor=INSIDE)
    with pytest.raises(errors.NotFound):
        vault.approle.destroy_secret_id("r", made.accessor)
    with pytest.raises(errors.NotFound):
        vault.approle.new_secret_id("missing")
    for bad in (RoleSettings(bound_cidrs=("nope",)), RoleSettings(policies=("a b",)),
                RoleSettings(token_ttl=-1)):  # fmt: skip
        with pytest.raises(errors.InvalidInput):
            vault.approle.write_role("r", bad)
    with pytest.raises(errors.InvalidInput):
        vault.approle.write_role("bad name", RoleSettings())
    vault.approle.delete_role("r")
    assert vault.approle.list_roles() == []
