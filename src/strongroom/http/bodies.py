"""Request-field checks and the JSON shapes of responses (the design document's field names)."""

from __future__ import annotations

from typing import Any

from strongroom import errors

#: Versions, limits and lengths are 32-bit integer columns; larger numbers are refused here.
MAX_INT = 2**31 - 1

__all__ = ["int_field", "str_field"]


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
    """A non-negative integer from a JSON number or a query-string digit string.

    Raises:
        InvalidInput: anything else.
    """
    if raw is None and default is not None:
        return default
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 9:
        return int(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) <= MAX_INT:
        return raw
    raise errors.InvalidInput(f"{name} must be a positive integer")
