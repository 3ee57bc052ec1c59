"""The core `Authorizer`: roles plus path policies, list filtering, refusals audited once.

The semantics are those of the HTTP adapter's checks (DESIGN §6): SuperAdmin and Admin pass
everything except master-key rotation (SuperAdmin only); any other role needs a policy.
"""

from __future__ import annotations

import pytest

from strongroom import Vault, errors
from strongroom.core.authorizer import Authorizer
from strongroom.core.tokens import Principal
from strongroom.models import Actor
from tests.conftest import MASTER_KEY

ACTOR = Actor(9, "10.0.0.9", "req-9")


def who(role: str, *policies: str) -> Principal:
    return Principal(9, role, tuple(policies))


def denials(vault: Vault) -> list[tuple[str, str | None, int, str, str | None]]:
    return [
        (e.action, e.path, e.user_id, e.ip_address, e.request_id)
        for e in reversed(vault.audit_logs(limit=100))
        if e.error == "PermissionDenied" and not e.success
    ]


@pytest.fixture
def policies(vault: Vault) -> Vault:
    vault.access.write_policy("billing-read", "app/billing/*: read, list")
    vault.access.write_policy("billing-write", "app/billing/+: create, update")
    return vault


@pytest.mark.parametrize("role", ["SuperAdmin", "Admin"])
def test_admins_pass_every_path_check_without_an_entry(policies: Vault, role: str) -> None:
    authz = policies.authorizer
    for capability in ("read", "list", "create", "update", "delete", "audit"):
        authz.require(who(role), capability, "any/path", ACTOR)
    authz.require_admin(who(role), "kv_config", ACTOR)
    assert denials(policies) == []


def test_rotate_all_is_superadmin_only(policies: Vault) -> None:
    authz = policies.authorizer
    authz.require_admin(who("SuperAdmin"), "rotate_all", ACTOR, superadmin=True)
    with pytest.raises(errors.PermissionDenied):
        authz.require_admin(who("Admin"), "rotate_all", ACTOR, superadmin=True)
    with pytest.raises(errors.PermissionDenied):
        authz.require_admin(who("App", "billing-read"), "kv_config", ACTOR)
    assert denials(policies) == [
        ("rotate_all", None, 9, "10.0.0.9", "req-9"),
        ("kv_config", None, 9, "10.0.0.9", "req-9"),
    ]


def test_other_roles_need_a_policy_granting_the_capability(policies: Vault) -> None:
    authz = policies.authorizer
    reader = who("App", "billing-read", "no-such-policy")
    authz.require(reader, "read", "app/billing/db", ACTOR)
    authz.require(reader, "read", "app/billing/deep/key", ACTOR)
    assert authz.allows(reader, "list", "app/billing/x")
    assert not authz.allows(reader, "update", "app/billing/db")
    with pytest.raises(errors.PermissionDenied):
        authz.require(reader, "update", "app/billing/db", ACTOR, action="rollback")
    with pytest.raises(errors.PermissionDenied):
        authz.require(reader, "read", "app/other", ACTOR)
    writer = who("App", "billing-write")
    authz.require(writer, "create", "app/billing/new", ACTOR)
    with pytest.raises(errors.PermissionDenied):
        authz.require(writer, "create", "app/billing/a/b", ACTOR)  # `+` is one segment
    with pytest.raises(errors.PermissionDenied):
        authz.require(who("App"), "read", "app/billing/db", ACTOR)  # no policy at all
    assert denials(policies) == [
        ("rollback", "app/billing/db", 9, "10.0.0.9", "req-9"),
        ("read", "app/other", 9, "10.0.0.9", "req-9"),
        ("create", "app/billing/a/b", 9, "10.0.0.9", "req-9"),
        ("read", "app/billing/db", 9, "10.0.0.9", "req-9"),
    ]


