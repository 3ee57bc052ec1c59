"""Shared fixtures: fast Argon2 settings, an injected clock, and a DSN per backend.

PostgreSQL tests run against the machine's server (127.0.0.1:5432, database `test`), each in a
schema of its own that is dropped afterwards. Locally they skip when the server is unreachable;
under CI=true an unreachable server fails the run instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom import Vault, VaultConfig, open_vault
from strongroom.clock import ManualClock

PG_BASE = os.environ.get("STRONGROOM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MASTER_KEY = "test-master-key-0123456789"
FAST_KDF = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}


def fast_config(**overrides: object) -> VaultConfig:
    """A VaultConfig with cheap Argon2 parameters for tests."""
    return VaultConfig(**{**FAST_KDF, **overrides})  # type: ignore[arg-type]


def _pg_available() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_BASE, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def pg_ready() -> bool:
    ok = _pg_available()
    if not ok and os.environ.get("CI") == "true":
        pytest.fail("PostgreSQL at 127.0.0.1:5432 is unreachable under CI=true")
    return ok


def make_pg_schema() -> tuple[str, str]:
    """Create a fresh schema; return (dsn bound to it, schema name)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_BASE else "?"
    return f"{PG_BASE}{sep}options=-csearch_path%3D{schema}", schema


def drop_pg_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_dsn(pg_ready: bool) -> Iterator[str]:
    """A DSN on an empty PostgreSQL schema of this test's own."""
    if not pg_ready:
        pytest.skip("PostgreSQL not reachable")
    dsn, schema = make_pg_schema()
    yield dsn
    drop_pg_schema(schema)


@pytest.fixture
def sqlite_dsn(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vault.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A DSN on an empty database, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vault.db'}"
    else:
        yield request.getfixturevalue("pg_dsn")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def vault(dsn: str, clock: ManualClock) -> Iterator[Vault]:
    """An unlocked vault on each backend with an injected clock (auto-lock off: tests move time)."""
    v = open_vault(dsn, fast_config(clock=clock, auto_lock=False))
    v.unlock(MASTER_KEY)
    yield v
    v.close()
