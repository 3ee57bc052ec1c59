"""An attacker with database write access: flipped bytes, swapped rows, transplants (issue #2)."""

from __future__ import annotations

import base64

import pytest

from strongroom import Vault, errors, open_vault
from tests.conftest import MASTER_KEY, fast_config
from tests.rawsql import execute


def _value(dsn: str, path: str, version: int) -> str:
    rows = execute(
        dsn,
        "SELECT v.value FROM vault_secret_versions v JOIN vault_secrets s "
        "ON s.id = v.secret_id WHERE s.path = :p AND v.version = :n",
        {"p": path, "n": version},
    )
    return str(rows[0][0])


def _set_value(dsn: str, path: str, version: int, value: str) -> None:
    execute(
        dsn,
        "UPDATE vault_secret_versions SET value = :val WHERE version = :n AND "
        "secret_id = (SELECT id FROM vault_secrets WHERE path = :p)",
        {"val": value, "n": version, "p": path},
    )


def _flip(text: str, index: int) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _failed_reads(dsn: str, path: str) -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in execute(
            dsn,
            "SELECT action, success, error FROM vault_audit_logs WHERE path = :p AND "
            "success = false",
            {"p": path},
        )
    ]


@pytest.mark.parametrize("where", [0, 3, 10, 20, -1])
def test_flipped_byte_fails_with_integrity_error(vault: Vault, dsn: str, where: int) -> None:
    vault.create_secret("app/key", "one")
    vault.update_secret("app/key", "two")
    vault.create_secret("app/other", "untouched")
    stored = _value(dsn, "app/key", 2)
    index = where if where >= 0 else len(base64.b64decode(stored)) - 1
    _set_value(dsn, "app/key", 2, _flip(stored, index))
    with pytest.raises(errors.IntegrityError):
        vault.get_secret("app/key")
    with pytest.raises(errors.IntegrityError):
        vault.get_secret_version("app/key", 2)
    assert vault.get_secret_version("app/key", 1) == "one"
    assert vault.get_secret("app/other") == "untouched"
    assert ("read", False, "IntegrityError") in _failed_reads(dsn, "app/key")


@pytest.mark.parametrize("garbage", ["not base64!!", "AAAA", ""])
def test_truncated_or_garbage_value(vault: Vault, dsn: str, garbage: str) -> None:
    vault.create_secret("app/key", "one")
    _set_value(dsn, "app/key", 1, garbage)
    with pytest.raises(errors.IntegrityError):
        vault.get_secret("app/key")


def test_value_copied_to_another_secret(vault: Vault, dsn: str) -> None:
    vault.create_secret("a/secret", "value-of-a")
    vault.create_secret("b/secret", "value-of-b")
    _set_value(dsn, "b/secret", 1, _value(dsn, "a/secret", 1))
    with pytest.raises(errors.IntegrityError):
        vault.get_secret("b/secret")
    assert vault.get_secret("a/secret") == "value-of-a"


def test_value_copied_to_another_version(vault: Vault, dsn: str) -> None:
    vault.create_secret("p/key", "v1")
    vault.update_secret("p/key", "v2")
    vault.update_secret("p/key", "v3")
    _set_value(dsn, "p/key", 3, _value(dsn, "p/key", 1))
    with pytest.raises(errors.IntegrityError):
        vault.get_secret("p/key")
    with pytest.raises(errors.IntegrityError):
        vault.rollback_secret("p/key", 3)


def test_path_rename_is_detected(vault: Vault, dsn: str) -> None:
    vault.create_secret("p/real", "v1")
    execute(dsn, "UPDATE vault_secrets SET path = 'p/renamed' WHERE path = 'p/real'")
    with pytest.raises(errors.IntegrityError):
        vault.get_secret("p/renamed")


def test_row_from_another_vault_with_same_master_key(dsn: str, tmp_path) -> None:
    other_dsn = f"sqlite:///{tmp_path / 'other.db'}"
    other = open_vault(other_dsn, fast_config())
    other.unlock(MASTER_KEY)
    other.create_secret("x/y", "from-other-vault")
    foreign = _value(other_dsn, "x/y", 1)
    other.close()
    mine = open_vault(dsn, fast_config())
    mine.unlock(MASTER_KEY)
    mine.create_secret("x/y", "mine")
    _set_value(dsn, "x/y", 1, foreign)
    with pytest.raises(errors.IntegrityError):
        mine.get_secret("x/y")
    mine.close()


def test_tampered_keyring_is_detected_at_unlock(dsn: str) -> None:
    v = open_vault(dsn, fast_config())
    v.unlock(MASTER_KEY)
    v.close()
    stored = str(execute(dsn, "SELECT wrapped_key FROM vault_key_terms WHERE term = 1")[0][0])
    execute(
        dsn, "UPDATE vault_key_terms SET wrapped_key = :w WHERE term = 1", {"w": _flip(stored, 20)}
    )
    v = open_vault(dsn, fast_config())
    with pytest.raises(errors.IntegrityError, match="keyring"):
        v.unlock(MASTER_KEY)
    assert v.is_locked
    v.close()
