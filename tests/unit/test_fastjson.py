"""`strongroom.fastjson`: orjson where it can, the standard library's answer everywhere."""

from __future__ import annotations

import json
import math
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
def test_encodes_to_what_the_standard_library_reads_back(value: Any) -> None:
    data = fastjson.dumps(value)
    assert json.loads(data) == json.loads(_reference(value))
    assert fastjson.loads(data) == json.loads(data)


def test_the_common_answers_are_byte_for_byte_the_same() -> None:
    body = {"data": {"data": {"user": "é", "n": 3, "ok": True}, "keys": ["a", "b/"]}, "x": None}
    assert fastjson.dumps(body) == _reference(body)


def test_what_orjson_refuses_takes_the_standard_librarys_path() -> None:
    big = {"n": 2**70, "m": -(2**65)}
    assert fastjson.dumps(big) == _reference(big)
    assert fastjson.loads(b'{"n": 1180591620717411303424}') == {"n": 2**70}
    assert fastjson.dumps({1: "a"}) == b'{"1":"a"}'  # keys that are not strings
    assert fastjson.dumps({"s": "\ud800"}) == b'{"s":"\\ud800"}'  # a lone surrogate, escaped
    assert math.isnan(fastjson.loads("NaN"))


def test_not_json_is_refused_as_the_standard_library_refuses_it() -> None:
    with pytest.raises(json.JSONDecodeError):
        fastjson.loads(b"{nope")
    with pytest.raises(TypeError):
        fastjson.dumps({"when": object()})
