"""Request-field parsers shared by both APIs: strings, non-negative integers, version lists."""

from __future__ import annotations

from typing import Any

from strongroom import errors

#: Versions, limits and lengths are 32-bit integer columns; larger numbers are refused here.
MAX_INT = 2**31 - 1

__all__ = ["MAX_INT", "int_field", "str_field", "versions_field"]


def str_field(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """A string field of a JSON body (None when absent and optional).

    Raises:
        InvalidInput: missing when required, not a string, or not encodable as UTF-8.
    """
    value = body.get(name)
    if value is None:
        if required:
            raise errors.InvalidInput(f"missing field {name!r}")
        return None
    if not isinstance(value, str):
        raise errors.InvalidInput(f"field {name!r} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # JSON allows lone surrogates ("\ud800"); UTF-8 does not
        raise errors.InvalidInput(f"field {name!r} must be valid Unicode text") from exc
    return value


def int_field(raw: object, name: str, *, default: int | None = None) -> int:
    """A non-negative integer (at most MAX_INT) from a JSON number or a digit string (query
    strings, and Vault's clients, send numbers as strings).

    Raises:
        InvalidInput: anything else, negative numbers included.
    """
    if raw is None and default is not None:
        return default
    text = raw.strip() if isinstance(raw, str) else ""
    if text.isascii() and text.isdigit() and len(text) <= 9:
        return int(text)
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= MAX_INT:
        return raw
    raise errors.InvalidInput(f"{name} must be a non-negative integer")


def versions_field(raw: object) -> list[int]:
    """Version numbers: a JSON list, or a comma-separated string as Vault accepts.

    Raises:
        InvalidInput: none given, or not non-negative integers.
    """
    if isinstance(raw, str):
        raw = [v for v in raw.split(",") if v.strip()]
    if not isinstance(raw, list) or not raw:
        raise errors.InvalidInput("no version number provided")
    return [int_field(v, "versions") for v in raw]
