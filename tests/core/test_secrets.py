"""Secrets: create/get/update/delete/list/versions/rollback, validation, TTL (issue #2)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from strongroom import Vault, errors, open_vault
from strongroom.clock import ManualClock
from tests.conftest import MASTER_KEY, fast_config


def test_lifecycle_versions_and_rollback(vault: Vault) -> None:
    info = vault.create_secret(
        "database/postgres/password", "s3cret", description="PostgreSQL", user_id=7
    )
    assert (info.path, info.version, info.created_by, info.description) == (
        "database/postgres/password",
        1,
        7,
        "PostgreSQL",
    )
    assert info.created_at.tzinfo is not None
    assert vault.update_secret("database/postgres/password", "second", user_id=8) == 2
    assert vault.get_secret("database/postgres/password") == "second"
    assert vault.get_secret_version("database/postgres/password", 1) == "s3cret"
    versions = vault.list_versions("database/postgres/password")
    assert [(v.version, v.updated_by) for v in versions] == [(2, 8), (1, 7)]
    assert vault.rollback_secret("database/postgres/password", 1, user_id=9) == 3
    assert vault.get_secret("database/postgres/password") == "s3cret"
    assert vault.list_secrets("database/")[0].version == 3
    vault.delete_secret("database/postgres/password")
    with pytest.raises(errors.SecretNotFound):
        vault.get_secret("database/postgres/password")
    with pytest.raises(errors.SecretNotFound):
        vault.list_versions("database/postgres/password")


def test_create_existing_path_raises(vault: Vault) -> None:
    vault.create_secret("a/b", "one")
    with pytest.raises(errors.SecretExists):
        vault.create_secret("a/b", "two")
    assert vault.get_secret("a/b") == "one"


@pytest.mark.parametrize(
    "path", ["", "/a", "a/", "a//b", "a/../b", "./a", "a b", "a/é", "a\x00b", "x" * 501, "a/%2F"]
)
def test_invalid_paths_are_refused(vault: Vault, path: str) -> None:
    with pytest.raises(errors.InvalidInput):
        vault.create_secret(path, "v")


def test_invalid_values_and_versions(vault: Vault) -> None:
    with pytest.raises(errors.InvalidInput, match="empty"):
        vault.create_secret("a/b", "")
    with pytest.raises(errors.PayloadTooLarge):
        vault.create_secret("a/b", "x" * (1024 * 1024 + 1))
    vault.create_secret("a/b", "x" * (1024 * 1024))
    with pytest.raises(errors.VersionNotFound):
        vault.get_secret_version("a/b", 2)
    for bad in (0, -1, True):
        with pytest.raises(errors.InvalidInput):
            vault.get_secret_version("a/b", bad)
    with pytest.raises(errors.InvalidInput):
        vault.create_secret("c/d", "v", expires_in=timedelta(seconds=-1))


def test_list_prefix_is_literal_and_case_sensitive(vault: Vault) -> None:
    for path in ["db/a", "db/b", "DB/c", "dbx/d", "d_/e", "web/g"]:
        vault.create_secret(path, "v")
    assert [s.path for s in vault.list_secrets("db/")] == ["db/a", "db/b"]
    assert [s.path for s in vault.list_secrets("DB/")] == ["DB/c"]
    assert [s.path for s in vault.list_secrets("d_")] == ["d_/e"]
    assert vault.list_secrets("d%") == []  # LIKE 'd%' would match every d... path
    assert vault.list_secrets("d\\") == []
    assert [s.path for s in vault.list_secrets()] == sorted(
        ["db/a", "db/b", "DB/c", "dbx/d", "d_/e", "web/g"]
    )


def test_list_paths_describes_only_what_is_picked(vault: Vault) -> None:
    for path in ["db/a", "db/b", "db/c/d", "dbx/e"]:
        vault.create_secret(path, "v", description=path)
    seen: list[list[str]] = []

    def pick(paths: list[str]) -> list[str]:
        seen.append(paths)
        return [paths[1], "db/missing"]

    paths, infos = vault.secrets.list_paths("db/", pick)
    assert paths == seen[0] == ["db/a", "db/b", "db/c/d"]
    assert [(i.path, i.description, i.version) for i in infos] == [("db/b", "db/b", 1)]
    assert vault.secrets.list_paths("db/") == (["db/a", "db/b", "db/c/d"], [])
    lists = vault.audit_logs(action="list", limit=10)
    assert [e.path for e in lists[:2]] == ["db/", "db/"]  # one audited list per call
    with pytest.raises(errors.InvalidInput):
        vault.secrets.list_paths("bad\x00prefix")
    vault.lock()
    with pytest.raises(errors.VaultLocked):
        vault.secrets.list_paths("db/")


def test_expiry_and_cleanup(vault: Vault, clock: ManualClock) -> None:
    vault.create_secret("temp/token", "t", expires_in=timedelta(hours=24))
    vault.create_secret("keep/me", "k")
    listed = {s.path: s for s in vault.list_secrets()}
    assert listed["temp/token"].expires_at == clock.now() + timedelta(hours=24)
    assert listed["keep/me"].expires_at is None
    clock.advance(timedelta(hours=24))
    with pytest.raises(errors.SecretExpired):
        vault.get_secret("temp/token")
    with pytest.raises(errors.SecretNotFound):  # SecretExpired is a SecretNotFound
        vault.get_secret_version("temp/token", 1)
    assert "temp/token" in {s.path for s in vault.list_secrets()}
    assert vault.cleanup_expired() == 1
    assert [s.path for s in vault.list_secrets()] == ["keep/me"]
    assert vault.cleanup_expired() == 0


def test_create_replaces_expired_secret(vault: Vault, clock: ManualClock) -> None:
    vault.create_secret("temp/a", "old", expires_in=timedelta(seconds=30))
    clock.advance(timedelta(minutes=1))
    info = vault.create_secret("temp/a", "new")
    assert info.version == 1 and info.expires_at is None
    assert vault.get_secret("temp/a") == "new"


def test_generate_token(vault: Vault) -> None:
    token = vault.generate_token(32)
    assert len(token) == 43 and "=" not in token and token != vault.generate_token(32)
    assert len(vault.generate_token(1024)) >= 1024
    for bad in (0, 1025, -5):
        with pytest.raises(errors.InvalidInput):
            vault.generate_token(bad)


def test_values_are_not_stored_in_plaintext(vault: Vault, dsn: str) -> None:
    from tests.rawsql import execute

    vault.create_secret("a/b", "CANARY-plaintext-value")
    rows = execute(dsn, "SELECT value FROM vault_secret_versions")
    assert rows and all("CANARY" not in r[0] for r in rows)
    audit = execute(dsn, "SELECT * FROM vault_audit_logs")
    assert all("CANARY" not in str(r) for r in audit)


def test_unencodable_text_and_huge_versions_are_invalid_input(vault: Vault) -> None:
    with pytest.raises(errors.InvalidInput, match="Unicode"):
        vault.create_secret("a/b", "\ud800")
    with pytest.raises(errors.InvalidInput, match="Unicode"):
        vault.create_secret("a/b", "v", description="\udfff")
    vault.create_secret("a/b", "v")
    for bad in (2**31, 2**70):
        with pytest.raises(errors.InvalidInput):
            vault.rollback_secret("a/b", bad)
        with pytest.raises(errors.InvalidInput):
            vault.get_secret_version("a/b", bad)
    assert vault.get_secret("a/b") == "v"


def test_cleanup_of_many_works_in_batches_with_progress(
    vault: Vault, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from strongroom.core import secrets as core_secrets

    monkeypatch.setattr(core_secrets, "CLEANUP_BATCH", 4)
    for i in range(10):
        vault.create_secret(f"temp/{i:02d}", "t", expires_in=timedelta(minutes=1))
    vault.create_secret("keep/me", "k")
    clock.advance(timedelta(minutes=2))
    seen: list[tuple[int, int]] = []
    assert vault.cleanup_expired(progress=lambda done, total: seen.append((done, total))) == 10
    assert seen == [(4, 10), (8, 10), (10, 10)]
    assert [s.path for s in vault.list_secrets()] == ["keep/me"]
    deletes = vault.audit_logs(action="delete", limit=100)
    assert sorted(e.path or "" for e in deletes) == [f"temp/{i:02d}" for i in range(10)]
    assert vault.verify_audit().ok


class _TickingClock(ManualClock):
    """Each reading is a millisecond after the last (a real clock moves during a call)."""

    def now(self) -> datetime:
        moment = super().now()
        self.advance(timedelta(milliseconds=1))
        return moment


def test_create_returns_what_is_stored_its_row_and_version_at_one_moment(dsn: str) -> None:
    """A created secret is stored at version 1 in one insert (no update after its version):
    created, updated and its version's time are the one moment the call returns."""
    vault = open_vault(dsn, fast_config(clock=_TickingClock(), auto_lock=False))
    try:
        vault.unlock(MASTER_KEY)
        info = vault.create_secret("tick/a", "v", description="d", expires_in=timedelta(days=1))
        assert vault.list_secrets("tick/") == [info]
        assert info.version == 1 and info.created_at == info.updated_at
        (only,) = vault.list_versions("tick/a")
        assert only.version == 1 and only.updated_at == info.updated_at
        assert vault.get_secret("tick/a") == "v"
        assert vault.update_secret("tick/a", "w") == 2
        assert vault.list_secrets("tick/")[0].updated_at > info.updated_at
    finally:
        vault.close()
