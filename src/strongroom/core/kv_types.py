"""KV v2 value types and the pure rules behind them: durations, custom metadata, merge patch,
subkeys and folder listing.

Nothing here does I/O. The shapes mirror Vault's KV v2 responses so the HTTP layer only formats
them; times are aware UTC datetimes and durations `timedelta`s.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from strongroom import errors
from strongroom.records import constructor

__all__ = [
    "MAX_CUSTOM_KEYS",
    "KVConfig",
    "KVMetadata",
    "KVSecret",
    "KVVersionMeta",
    "KVVersionState",
    "coerce_custom_metadata",
    "folder_keys",
    "format_go_duration",
    "merge_patch",
    "new_kv_secret",
    "new_version_meta",
    "parse_go_duration",
    "subkeys",
]

MAX_CUSTOM_KEYS = 64
MAX_CUSTOM_KEY_LENGTH = 128
MAX_CUSTOM_VALUE_LENGTH = 512
_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_MAX_SECONDS = 100 * 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class KVVersionMeta:
    """The metadata Vault returns with a version (`data/` reads and writes)."""

    version: int
    created_at: datetime
    deletion_time: datetime | None
    destroyed: bool
    custom_metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KVSecret:
    """One readable version: its JSON object and its metadata."""

    data: dict[str, Any]
    metadata: KVVersionMeta


#: `KVVersionMeta(...)` and `KVSecret(...)` built faster, for every read (`strongroom.records`).
new_version_meta = constructor(KVVersionMeta)
new_kv_secret = constructor(KVSecret)


@dataclass(frozen=True, slots=True)
class KVVersionState:
    """One entry of a key's `versions` map."""

    created_at: datetime
    deletion_time: datetime | None
    destroyed: bool


@dataclass(frozen=True, slots=True)
class KVMetadata:
    """A key's metadata (`metadata/` reads). `oldest_version` is 0 until versions were pruned."""

    path: str
    created_at: datetime
    updated_at: datetime
    current_version: int
    oldest_version: int
    max_versions: int
    cas_required: bool
    delete_version_after: timedelta
    custom_metadata: dict[str, str]
    versions: dict[int, KVVersionState]


@dataclass(frozen=True, slots=True)
class KVConfig:
    """The mount-wide settings (`config`): 0 / False / zero duration mean "not set"."""

    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: timedelta = timedelta(0)


