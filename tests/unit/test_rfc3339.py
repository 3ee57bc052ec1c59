"""`kv2_format.rfc3339`: Go's RFC 3339 with nanoseconds, as Vault prints its timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from strongroom.http.kv2_format import rfc3339


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC), "2026-01-02T03:04:05.12Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC), "2026-01-02T03:04:05.999999Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 10, tzinfo=UTC), "2026-01-02T03:04:05.00001Z"),
        # another offset is converted to UTC
        (
            datetime(2026, 1, 2, 1, 4, 5, 1, tzinfo=timezone(timedelta(hours=-2))),
            "2026-01-02T03:04:05.000001Z",
        ),
        (datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC), "0999-12-31T23:59:59Z"),
        (None, ""),
    ],
)
def test_rfc3339(moment: datetime | None, text: str) -> None:
    assert rfc3339(moment) == text
