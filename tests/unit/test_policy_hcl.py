"""Vault HCL policies mapped to path rules (`core.policy_hcl`): supported forms, ignored
constructs with warnings, and a clear error naming what is not supported."""

from __future__ import annotations

import pytest

from strongroom import errors
from strongroom.core.policy import Policy, Rule
from strongroom.core.policy_hcl import hcl_to_rules, rules_to_hcl


def test_data_and_metadata_forms_merge_into_one_rule() -> None:
    rules, warnings = hcl_to_rules(
        """
        # comments are fine
        path "secret/data/app/*" { capabilities = ["read", "create", "update", "patch"] }
        path "secret/metadata/app/*" { capabilities = ["list", "delete"] }
        path "secret/destroy/app/*" { capabilities = ["update"] }
        path "secret/data/ops/+/cfg" { capabilities = ["read", "sudo"] }
        path "secret/data/ops/+/key" { capabilities = ["read", "deny"] }
        path "auth/token/lookup-self" { capabilities = ["read"] }
        """
    )
    policy = Policy("p", tuple(rules))
    assert policy.allows("read", "app/x/y") and policy.allows("update", "app/x")
    assert policy.allows("list", "app/x/") and policy.allows("delete", "app/x")
    assert policy.allows("read", "ops/a/cfg") and not policy.allows("read", "ops/a/b/cfg")
    assert not policy.allows("read", "other")
    assert not policy.allows("read", "ops/a/key")  # deny wins within its block, as in Vault
    assert any("denies" in w for w in warnings) and any("'sudo'" in w for w in warnings)
    assert any("auth/token/lookup-self" in w for w in warnings)
    again, _ = hcl_to_rules(rules_to_hcl(rules))  # what a read returns is accepted back
    assert {(r.pattern, r.capabilities) for r in again} == {
        (r.pattern, r.capabilities) for r in rules
    }


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('path "secret/data/a" {', "malformed HCL"),
        ('path "secret/data/a" { capabilities = ["fly"] }', "'fly'"),
        ('path "sys/mounts" { capabilities = ["read"] }', "'sys/mounts'"),
        ('path "kv/data/a" { capabilities = ["read"] }', "'kv/data/a'"),
        ('path "secret/data/a" { allowed_parameters = { "x" = [] } }', "'allowed_parameters'"),
        ('name = "x"', "'name'"),
        ('path "secret/data/a" { capabilities = ["deny"] }', "no rule"),
        ("", "empty"),
    ],
)
def test_unsupported_constructs_are_named(text: str, named: str) -> None:
    with pytest.raises(errors.InvalidInput, match=named):
        hcl_to_rules(text)


@pytest.mark.parametrize(
    "text",
    [
        # A deny under a broader grant: Vault refuses app/admin/*, a union of rules would not.
        """
        path "secret/data/app/*" { capabilities = ["read"] }
        path "secret/data/app/admin/*" { capabilities = ["deny"] }
        """,
        # A narrower block granting less: Vault applies it alone (read only on app/).
        """
        path "secret/data/*" { capabilities = ["create", "update", "read"] }
        path "secret/data/app/*" { capabilities = ["read"] }
        """,
    ],
)
def test_what_vault_and_a_union_read_apart_is_refused(text: str) -> None:
    with pytest.raises(errors.InvalidInput, match="Vault applies the narrower block alone"):
        hcl_to_rules(text)


def test_a_narrower_block_granting_more_and_soft_delete_are_accepted() -> None:
    rules, warnings = hcl_to_rules(
        """
        path "secret/data/*" { capabilities = ["read"] }
        path "secret/data/app/*" { capabilities = ["read", "update", "delete"] }
        """
    )
    policy = Policy("p", tuple(rules))
    assert policy.allows("update", "app/x") and not policy.allows("update", "other")
    assert any("soft delete" in w and "also destroys" in w for w in warnings)


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        ("app/billing/*", "app/billing/"),
        ("ops/db-*", "ops/db-"),
        ("a/+/b", "a/"),
        ("+/cfg", ""),
        ("a+b/c", "a+b/c"),  # `+` inside a segment is literal
        ("exact/path", "exact/path"),
    ],
)
def test_literal_prefix_is_what_every_match_starts_with(pattern: str, prefix: str) -> None:
    rule = Rule(pattern, frozenset({"list"}))
    assert rule.literal_prefix == prefix
    for path in ("app/billing/x/y", "ops/db-1", "a/q/b", "z/cfg", "a+b/c", "exact/path"):
        if rule.matches(path):
            assert path.startswith(prefix)


MOUNTS = {"secret/": 2, "team/": 2, "legacy/": 1}


def test_other_mounts_keep_vaults_paths() -> None:
    rules, warnings = hcl_to_rules(
        """
        path "team/data/app/*" { capabilities = ["read", "patch", "list"] }
        path "team/destroy/app/*" { capabilities = ["update"] }
        path "team/undelete/app/*" { capabilities = ["update"] }
        path "team/metadata/app/*" { capabilities = ["create", "list"] }
        path "legacy/app/*" { capabilities = ["read", "update", "patch"] }
        path "secret/data/app/*" { capabilities = ["read"] }
        """,
        MOUNTS,
    )
    assert {r.pattern: sorted(r.capabilities) for r in rules} == {
        "team/data/app/*": ["read", "update"],
        "team/destroy/app/*": ["delete"],
        "team/undelete/app/*": ["update"],
        "team/metadata/app/*": ["create", "list"],
        "legacy/app/*": ["read", "update"],
        "app/*": ["read"],
    }
    assert any("'list'" in w and "team/data/app/*" in w for w in warnings)
    assert any("'patch'" in w and "legacy/app/*" in w for w in warnings)
    text = rules_to_hcl(rules, MOUNTS)
    assert 'path "team/destroy/app/*" {\n  capabilities = ["update"]' in text
    again, _ = hcl_to_rules(text, MOUNTS)
    assert sorted(again, key=lambda r: r.pattern) == sorted(rules, key=lambda r: r.pattern)


@pytest.mark.parametrize(
    "path",
    ["nomount/data/x", "team/bogus/x", "team/*", "sys/mounts"],
)
def test_paths_no_kv_mount_serves_are_refused(path: str) -> None:
    with pytest.raises(errors.InvalidInput, match="unsupported path"):
        hcl_to_rules(f'path "{path}" {{ capabilities = ["read"] }}', MOUNTS)