def parse_go_duration(value: object) -> timedelta:
    """A Vault duration: seconds as an int or digit string, or Go syntax (`90s`, `1h30m`, `0s`).

    Sub-second parts are truncated to whole seconds (storage keeps seconds).

    Raises:
        InvalidInput: negative, malformed, or longer than 100 years.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        seconds = float(int(value.strip()))
    elif isinstance(value, str):
        seconds = _parse_go_text(value.strip())
    else:
        raise errors.InvalidInput("invalid duration: expected seconds or a string such as 1h30m")
    if seconds < 0:
        raise errors.InvalidInput("invalid duration: cannot be negative")
    if seconds > _MAX_SECONDS:
        raise errors.InvalidInput("invalid duration: must be under 100 years")
    return timedelta(seconds=int(seconds))


def _parse_go_text(text: str) -> float:
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    if not body or _GO_PART.sub("", body) != "":
        raise errors.InvalidInput(f"invalid duration {text[:40]!r}: expected e.g. 30s, 15m, 1h30m")
    return sign * sum(float(n) * _GO_UNITS[u] for n, u in _GO_PART.findall(body))


def format_go_duration(value: timedelta) -> str:
    """Go's `time.Duration.String()` for whole seconds: `0s`, `1m30s`, `1h0m0s`."""
    total = int(value.total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def _as_string(value: object) -> str:
    """Vault's weak string conversion of a JSON scalar (`1` -> "1", `true` -> "1")."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    raise errors.InvalidInput("custom_metadata validation failed: values must be strings")


def coerce_custom_metadata(value: object) -> dict[str, str]:
    """Validate `custom_metadata` as Vault does, converting scalar values to strings.

    Raises:
        InvalidInput: not an object, more than 64 keys, a key of 0 or over 128 characters, or a
            value that is not a scalar or is 0 or over 512 characters long.
    """
    if not isinstance(value, dict):
        raise errors.InvalidInput("custom_metadata must be an object of strings")
    if len(value) > MAX_CUSTOM_KEYS:
        raise errors.InvalidInput(
            f"custom_metadata validation failed: payload must contain at "
            f"most {MAX_CUSTOM_KEYS} keys, provided {len(value)}"
        )
    result: dict[str, str] = {}
    for key, raw in value.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_CUSTOM_KEY_LENGTH:
            raise errors.InvalidInput(
                f"custom_metadata validation failed: keys must be 1 to "
                f"{MAX_CUSTOM_KEY_LENGTH} characters"
            )
        text = "" if raw is None else _as_string(raw)
        if not 0 < len(text) <= MAX_CUSTOM_VALUE_LENGTH:
            raise errors.InvalidInput(
                f"custom_metadata validation failed: the value of {key!r} "
                f"must be 1 to {MAX_CUSTOM_VALUE_LENGTH} characters"
            )
        try:
            key.encode("utf-8")
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise errors.InvalidInput(
                "custom_metadata validation failed: keys and values must be valid Unicode text"
            ) from exc
        result[key] = text
    return result


def merge_patch(target: object, patch: object) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, `null` removes, anything else
    replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def subkeys(data: dict[str, Any], depth: int = 0, level: int = 1) -> dict[str, Any]:
    """The key structure of `data`: leaves, arrays and keys at `depth` (0: no limit) are None."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and (depth == 0 or level < depth):
            out[key] = subkeys(value, depth, level + 1)
        else:
            out[key] = None
    return out


def folder_keys(paths: list[str], folder: str) -> list[str]:
    """The entries directly under `folder` ("" or "a/b/") of distinct `paths` (rows of a
    unique index): keys, and sub-folders ending in `/`, deduplicated and sorted."""
    # String methods and comprehensions rather than a loop of steps: a folder of 1,000 keys
    # took 560 us, half a list request's time (docs/decisions.md, "Speed, round three").
    text = "\n" + "\n".join(paths)
    tails = text.split("\n" + folder)
    if len(tails) == len(paths) + 1 and text.count("\n") == len(paths):
        # Each newline starts a path and is followed by `folder` (what storage returns: the
        # paths under a prefix): the tails, cut in C (a folder of 1,000 keys: 133 -> 84 us
        # for this function, "Speed, round twelve"). tails[0] is what came before the first
        # newline: nothing.
        del tails[0]
    else:
        start = len(folder)
        tails = [path[start:] for path in paths if path.startswith(folder)]
    if "/" not in "".join(tails):
        # No sub-folder (the common case): the entries are the tails, checked in one pass of
        # C code instead of one step per entry (1,000: 203 -> 128 us, docs/decisions.md,
        # "Speed, round five").
        keys = [tail for tail in tails if tail] if "" in tails else tails
        keys.sort()
        return keys
    entries = [tail if "/" not in tail else tail[: tail.index("/") + 1] for tail in tails if tail]
    # Cutting sorted paths at their first `/` keeps them sorted: the sort below is then one
    # pass. (PostgreSQL's collation may order them otherwise, hence the sort.)
    unique = list(dict.fromkeys(entries))
    unique.sort()
    return unique


def json_size(data: dict[str, Any]) -> int:
    """The encoded size of a version's plaintext, checking it is plain JSON.

    Raises:
        InvalidInput: `data` holds something JSON cannot represent.
    """
    try:
        return len(
            json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
                "utf-8"
            )
        )
    except (TypeError, ValueError) as exc:
        raise errors.InvalidInput("data must be a JSON object") from exc
