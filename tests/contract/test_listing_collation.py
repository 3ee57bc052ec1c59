"""Listings on a PostgreSQL database whose collation does not order text bytewise (ICU's
en-US, as most deployments' en_US.UTF-8): the paths under a prefix are not one range of its
own indexes there, so the listings compare `path COLLATE "C"` with `prefix_range`'s bounds,
through `idx_vault_secrets_mount_path` (migration 0007). The test database is C.UTF-8, where a
mistake in that would not show."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from strongroom import Vault, open_vault
from tests.conftest import MASTER_KEY, PG_BASE, fast_config

pytestmark = pytest.mark.postgres

#: Paths whose en-US order differs from their bytewise one (case, `-` `.` `_` against `/`).
PATHS = [
    "a/b",
    "a/B",
    "a/c/d",
    "a-c",
    "a.b/c",
    "A/x",
    "a_",
    "a_/y",
    "ab",
    "b",
    "team/x",
    "team/Y/z",
    "team-x/y",
    "Z/1",
]


def _under(prefix: str) -> list[str]:
    return [p for p in PATHS if p.startswith(prefix)]


@pytest.fixture
def icu_vault(pg_ready: bool) -> Iterator[tuple[Vault, str]]:
    if not pg_ready:
        pytest.skip("PostgreSQL not reachable")
    name = f"t_icu_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(
            f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu'
            " ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
    dsn = PG_BASE.rsplit("/", 1)[0] + f"/{name}"
    vault = open_vault(dsn, fast_config(auto_lock=False))
    try:
        vault.unlock(MASTER_KEY)
        yield vault, dsn
    finally:
        vault.close()
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_listings_hold_exactly_the_paths_under_a_prefix(icu_vault: tuple[Vault, str]) -> None:
    vault, dsn = icu_vault
    with psycopg.connect(dsn) as conn:  # the premise: this database orders text otherwise
        assert conn.execute("SELECT 'B' > 'a', 'a-c' < 'a/b'").fetchone() == (True, True)
    for path in PATHS:
        vault.kv.write(path, {"v": path})
    assert vault.kv.metadata.list("a") == ["B", "b", "c/"]
    assert vault.kv.metadata.list("team") == ["Y/", "x"]
    assert vault.kv.metadata.list("a_") == ["y"]
    assert vault.kv.metadata.list("") == sorted(
        {p.split("/", 1)[0] + ("/" if "/" in p else "") for p in PATHS}
    )
    with psycopg.connect(dsn) as conn:
        for prefix in ["a", "a/", "a-", "a_", "team", "team/", "Z/", "zz"]:
            listed = [info.path for info in vault.list_secrets(prefix)]
            # the paths under the prefix, in the database's own order (as before the index)
            ordered = conn.execute(
                "SELECT path FROM vault_secrets WHERE path = ANY(%s) ORDER BY path",
                (_under(prefix),),
            ).fetchall()
            assert listed == [p for (p,) in ordered], prefix
        plan = conn.execute(
            "EXPLAIN SELECT path FROM vault_secrets WHERE mount_id = 1"
            " AND path COLLATE \"C\" >= 'a/' AND path COLLATE \"C\" < 'a0'"
        ).fetchall()
    assert "idx_vault_secrets_mount_path" in " ".join(row[0] for row in plan)
