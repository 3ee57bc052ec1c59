"""Throttling in memory, per process: `UnlockBackoff` after wrong master keys, `LoginLimiter`
after failed logins (per username and per client IP)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from strongroom import errors
from strongroom.clock import Clock

__all__ = ["LoginLimiter", "UnlockBackoff"]

BACKOFF_BASE_SECONDS = 5.0


class UnlockBackoff:
    """From the `free`-th failure on, each failure doubles the wait (1 s, 2 s, ... 15 min)."""

    def __init__(self, clock: Clock, free: int) -> None:
        self._clock = clock
        self._free = free
        self._failures = 0
        self._retry_at: datetime | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise while in back-off.

        Raises:
            TooManyAttempts: with `retry_after` seconds.
        """
        with self._lock:
            retry_at = self._retry_at
        if retry_at is not None:
            wait = (retry_at - self._clock.now()).total_seconds()
            if wait > 0:
                raise errors.TooManyAttempts(
                    f"too many failed unlock attempts; retry in {wait:.0f}s", retry_after=wait
                )

    def failed(self) -> None:
        """Count a wrong master key."""
        with self._lock:
            self._failures += 1
            over = self._failures - self._free
            if over >= 0:
                delay = min(2.0**over, 900.0)
                self._retry_at = self._clock.now() + timedelta(seconds=delay)

    def succeeded(self) -> None:
        """Clear the failures."""
        with self._lock:
            self._failures, self._retry_at = 0, None


class LoginLimiter:
    """Failed-login throttling per username and per client IP, with exponential back-off.

    From the `free`-th failure for a key on, each failure doubles the wait (5 s, 10 s, 20 s, ...
    up to 15 min). A success clears the username's counter. In memory, per process.
    """

    def __init__(self, clock: Clock, *, free_per_user: int = 5, free_per_ip: int = 20) -> None:
        self._clock = clock
        self._free = {"user": free_per_user, "ip": free_per_ip}
        self._state: dict[tuple[str, str], tuple[int, datetime | None]] = {}
        self._lock = threading.Lock()

    def check(self, username: str, ip: str) -> None:
        """Raise if either key is in back-off.

        Raises:
            TooManyAttempts: with `retry_after` seconds.
        """
        now = self._clock.now()
        with self._lock:
            waits = [
                (until - now).total_seconds()
                for key in (("user", username[:128]), ("ip", ip))
                for _, until in [self._state.get(key, (0, None))]
                if until is not None and until > now
            ]
        if waits:
            wait = max(waits)
            raise errors.TooManyAttempts(
                f"too many failed logins; retry in {wait:.0f}s", retry_after=wait
            )

    def failed(self, username: str, ip: str) -> None:
        """Count a failure against both keys."""
        now = self._clock.now()
        with self._lock:
            if len(self._state) > 100_000:
                self._state.clear()
            for key in (("user", username[:128]), ("ip", ip)):
                count = self._state.get(key, (0, None))[0] + 1
                over = count - self._free[key[0]]
                delay = min(BACKOFF_BASE_SECONDS * 2.0**over, 900.0)
                until = now + timedelta(seconds=delay) if over >= 0 else None
                self._state[key] = (count, until)

    def succeeded(self, username: str) -> None:
        """Clear the username's failures."""
        with self._lock:
            self._state.pop(("user", username[:128]), None)