def test_list_filter(policies: Vault) -> None:
    authz = policies.authorizer
    for path in ("app/billing/db", "app/billing/deep/x", "app/other", "top"):
        policies.create_secret(path, "v")
    found = [i.path for i in policies.list_secrets("app/")]
    admin = authz.list_filter(who("Admin"), "app/", ACTOR)
    assert [p for p in found if admin(p)] == found
    reader = authz.list_filter(who("App", "billing-read"), "app/", ACTOR)
    assert [p for p in found if reader(p)] == ["app/billing/db", "app/billing/deep/x"]
    with pytest.raises(errors.PermissionDenied):
        authz.list_filter(who("App", "billing-write"), "app/", ACTOR)
    with pytest.raises(errors.PermissionDenied):
        authz.list_filter(who("App"), "", ACTOR)
    assert denials(policies) == [
        ("list", "app/", 9, "10.0.0.9", "req-9"),
        ("list", None, 9, "10.0.0.9", "req-9"),
    ]


def test_refusal_is_audited_exactly_once_even_when_locked(policies: Vault) -> None:
    policies.lock()
    with pytest.raises(errors.PermissionDenied):
        policies.authorizer.require(who("App"), "delete", "x/y", ACTOR)
    policies.unlock(MASTER_KEY)
    entries = [e for e in policies.audit_logs(path="x/y") if e.action == "delete"]
    assert [(e.success, e.error, e.user_id) for e in entries] == [(False, "PermissionDenied", 9)]
    assert policies.verify_audit().ok


def test_policies_are_cached_for_a_few_seconds(policies: Vault) -> None:
    now = [100.0]
    authz = Authorizer(policies.access, policy_ttl=5.0, monotonic=lambda: now[0])
    reader = who("App", "billing-read")
    assert authz.allows(reader, "read", "app/billing/db")
    policies.access.delete_policy("billing-read")
    assert authz.allows(reader, "read", "app/billing/db")  # cached
    now[0] += 6
    assert not authz.allows(reader, "read", "app/billing/db")


def test_allows_cached_never_blocks_and_never_grants_more(policies: Vault) -> None:
    now = [100.0]
    authz = Authorizer(policies.access, policy_ttl=5.0, monotonic=lambda: now[0])
    reader = who("App", "billing-read")
    assert authz.allows_cached(who("Admin"), "delete", "any/path")
    assert not authz.allows_cached(reader, "read", "app/billing/db")  # not cached yet
    assert authz.allows(reader, "read", "app/billing/db")  # loads the policies
    assert authz.allows_cached(reader, "read", "app/billing/db")
    assert not authz.allows_cached(reader, "update", "app/billing/db")
    assert not authz.allows_cached(reader, "read", "app/other")
    assert not authz.allows_cached(who("App"), "read", "app/billing/db")  # no policies
    now[0] += 6
    assert not authz.allows_cached(reader, "read", "app/billing/db")  # stale: ask again
    assert denials(policies) == []


def test_a_refused_unstorable_path_is_audited_and_fails_nothing_else(policies: Vault) -> None:
    # Refusals are audited before the path is validated: a path the database cannot store (too
    # long, NUL, a lone surrogate) must neither fail its group commit nor go unrecorded.
    bad = "a/" + "x" * 600 + "\x00\ud800"
    with pytest.raises(errors.PermissionDenied):
        policies.authorizer.require(who("App"), "read", bad, ACTOR)
    with pytest.raises(errors.PermissionDenied):
        policies.authorizer.require(who("App"), "read", "b/\x00\ud800", ACTOR)
    policies.create_secret("ok/after", "v")
    paths = [path for (_, path, *_rest) in denials(policies)]
    assert paths[0] is not None and len(paths[0]) == 500 and paths[0].startswith("a/xxx")
    assert paths[1] == "b/\\0\\ud800"
    assert policies.get_secret("ok/after") == "v"
    assert policies.verify_audit().ok


