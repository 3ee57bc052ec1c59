"""Request-field parsers shared by both APIs: strings, non-negative integers, version lists.

JSON bodies are typed: a number field takes a JSON number, never a digit string. Query strings
are text by nature, so `query_int` reads digits there (and in Vault's comma-separated lists).
"""

from __future__ import annotations

from typing import Any, NoReturn

from strongroom import errors

#: Versions, limits and lengths are 32-bit integer columns; larger numbers are refused here.
MAX_INT = 2**31 - 1

__all__ = ["MAX_INT", "int_field", "query_int", "str_field", "versions_field"]


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
    """A non-negative integer (at most MAX_INT) from a JSON body: a JSON number, never a string
    (`"1"` is refused: a string is never an integer in a JSON body).

    Raises:
        InvalidInput: anything else, negative numbers and digit strings included.
    """
    if raw is None and default is not None:
        return default
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= MAX_INT:
        return raw
    raise errors.InvalidInput(f"{name} must be a non-negative integer")


def query_int(raw: str | None, name: str, *, default: int | None = None) -> int:
    """A non-negative integer from a query-string parameter (or a comma-separated list item),
    where every value arrives as text: ASCII digits only, at most 9 of them.

    Raises:
        InvalidInput: missing without a default, or not digits.
    """
    if raw is None and default is not None:
        return default
    text = raw.strip() if isinstance(raw, str) else ""
    if text.isascii() and text.isdigit() and len(text) <= 9:
        return int(text)
    raise errors.InvalidInput(f"{name} must be a non-negative integer")


def versions_field(raw: object) -> list[int]:
    """Version numbers: a JSON list, or a comma-separated string as Vault accepts.

    Raises:
        InvalidInput: none given, or not non-negative integers.
    """
    if isinstance(raw, str):
        return [query_int(v, "versions") for v in raw.split(",") if v.strip()] or _no_versions()
    if not isinstance(raw, list) or not raw:
        _no_versions()
    # Vault's `versions` is a comma-separated integer list: the `bao`/`vault` CLI sends its
    # `-versions=3` flag as a list of strings (["3"]), so list items may be digit strings.
    return [
        query_int(v, "versions") if isinstance(v, str) else int_field(v, "versions") for v in raw
    ]


def _no_versions() -> NoReturn:
    raise errors.InvalidInput("no version number provided")
