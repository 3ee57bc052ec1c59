"""`txbase.prefix_range`: the index range that holds exactly the text values under a prefix,
compared bytewise (the listings use it with no substr test beside it), on SQLite and, in the
"C" collation of `idx_vault_secrets_mount_path`, on PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.storage.txbase import prefix_range
from tests.conftest import PG_BASE

# ASCII with its edges (NUL aside: SQLite text ends there), the next character past it, and
# a few beyond, which the prefix may not hold but the stored values may.
_CHARS = st.sampled_from(
    ["\x01", "a", "b", "B", "/", ":", "~", "\x7f", "\x80", "é", "\uffff", "😀"]
)
_TEXT = st.lists(_CHARS, max_size=5).map("".join)

Query = Callable[[Sequence[str], tuple[str, str]], list[str]]


def _check(query: Query, dialect: str, prefix: str, data: st.DataObject) -> None:
    # values near the prefix: under it, beside it (its last character changed), and any
    near = st.sampled_from([prefix, prefix[:-1], ""])
    values = data.draw(st.lists(st.tuples(near, _TEXT).map("".join), max_size=30, unique=True))
    bounds = prefix_range(dialect, prefix)
    if not prefix or not prefix.isascii() or prefix.endswith("\x7f"):
        assert bounds is None
        return
    assert bounds is not None
    assert query(values, bounds) == sorted(
        (v for v in values if v.startswith(prefix)), key=lambda v: v.encode()
    )


@given(_TEXT, st.data())
def test_the_sqlite_range_is_exactly_the_values_under_the_prefix(
    prefix: str, data: st.DataObject
) -> None:
    def query(values: Sequence[str], bounds: tuple[str, str]) -> list[str]:
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE t (v VARCHAR(500) NOT NULL UNIQUE)")
        db.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
        found = db.execute("SELECT v FROM t WHERE v >= ? AND v < ? ORDER BY v", bounds)
        return [v for (v,) in found]

    _check(query, "sqlite", prefix, data)


@pytest.fixture(scope="module")
def pg_query(pg_ready: bool) -> Iterator[Query]:
    if not pg_ready:
        pytest.skip("PostgreSQL not reachable")
    import psycopg

    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE t (v VARCHAR(500) NOT NULL UNIQUE)")
        conn.execute('CREATE INDEX ON t (v COLLATE "C")')  # (as idx_vault_secrets_mount_path)

        def query(values: Sequence[str], bounds: tuple[str, str]) -> list[str]:
            conn.execute("TRUNCATE t")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO t VALUES (%s)", [(v,) for v in values])
            found = conn.execute(
                'SELECT v FROM t WHERE v COLLATE "C" >= %s AND v COLLATE "C" < %s'
                ' ORDER BY v COLLATE "C"',
                bounds,
            )
            return [v for (v,) in found]

        yield query


@pytest.mark.postgres
@given(_TEXT, st.data())
def test_the_postgresql_range_in_c_collation_is_exactly_the_values_under_the_prefix(
    pg_query: Query, prefix: str, data: st.DataObject
) -> None:
    _check(pg_query, "postgresql", prefix, data)


def test_no_range_where_no_index_has_one() -> None:
    assert prefix_range("sqlite", "a/") == ("a/", "a0")
    assert prefix_range("postgresql", "a/") == ("a/", "a0")
    assert prefix_range("postgresql", "é/") is None  # (paths are ASCII: substr does it)
    assert prefix_range("sqlite", "") is None
    assert prefix_range("postgresql", "a\x7f") is None  # (no U+0080 bound)
    assert prefix_range("mysql", "a/") is None
