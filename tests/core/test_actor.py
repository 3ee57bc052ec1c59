"""`Actor`: one frozen value for who asks; the facade's keyword form and `actor=` agree."""

from __future__ import annotations

import dataclasses

import pytest

from strongroom import Actor, Vault
from strongroom.models import DEFAULT_ACTOR


def last(vault: Vault) -> tuple[int, str, str | None]:
    entry = vault.audit_logs(limit=1)[0]
    return entry.user_id, entry.ip_address, entry.request_id


def test_actor_is_frozen_and_defaults_to_the_cli() -> None:
    actor = Actor(7)
    assert (actor.ip, actor.request_id, actor.auth_method, actor.display_name) == (
        "cli",
        None,
        None,
        None,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        actor.user_id = 8  # type: ignore[misc]
    assert DEFAULT_ACTOR == Actor(1, "cli")


def test_keyword_form_and_actor_are_the_same_audit_entry(vault: Vault) -> None:
    vault.create_secret("a/b", "v", user_id=5, ip="10.0.0.5", request_id="r-5")
    assert last(vault) == (5, "10.0.0.5", "r-5")
    vault.get_secret("a/b", actor=Actor(6, "10.0.0.6", "r-6"))
    assert last(vault) == (6, "10.0.0.6", "r-6")
    vault.secrets.get("a/b", actor=Actor(8, "10.0.0.8"))
    assert last(vault) == (8, "10.0.0.8", None)
    vault.get_secret("a/b")
    assert last(vault) == (DEFAULT_ACTOR.user_id, DEFAULT_ACTOR.ip, None)


def test_actor_wins_over_the_keyword_form(vault: Vault) -> None:
    vault.create_secret("a/b", "v", user_id=5, actor=Actor(6, "10.0.0.6"))
    assert last(vault) == (6, "10.0.0.6", None)


def test_nothing_to_resume_is_a_distinct_outcome(vault: Vault) -> None:
    assert vault.rotation.is_unfinished() is False
    result = vault.rotation.resume()
    assert (result.reencrypted, result.secrets) == (0, 0)
    assert vault.rotation.is_unfinished() is False
