"""Vault HCL policies mapped to path rules (`core.policy_hcl`): supported forms, ignored
constructs with warnings, and a clear error naming what is not supported."""

from __future__ import annotations

import pytest

from strongroom import errors
from strongroom.core.policy import Policy
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
