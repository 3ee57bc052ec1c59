"""`UTCDateTime` on SQLite: the fast bind and result processors store and read exactly what
SQLAlchemy's own SQLite DATETIME does (rows written before them sort and compare the same)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from strongroom.storage.tables import COLUMN_CONVERTERS, UTCDateTime

DIALECT = sqlite.dialect()
BIND = UTCDateTime()._cached_bind_processor(DIALECT)
RESULT = UTCDateTime()._cached_result_processor(DIALECT, None)
#: SQLAlchemy's own: UTC, naive, then its SQLite text format and parser.
SA_BIND = sqlite.DATETIME().bind_processor(DIALECT)  # type: ignore[no-untyped-call]
SA_RESULT = sqlite.DATETIME().result_processor(DIALECT, None)  # type: ignore[no-untyped-call]

moments = st.datetimes(
    min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
) | st.datetimes(
    min_value=datetime(1000, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([timezone(timedelta(hours=2)), timezone(timedelta(hours=-7))]),
)


@given(moments)
def test_stored_text_is_sqlalchemys(moment: datetime) -> None:
    assert BIND is not None and SA_BIND is not None
    assert BIND(moment) == SA_BIND(moment.astimezone(UTC).replace(tzinfo=None))


@given(moments)
def test_read_back_as_the_same_aware_utc_moment(moment: datetime) -> None:
    assert BIND is not None and RESULT is not None and SA_RESULT is not None
    text = BIND(moment)
    back = RESULT(text)
    assert back == moment and back.tzinfo is UTC
    theirs = SA_RESULT(text)
    assert theirs is not None and back == theirs.replace(tzinfo=UTC)


def test_none_and_text_without_a_fraction() -> None:
    assert BIND is not None and RESULT is not None
    assert BIND(None) is None and RESULT(None) is None
    # as SQLite's own CURRENT_TIMESTAMP writes it, and a date alone
    assert RESULT("2026-12-03 10:00:00") == datetime(2026, 12, 3, 10, tzinfo=UTC)
    assert RESULT("2026-12-03") == datetime(2026, 12, 3, tzinfo=UTC)


def test_text_with_an_offset_of_its_own_is_read_as_that_moment() -> None:
    """Text no `UTCDateTime` wrote (a repair by hand, another tool): read, not a 500."""
    assert RESULT is not None
    assert RESULT("2026-12-03 10:00:00.5+02:00") == datetime(2026, 12, 3, 8, 0, 0, 500000, UTC)
    assert RESULT("2026-12-03T10:00:00Z") == datetime(2026, 12, 3, 10, tzinfo=UTC)


@given(st.lists(moments | st.none(), max_size=20))
def test_a_column_reads_as_each_value(values: list[datetime | None]) -> None:
    """`txbase.fetch_columns` parses a whole column at once: the values `RESULT` gives."""
    assert BIND is not None and RESULT is not None
    texts = [BIND(v) for v in values]
    converted = COLUMN_CONVERTERS[RESULT](texts)
    assert converted == [RESULT(text) for text in texts]
    assert all(v is None or v.tzinfo is UTC for v in converted)
