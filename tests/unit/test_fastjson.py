"""`strongroom.fastjson`: orjson where it can, the standard library's answer everywhere."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom import fastjson

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _reference(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@given(_json)
def test_writes_the_json_values_the_standard_library_writes(value: Any) -> None:
    assert json.loads(fastjson.dumps(value)) == json.loads(_reference(value))


def test_the_common_answers_are_byte_for_byte_the_same() -> None:
    body = {"data": {"data": {"user": "é", "n": 3, "ok": True}, "keys": ["a", "b/"]}, "x": None}
    assert fastjson.dumps(body) == _reference(body)


def test_what_orjson_refuses_takes_the_standard_librarys_path() -> None:
    for n in (2**64, -(2**63) - 1, 12345678901234567890123):
        encoded = fastjson.dumps({"n": n})
        assert encoded == _reference({"n": n})
        assert json.loads(encoded)["n"] == n
    assert fastjson.dumps({1: "a"}) == b'{"1":"a"}'  # keys that are not strings
    assert fastjson.dumps({"s": "\ud800"}) == b'{"s":"\\ud800"}'  # a lone surrogate, escaped


@dataclasses.dataclass
class _Record:
    secret: str


@pytest.mark.parametrize("value", [object(), datetime(2026, 1, 1, tzinfo=UTC), _Record("x")])
def test_what_json_refuses_is_still_refused(value: object) -> None:
    with pytest.raises(TypeError):
        fastjson.dumps({"v": value})
