"""Time: a Clock protocol (so tests inject time instead of sleeping) and duration parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Protocol

from strongroom import errors

__all__ = ["Clock", "ManualClock", "SystemClock", "parse_duration"]

DURATION_FORMS = "a number followed by s, m, h or d, e.g. 30s, 15m, 24h, 7d, 90d or 1h30m"
_PART = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_MAX = timedelta(days=365 * 100)


class Clock(Protocol):
    """Source of the current, timezone-aware UTC time."""

    def now(self) -> datetime:
        """Return the current time (aware, UTC)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; for tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 11, 3, 10, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """Return the clock's current time."""
        return self._now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta`."""
        self._now += delta


def parse_duration(text: str) -> timedelta:
    """Parse `30s`, `15m`, `24h`, `7d`, `90d` or combinations such as `1h30m`.

    Raises:
        InvalidInput: anything else (the message names the accepted forms).
    """
    raw = text.strip() if isinstance(text, str) else ""
    if not raw or _PART.sub("", raw) != "":
        raise errors.InvalidInput(f"invalid duration {text!r}: expected {DURATION_FORMS}")
    total = timedelta()
    try:
        for amount, unit in _PART.findall(raw):
            total += timedelta(**{_UNITS[unit]: int(amount)})
    except OverflowError:
        total = _MAX + _MAX  # far beyond any accepted duration: refused just below
    if total <= timedelta(0) or total > _MAX:
        raise errors.InvalidInput(
            f"invalid duration {text!r}: must be positive and under 100 years ({DURATION_FORMS})"
        )
    return total
