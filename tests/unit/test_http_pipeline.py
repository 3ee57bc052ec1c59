"""The request pipeline's pure pieces shared by `/api/vault` and `/v1`, and the one Settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from strongroom import VaultConfig, errors
from strongroom.config import DEFAULT_DSN, Secret, Settings, default_workers
from strongroom.crypto import KDFParams
from strongroom.http.bodies import MAX_INT, int_field, query_int, versions_field
from strongroom.http.errors import V1_OVERRIDES, error_response


@pytest.mark.parametrize(("raw", "expected"), [(0, 0), (42, 42), (MAX_INT, MAX_INT)])
def test_int_field_accepts_non_negative_integers(raw: object, expected: int) -> None:
    assert int_field(raw, "n") == expected


@pytest.mark.parametrize(
    "raw", [-1, -(2**31), "-1", MAX_INT + 1, True, 1.5, "1", "0", "1e3", "²", None, []]
)
def test_int_field_refuses_negatives_strings_and_anything_else(raw: object) -> None:
    with pytest.raises(errors.InvalidInput, match="non-negative integer"):
        int_field(raw, "n")


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("42", 42), (" 7 ", 7)])
def test_query_int_reads_digits(raw: str, expected: int) -> None:
    assert query_int(raw, "n") == expected


@pytest.mark.parametrize("raw", ["-1", "1e3", "²", "1234567890", "", None])
def test_query_int_refuses_anything_else(raw: str | None) -> None:
    with pytest.raises(errors.InvalidInput, match="non-negative integer"):
        query_int(raw, "n")


def test_int_field_default_and_versions() -> None:
    assert int_field(None, "limit", default=50) == 50
    assert versions_field("1, 3") == [1, 3] and versions_field([2]) == [2]
    assert versions_field(["3", 4]) == [3, 4]  # the bao CLI sends ["3"]
    for bad in ([], "", ",", None, [-1], ["x"], ["-1"], [1.5]):
        with pytest.raises(errors.InvalidInput):
            versions_field(bad)


def test_v1_not_found_is_in_the_one_table() -> None:
    assert V1_OVERRIDES[errors.NotFound].status == 404
    missing = error_response(errors.SecretNotFound(), "/v1/secret/data/a")
    assert (missing.status_code, bytes(missing.body)) == (404, b'{"errors":[]}')
    api = error_response(errors.SecretNotFound(), "/api/vault/secrets/a")
    assert api.status_code == 404 and b'"code":"secret_not_found"' in bytes(api.body)


def test_each_default_is_written_once() -> None:
    settings, core, kdf = Settings(), VaultConfig(), KDFParams()
    assert settings.db_dsn == DEFAULT_DSN
    assert (core.argon2_time_cost, core.argon2_memory_kib, core.argon2_parallelism) == (
        kdf.time_cost,
        kdf.memory_kib,
        kdf.parallelism,
    )
    derived = settings.vault_config()
    for name in ("auto_lock", "auto_lock_timeout", "argon2_time_cost", "argon2_memory_kib"):
        assert getattr(derived, name) == getattr(core, name), name


def test_flags_win_over_the_environment() -> None:
    env = {"STRONGROOM_AUTO_LOCK_TIMEOUT": "2m", "DATABASE_URL": "sqlite:///env.db"}
    s = Settings.from_env(env, db_dsn="sqlite:///flag.db", workers=None)
    assert s.db_dsn == "sqlite:///flag.db" and s.auto_lock_timeout == timedelta(minutes=2)
    assert s.workers == default_workers()  # `workers=None`: flag not given


def test_master_key_from_its_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file\n")
    s = Settings.from_env({"VAULT_MASTER_KEY_FILE": str(key_file)})
    assert s.master_key is None and s.resolved_master_key() == "from-a-file"
    direct = Settings.from_env({"VAULT_MASTER_KEY": "direct", "VAULT_MASTER_KEY_FILE": "nofile"})
    assert direct.resolved_master_key() == "direct"
    assert Settings(master_key=Secret("k")).resolved_master_key() == "k"
