"""Lock, unlock, first-use initialisation, wrong keys, auto-lock (issue #2)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from strongroom import Vault, errors, open_vault
from strongroom.clock import ManualClock
from tests.conftest import MASTER_KEY, fast_config
from tests.rawsql import execute

LOCKED_CALLS = [
    lambda v: v.create_secret("a/b", "v"),
    lambda v: v.get_secret("a/b"),
    lambda v: v.get_secret_version("a/b", 1),
    lambda v: v.update_secret("a/b", "v"),
    lambda v: v.delete_secret("a/b"),
    lambda v: v.list_secrets(),
    lambda v: v.list_versions("a/b"),
    lambda v: v.rollback_secret("a/b", 1),
    lambda v: v.cleanup_expired(),
    lambda v: v.generate_token(16),
    lambda v: v.audit_logs(),
    lambda v: v.verify_audit(),
]


def _locked(v: Vault) -> bool:
    # A function, not the property: mypy would otherwise keep its narrowed value across calls.
    return v.is_locked


def _snapshot(dsn: str) -> list[object]:
    return [
        execute(dsn, f"SELECT * FROM {t} ORDER BY 1")
        for t in ("vault_keys", "vault_key_terms", "vault_secrets", "vault_secret_versions")
    ]


def test_first_unlock_initialises_and_wrong_key_changes_nothing(dsn: str) -> None:
    v = open_vault(dsn, fast_config())
    assert _locked(v) and not v.status().initialized
    v.unlock(MASTER_KEY)
    assert not _locked(v) and v.status().initialized and v.status().current_term == 1
    v.create_secret("a/b", "v1")
    v.lock()
    before = _snapshot(dsn)
    with pytest.raises(errors.InvalidMasterKey, match="invalid master key"):
        v.unlock("another-master-key")
    assert _locked(v)
    assert _snapshot(dsn) == before
    failures = execute(
        dsn, "SELECT action, success, error FROM vault_audit_logs WHERE success = false ORDER BY id"
    )
    assert ("unlock", False, "InvalidMasterKey") in [tuple(r) for r in failures]
    v.close()
    reopened = open_vault(dsn, fast_config())
    reopened.unlock(MASTER_KEY)
    assert reopened.get_secret("a/b") == "v1"
    with pytest.raises(errors.InvalidMasterKey):
        reopened.unlock("wrong-while-unlocked")
    assert not reopened.is_locked
    reopened.close()


@pytest.mark.parametrize("call", LOCKED_CALLS)
def test_locked_vault_refuses_every_operation(dsn: str, call) -> None:
    v = open_vault(dsn, fast_config())
    v.unlock(MASTER_KEY)
    v.create_secret("a/b", "v")
    v.lock()
    with pytest.raises(errors.VaultLocked, match="vault is locked"):
        call(v)
    assert v.status().locked and v.health().locked
    v.close()


def test_lock_overwrites_key_bytes(vault: Vault) -> None:
    barrier = vault.state.barrier
    held = [barrier._root, barrier._mac_key, *barrier._keys.values()]
    assert all(buf is not None and any(buf) for buf in held)
    vault.lock()
    assert all(buf is not None and not any(buf) for buf in held)


def test_auto_lock_after_inactivity(dsn: str) -> None:
    clock = ManualClock()
    v = open_vault(dsn, fast_config(clock=clock, auto_lock_timeout=timedelta(minutes=15)))
    v.unlock(MASTER_KEY)
    v.create_secret("a/b", "v")
    clock.advance(timedelta(minutes=14))
    assert v.get_secret("a/b") == "v"  # activity: the timer restarts
    clock.advance(timedelta(minutes=14))
    for _ in range(3):  # status and health are not activity
        v.status()
        v.health()
    assert not v.is_locked
    clock.advance(timedelta(minutes=1, seconds=1))
    assert v.health().locked and _locked(v)
    with pytest.raises(errors.VaultLocked):
        v.get_secret("a/b")
    v.close()


def test_auto_lock_disabled(dsn: str) -> None:
    clock = ManualClock()
    v = open_vault(dsn, fast_config(clock=clock, auto_lock=False))
    v.unlock(MASTER_KEY)
    clock.advance(timedelta(days=2))
    assert not v.is_locked and v.health().auto_lock is False
    v.close()


def test_unlock_backoff_after_repeated_failures(dsn: str) -> None:
    clock = ManualClock()
    v = open_vault(dsn, fast_config(clock=clock, unlock_backoff_after=2))
    v.unlock(MASTER_KEY)
    v.lock()
    for _ in range(2):
        with pytest.raises(errors.InvalidMasterKey):
            v.unlock("wrong-key")
    with pytest.raises(errors.TooManyAttempts) as caught:
        v.unlock(MASTER_KEY)
    assert caught.value.retry_after > 0
    clock.advance(timedelta(seconds=caught.value.retry_after + 1))
    v.unlock(MASTER_KEY)
    assert not v.is_locked
    v.close()


def test_unlock_from_env(dsn: str) -> None:
    v = open_vault(dsn, fast_config())
    with pytest.raises(errors.InvalidInput, match="VAULT_MASTER_KEY"):
        v.unlock_from_env({})
    v.unlock_from_env({"VAULT_MASTER_KEY": MASTER_KEY})
    assert not v.is_locked
    v.close()


def test_health_shape(vault: Vault) -> None:
    vault.create_secret("a/b", "v")
    body = vault.health().as_dict()
    assert set(body) == {"locked", "last_access", "auto_lock", "audit"}
    assert body["locked"] is False and body["audit"] is True
    assert body["last_access"].endswith("Z")


def test_only_a_successful_secret_operation_is_activity(dsn: str) -> None:
    """#11 item 18: reads of missing secrets (404), refused writes (409, 400) and wrong versions
    do not keep the vault awake; a successful read or write does."""
    clock = ManualClock()
    v = open_vault(dsn, fast_config(clock=clock, auto_lock_timeout=timedelta(minutes=15)))
    v.unlock(MASTER_KEY)
    v.create_secret("a/b", "v")
    clock.advance(timedelta(minutes=10))
    failing: list[Callable[[], object]] = [
        lambda: v.get_secret("missing"),
        lambda: v.get_secret_version("a/b", 9),
        lambda: v.create_secret("a/b", "again"),
        lambda: v.update_secret("missing", "v"),
        lambda: v.list_versions("missing"),
        lambda: v.rollback_secret("a/b", 7),
    ]
    for call in failing:
        with pytest.raises(errors.StrongroomError):
            call()
    clock.advance(timedelta(minutes=5, seconds=1))
    assert _locked(v), "failed operations kept the vault awake"
    v.unlock(MASTER_KEY)
    clock.advance(timedelta(minutes=10))
    assert v.get_secret("a/b") == "v"
    clock.advance(timedelta(minutes=10))
    v.update_secret("a/b", "w")
    clock.advance(timedelta(minutes=10))
    assert not _locked(v)
    v.close()