def test_a_relayed_auto_lock_leaves_an_explicit_lock_explicit(vault: Vault) -> None:
    vault.unlock(MASTER_KEY)
    vault.lock()
    vault.state.drop_keys(auto=True)  # the supervisor's idle lock, arriving after the lock
    assert not vault.state.is_auto_locked


def test_a_rule_applies_to_exactly_one_mount(vault: Vault) -> None:
    """`team/data/x` names mount team/'s key, not secret/'s key `team/data/x`; rules without a
    mount (`*`, `app/*`) name secret/'s keys only; a mount-less `team/...` rule keeps meaning
    secret/ while no mount `team/` exists."""
    vault.access.write_policy("p", "team/data/app/*: read\n*: list\napp/*: read\nx/data/*: read")
    vault.mounts.enable("team", "kv", options={"version": "2"})
    authz = Authorizer(vault.access, mount_paths=vault.mounts.paths)
    user = who("App", "p")
    assert authz.allows(user, "read", "team/data/app/db", mount="team/")
    assert not authz.allows(user, "read", "team/data/app/db")  # secret/'s key of that name
    assert authz.allows(user, "read", "app/db") and authz.allows(user, "list", "any/thing")
    assert not authz.allows(user, "list", "team/metadata/", mount="team/")  # `*` is secret/'s
    assert not authz.allows(user, "read", "team/data/app/db", mount="other/")
    assert authz.allows(user, "read", "x/data/k")  # no mount x/: the rule is secret/'s
    with pytest.raises(errors.PermissionDenied):
        authz.require(user, "read", "team/data/app/db", ACTOR)
    visible = authz.list_filter(user, "", ACTOR)
    assert visible("team/data/app/db") and not authz.allows_cached(user, "read", "team/data/app/db")
    assert authz.allows_cached(user, "read", "team/data/app/db", mount="team/")


def test_list_filter_bounds_the_paths_it_can_see(vault: Vault) -> None:
    """`Visible.prefixes` covers every path the filter accepts (the listing reads only those),
    from the literal start of each `list` rule of `secret/`, cut to the listed prefix."""
    vault.access.write_policy(
        "p",
        "app/billing/*: list\napp/billing/x/*: list\nteam/+/cfg: list\nops/db-*: list\n"
        "app/other/*: read\nteam/data/*: list",
    )
    vault.mounts.enable("team", "kv", options={"version": "2"})
    user = who("App", "p")
    authz = Authorizer(vault.access, mount_paths=vault.mounts.paths)
    assert authz.list_filter(user, "", ACTOR).prefixes == ("app/billing/", "ops/db-")
    assert authz.list_filter(user, "app/billing/x/", ACTOR).prefixes == ("app/billing/x/",)
    assert authz.list_filter(user, "app/", ACTOR).prefixes == ("app/billing/",)
    assert authz.list_filter(user, "zzz/", ACTOR).prefixes == ()
    assert authz.list_filter(who("Admin"), "", ACTOR).prefixes is None
    vault.access.write_policy("q", "+/cfg: list\n*: read")
    assert Authorizer(vault.access).list_filter(who("App", "q"), "a/", ACTOR).prefixes == ("a/",)


def test_listing_within_the_prefixes_finds_what_the_filter_accepts(vault: Vault) -> None:
    for path in ("app/billing/a", "app/billing/x/b", "app/billingx", "ops/db-1", "ops/dbx", "z"):
        vault.secrets.create(path, "v")
    vault.access.write_policy("p", "app/billing/*: list\nops/db-*: list\n")
    visible = vault.authorizer.list_filter(who("App", "p"), "", ACTOR)
    everything, _ = vault.secrets.list_paths("")
    bounded, infos = vault.secrets.list_paths(
        "", lambda paths: [p for p in paths if visible(p)], within=visible.prefixes
    )
    assert [p for p in everything if visible(p)] == [i.path for i in infos]
    assert bounded == ["app/billing/a", "app/billing/x/b", "ops/db-1"]
