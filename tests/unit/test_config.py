"""Settings.from_env: defaults (the worker count too), overrides, masking, malformed variables."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from strongroom import errors
from strongroom.config import (
    DEFAULT_DSN,
    MAX_WORKERS,
    Secret,
    Settings,
    child_environment,
    default_workers,
)


def test_defaults_from_empty_environment() -> None:
    s = Settings.from_env({})
    assert s.db_dsn == DEFAULT_DSN == "sqlite:///vault.db"
    assert s.master_key is None and s.addr is None and not s.is_remote
    assert s.auto_lock is True and s.auto_lock_timeout == timedelta(minutes=15)
    config = s.vault_config()
    assert (config.argon2_time_cost, config.argon2_memory_kib, config.argon2_parallelism) == (
        3,
        64 * 1024,
        4,
    )


def test_environment_and_overrides() -> None:
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u@h/db",
            "VAULT_MASTER_KEY": "k" * 20,
            "VAULT_ADDR": "http://127.0.0.1:8200",
            "VAULT_TOKEN": "tok",
            "VAULT_JWT_SECRET": "j" * 32,
            "STRONGROOM_ARGON2_TIME_COST": "1",
            "STRONGROOM_ARGON2_MEMORY_KIB": "1024",
            "STRONGROOM_ARGON2_PARALLELISM": "1",
            "STRONGROOM_AUTO_LOCK": "false",
            "STRONGROOM_AUTO_LOCK_TIMEOUT": "1h30m",
        }
    )
    assert s.db_dsn == "postgresql://u@h/db" and s.is_remote
    assert s.master_key is not None and s.master_key.reveal() == "k" * 20
    assert s.auto_lock is False and s.auto_lock_timeout == timedelta(minutes=90)
    assert s.vault_config().argon2_memory_kib == 1024
    changed = s.with_overrides(db_dsn="sqlite:///other.db", addr=None)
    assert changed.db_dsn == "sqlite:///other.db" and changed.addr == s.addr


def test_secrets_are_masked() -> None:
    s = Settings.from_env({"VAULT_MASTER_KEY": "super-secret-key", "VAULT_TOKEN": "tok-123"})
    assert "super-secret-key" not in repr(s) and "tok-123" not in repr(s)
    assert str(Secret("x")) == "Secret('**********')"
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STRONGROOM_ARGON2_TIME_COST", "three"),
        ("STRONGROOM_AUTO_LOCK", "maybe"),
        ("STRONGROOM_AUTO_LOCK_TIMEOUT", "soon"),
    ],
)
def test_malformed_variables_are_invalid_input(name: str, value: str) -> None:
    with pytest.raises(errors.InvalidInput, match=name):
        Settings.from_env({name: value})


def test_child_environment_drops_the_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_MASTER_KEY", "do-not-leak")
    env = child_environment({"DB_PASSWORD": "pw"})
    assert "VAULT_MASTER_KEY" not in env and env["DB_PASSWORD"] == "pw"


def test_server_operation_settings() -> None:
    env = {
        "STRONGROOM_TLS_CERT": "/c.pem",
        "STRONGROOM_TLS_KEY": "/k.pem",
        "STRONGROOM_TLS_CLIENT_CA": "/ca.pem",
        "VAULT_CACERT": "/trust.pem",
        "VAULT_MASTER_KEY_FILE": "/key",
    }
    s = Settings.from_env(env, auto_unlock=True, cleanup_interval=timedelta(0))
    assert (s.tls_cert, s.tls_key, s.tls_client_ca, s.ca_cert) == (
        "/c.pem",
        "/k.pem",
        "/ca.pem",
        "/trust.pem",
    )
    assert s.is_tls and s.auto_unlock and s.cleanup_interval == timedelta(0)
    defaults = Settings()
    assert not defaults.is_tls and not defaults.auto_unlock
    assert defaults.cleanup_interval == timedelta(hours=1) and defaults.graceful_timeout == 30


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tls_cert": "/c.pem"}, "go together"),
        ({"tls_key": "/k.pem"}, "go together"),
        ({"tls_client_ca": "/ca.pem"}, "needs --tls-cert"),
        ({"auto_unlock": True}, "needs a key source"),
        ({"cleanup_interval": timedelta(seconds=-1)}, "must not be negative"),
        ({"graceful_timeout": 0.0}, "--shutdown-timeout"),
        ({"outbox_retention": timedelta(seconds=-1)}, "OUTBOX_RETENTION"),
    ],
)
def test_server_operation_settings_are_checked(changes: dict[str, object], message: str) -> None:
    with pytest.raises(errors.InvalidInput, match=message):
        Settings(**changes)  # type: ignore[arg-type]


def test_outbox_retention() -> None:
    assert Settings.from_env({}).outbox_retention == timedelta(days=7)
    assert Settings.from_env({"STRONGROOM_OUTBOX_RETENTION": "36h"}).outbox_retention == timedelta(
        hours=36
    )


@pytest.mark.parametrize(("cpus", "expected"), [(1, 1), (3, 3), (64, 64), (200, MAX_WORKERS)])
def test_default_workers_are_the_cpus_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch, cpus: int, expected: int
) -> None:
    # The affinity set (taskset, cpusets) counts, not every CPU of the machine.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 256)
    assert default_workers() == expected
    assert Settings().workers == expected and Settings.from_env({}).workers == expected
    assert Settings.from_env({}, workers=5).workers == 5


@pytest.mark.parametrize(("cpu_count", "expected"), [(6, 6), (None, 1), (100, MAX_WORKERS)])
def test_default_workers_without_an_affinity_call(
    monkeypatch: pytest.MonkeyPatch, cpu_count: int | None, expected: int
) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cpu_count)
    assert default_workers() == expected


def test_default_workers_when_the_affinity_call_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(pid: int) -> set[int]:
        raise OSError("not permitted")

    monkeypatch.setattr(os, "sched_getaffinity", refuse, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert default_workers() == 4


@pytest.mark.parametrize("workers", [0, MAX_WORKERS + 1])
def test_workers_out_of_range(workers: int) -> None:
    with pytest.raises(errors.InvalidInput, match="--workers must be from 1 to 64"):
        Settings(workers=workers)
