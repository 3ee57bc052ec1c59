"""Compact JSON through orjson, with the standard library for what orjson refuses.

orjson encodes a KV read's response in 0.3 us where `json.dumps` takes 5, and a listing of
1,000 keys in 4 us against 51 (docs/decisions.md, "Speed, round five"). It refuses what the
standard library accepts and some stored data may hold: integers beyond 64 bits, NaN and
infinities when decoding, lone surrogates, keys that are not strings; those take the standard
library's path, so every value decodes and encodes as it did before.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "loads"]


def dumps(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON (`json.dumps(value, separators=(",", ":"),
    ensure_ascii=False)`, encoded); a lone surrogate is escaped, as `ensure_ascii` does.

    Raises:
        TypeError, ValueError: as `json.dumps`, for what JSON cannot represent.
    """
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate somewhere: escaped, still valid JSON
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def loads(data: bytes | str) -> Any:
    """The value of a JSON document, as `json.loads` reads it.

    Raises:
        ValueError: not JSON (`json.JSONDecodeError`); RecursionError: nested too deeply.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
