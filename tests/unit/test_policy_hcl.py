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
        path "secret/data/ops/+/cfg" { capabilities = ["read", "deny", "sudo"] }
        path "auth/token/lookup-self" { capabilities = ["read"] }
        """
    )
    policy = Policy("p", tuple(rules))
    assert policy.allows("read", "app/x/y") and policy.allows("update", "app/x")
    assert policy.allows("list", "app/x/") and policy.allows("delete", "app/x")
    assert policy.allows("read", "ops/a/cfg") and not policy.allows("read", "ops/a/b/cfg")
    assert not policy.allows("read", "other")
    assert any("'deny'" in w for w in warnings) and any("'sudo'" in w for w in warnings)
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
