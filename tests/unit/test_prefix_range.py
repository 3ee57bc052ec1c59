"""`txbase.prefix_range`: on SQLite, the index range that holds exactly the text values
under a prefix (the listings use it with no substr test beside it)."""

from __future__ import annotations

import sqlite3

from hypothesis import given
from hypothesis import strategies as st

from strongroom.storage.txbase import prefix_range

# ASCII with its edges (NUL aside: SQLite text ends there), the next character past it, and
# a few beyond, which the prefix may not hold but the stored values may.
_CHARS = st.sampled_from(["\x01", "a", "b", "/", ":", "~", "\x7f", "\x80", "é", "\uffff", "😀"])
_TEXT = st.lists(_CHARS, max_size=5).map("".join)


@given(_TEXT, st.data())
def test_the_sqlite_range_is_exactly_the_values_under_the_prefix(
    prefix: str, data: st.DataObject
) -> None:
    # values near the prefix: under it, beside it (its last character changed), and any
    near = st.sampled_from([prefix, prefix[:-1], ""])
    values = data.draw(st.lists(st.tuples(near, _TEXT).map("".join), max_size=30, unique=True))
    bounds = prefix_range("sqlite", prefix)
    if not prefix or not prefix.isascii():
        assert bounds is None
        return
    assert bounds is not None
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v VARCHAR(500) NOT NULL UNIQUE)")
    db.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    found = db.execute("SELECT v FROM t WHERE v >= ? AND v < ? ORDER BY v", bounds).fetchall()
    assert [v for (v,) in found] == sorted(
        (v for v in values if v.startswith(prefix)), key=lambda v: v.encode()
    )


def test_no_range_off_sqlite() -> None:
    """PostgreSQL's indexes follow the database's collation: its callers test substr."""
    assert prefix_range("postgresql", "a/") is None
    assert prefix_range("sqlite", "a/") == ("a/", "a0")
