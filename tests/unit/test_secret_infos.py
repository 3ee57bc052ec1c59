"""`models.secret_infos`: SecretInfo objects built a column at a time, bypassing the frozen
dataclass's `__init__`, must be exactly the objects the constructor builds."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

import pytest

from strongroom.models import SecretInfo, secret_infos

AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
ROWS = [
    (1, "a/b", None, 7, AT, AT, 1, None, {}, 0, False),
    (2, "a/c", "desc", 8, AT, AT, 3, AT, {"team": "x"}, 5, True),
]


def test_the_same_objects_as_the_constructor() -> None:
    built = secret_infos(list(zip(*ROWS, strict=True)))
    expected = [SecretInfo(*row) for row in ROWS]
    assert built == expected
    assert [repr(b) for b in built] == [repr(e) for e in expected]
    assert [hash((b.id, b.path)) for b in built] == [hash((e.id, e.path)) for e in expected]
    assert all(type(b) is SecretInfo for b in built)
    assert built[1].as_dict() == expected[1].as_dict()
    with pytest.raises(AttributeError):
        built[0].path = "x"  # type: ignore[misc]  # still frozen


def test_every_field_is_set_and_nothing_is_skipped() -> None:
    """Bypassing `__init__` is only safe while it does nothing but set the fields."""
    assert not hasattr(SecretInfo, "__post_init__")
    assert SecretInfo.__slots__ == tuple(f.name for f in fields(SecretInfo))
    assert secret_infos([() for _ in fields(SecretInfo)]) == []


def test_malformed_columns_are_refused() -> None:
    columns = list(zip(*ROWS, strict=True))
    with pytest.raises(ValueError, match="columns"):
        secret_infos(columns[:-1])
    with pytest.raises(ValueError, match="lengths"):
        secret_infos([*columns[:-1], (False,)])
