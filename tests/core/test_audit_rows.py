"""Every operation writes an audit row with the document's fields plus the path (issue #2)."""

from __future__ import annotations

import pytest

from strongroom import Vault, errors
from tests.rawsql import execute


def test_each_operation_is_audited_with_path_ip_and_outcome(vault: Vault, dsn: str) -> None:
    vault.create_secret("db/pw", "v", user_id=3)
    vault.get_secret("db/pw", user_id=4, ip="192.168.1.100", request_id="req-1")
    vault.update_secret("db/pw", "v2", user_id=3)
    vault.list_secrets("db/", user_id=3)
    vault.list_versions("db/pw", user_id=3)
    vault.rollback_secret("db/pw", 1, user_id=3)
    with pytest.raises(errors.SecretNotFound):
        vault.get_secret("db/missing", user_id=5)
    vault.generate_token(8, user_id=3)
    vault.delete_secret("db/pw", user_id=3)
    rows = execute(
        dsn,
        "SELECT action, path, user_id, ip_address, success, error, request_id, "
        "secret_id FROM vault_audit_logs WHERE action NOT IN ('init', 'unlock') "
        "ORDER BY id",
    )
    got = [(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6]) for r in rows]
    assert got == [
        ("create", "db/pw", 3, "cli", True, None, None),
        ("read", "db/pw", 4, "192.168.1.100", True, None, "req-1"),
        ("update", "db/pw", 3, "cli", True, None, None),
        ("list", "db/", 3, "cli", True, None, None),
        ("versions", "db/pw", 3, "cli", True, None, None),
        ("rollback", "db/pw", 3, "cli", True, None, None),
        ("read", "db/missing", 5, "cli", False, "SecretNotFound", None),
        ("generate", None, 3, "cli", True, None, None),
        ("delete", "db/pw", 3, "cli", True, None, None),
    ]
    secret_ids = {r[7] for r in rows if r[1] == "db/pw"}
    assert len(secret_ids) == 1 and None not in secret_ids  # history kept after delete
    assert vault.verify_audit().ok


def test_failed_write_is_audited_and_changes_nothing(vault: Vault, dsn: str) -> None:
    vault.create_secret("db/pw", "v")
    with pytest.raises(errors.SecretExists):
        vault.create_secret("db/pw", "other")
    with pytest.raises(errors.SecretNotFound):
        vault.update_secret("db/nothing", "x")
    assert vault.get_secret("db/pw") == "v"
    rows = execute(dsn, "SELECT action, error FROM vault_audit_logs WHERE success = false")
    assert sorted(tuple(r) for r in rows) == [
        ("create", "SecretExists"),
        ("update", "SecretNotFound"),
    ]
    assert execute(dsn, "SELECT count(*) FROM vault_secrets")[0][0] == 1


def test_audit_logs_query_newest_first(vault: Vault) -> None:
    vault.create_secret("a/b", "v", user_id=2)
    vault.get_secret("a/b", user_id=3)
    entries = vault.audit_logs(path="a/b")
    assert [e.action for e in entries] == ["read", "create"]
    assert [e.action for e in vault.audit_logs(user_id=3)] == ["read"]
    assert len(vault.audit_logs(limit=1)) == 1


def test_entries_written_while_locked_are_covered_after_unlock(vault: Vault, dsn: str) -> None:
    from tests.conftest import MASTER_KEY

    vault.create_secret("a/b", "v")
    vault.lock()
    with pytest.raises(errors.InvalidMasterKey):
        vault.unlock("wrong-key-for-this-vault")
    vault.unlock(MASTER_KEY)
    result = vault.verify_audit()
    assert result.ok and result.unchained == 1  # the failed unlock, SHA-256 linked
    locked_row = execute(dsn, "SELECT id FROM vault_audit_logs WHERE success = false")[0][0]
    execute(
        dsn, "UPDATE vault_audit_logs SET ip_address = 'forged' WHERE id = :i", {"i": locked_row}
    )
    assert vault.verify_audit().first_bad_id == locked_row
