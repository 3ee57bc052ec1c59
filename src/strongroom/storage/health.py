"""Storage outages made visible: the cause of a database failure in words, a count per cause,
and one log line per outage transition.

`cause_of()` names what went wrong from the driver's exception (SQLite's extended result code,
PostgreSQL's SQLSTATE, SQLAlchemy's "connection invalidated"), in words an operator can act on:
"disk full", "database connection lost". It never returns the driver's class name, a message
text, SQL, or a parameter. `StorageHealth` is told of every transaction's outcome by
`Storage`: the first failure after a success logs one WARNING line (`storage unavailable`), the
first success after failures logs one WARNING line (`storage available again`, with the outage's
length and how many transactions failed). Lines are rate-limited: while storage flaps, at most
one outage per `quiet_seconds` is logged (both its lines), and the next logged outage says how
many it left out.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from sqlalchemy import exc as sa_exc

__all__ = ["AUDIT", "CAUSES", "StorageHealth", "cause_of"]

log = logging.getLogger("strongroom.storage")

#: Metric label -> the words the log line and the 503 body use.
CAUSES = {
    "disk_full": "disk full",
    "io_error": "disk I/O error",
    "read_only": "database is read-only",
    "busy": "database busy",
    "connection_lost": "database connection lost",
    "unreachable": "database unreachable",
    "out_of_resources": "database out of resources",
    "other": "storage error",
}
#: The label of a write transaction (every one carries audit entries: the group-commit writer)
#: that failed while the database was reachable: an audit entry could not be written.
AUDIT = "audit"
_CONNECTION = frozenset({"connection_lost", "unreachable"})
#: Causes that do not go away by themselves within a second: while one holds, writes fail at
#: once without touching the database, except one attempt per `retry_seconds` (no retry storm
#: of every queued read's audit entry against a full disk).
_PERSISTENT = frozenset({"disk_full", "read_only", "io_error"})

_SQLITE = {
    sqlite3.SQLITE_FULL: "disk_full",
    sqlite3.SQLITE_IOERR: "io_error",
    sqlite3.SQLITE_READONLY: "read_only",
    sqlite3.SQLITE_BUSY: "busy",
    sqlite3.SQLITE_LOCKED: "busy",
    sqlite3.SQLITE_CANTOPEN: "unreachable",
}
#: SQLSTATE (or its class, the first two characters) -> cause.
_PG = {
    "53100": "disk_full",
    "53": "out_of_resources",
    "58030": "io_error",
    "25006": "read_only",
    "57P01": "connection_lost",  # admin_shutdown (a restart)
    "57P02": "connection_lost",  # crash_shutdown
    "57P03": "unreachable",  # cannot_connect_now (starting up)
    "08": "connection_lost",
    "55P03": "busy",  # lock_not_available
    "40": "busy",  # serialization failure, deadlock
}


def cause_of(exc: sa_exc.DBAPIError) -> str:
    """The metric label of a database failure (a key of `CAUSES`)."""
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if isinstance(code, int):
            return _SQLITE.get(code & 0xFF, "other")
        return "other"
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str) and state:
        return _PG.get(state) or _PG.get(state[:2]) or "other"
    if exc.connection_invalidated:
        return "connection_lost"
    if orig is not None and type(orig).__module__.startswith("psycopg"):
        # psycopg's connection errors carry no SQLSTATE: refused, closed, or timed out.
        return "connection_lost" if getattr(orig, "pgconn", None) is not None else "unreachable"
    return "other"


class StorageHealth:
    """Outage state, counts by cause, and the transition log lines of one storage."""

    def __init__(
        self,
        quiet_seconds: float = 30.0,
        retry_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._quiet = quiet_seconds
        self._retry = retry_seconds
        self._last_attempt = -float("inf")
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._down_since: float | None = None
        self._down_cause = ""
        self._failures = 0
        self._last_line = -float("inf")
        self._logged = False
        self._skipped = 0

    @property
    def is_down(self) -> bool:
        """True between a failure and the next success."""
        return self._down_since is not None

    def counts(self) -> dict[str, int]:
        """Failed transactions so far, by label (a copy)."""
        with self._lock:
            return dict(self._counts)

    def refusing(self) -> str | None:
        """The cause to fail a write with at once (counted), or None to attempt it.

        While a persistent cause (a full disk) holds, one write per `retry_seconds` is let
        through to find out whether it still does.
        """
        if self._down_since is None or self._down_cause not in _PERSISTENT:
            return None
        with self._lock:
            now = self._clock()
            if self._down_since is None or now - self._last_attempt >= self._retry:
                self._last_attempt = now
                return None
            cause = self._down_cause
        self.failed(cause, writing=True)
        return cause

    def failed(self, cause: str, *, writing: bool = False) -> None:
        """Count one failed transaction; log the transition to unavailable."""
        label = AUDIT if writing and cause not in _CONNECTION else cause
        with self._lock:
            if writing:
                self._last_attempt = self._clock()
            self._counts[label] = self._counts.get(label, 0) + 1
            self._failures += 1
            if self._down_since is not None:
                return
            self._down_since, self._down_cause = self._clock(), cause
            line = self._may_log()
            self._logged = line is not None
        if line is not None:
            log.warning(
                'storage unavailable: cause="%s"%s',
                CAUSES[cause],
                line,
                extra={"event": "storage_unavailable", "cause": cause},
            )

    def ok(self) -> None:
        """A transaction succeeded: log the transition back to available (cheap when up)."""
        if not self.is_down:
            return
        with self._lock:
            since = self._down_since  # read again under the lock: another thread may have won
            if since is None:
                return
            seconds = self._clock() - since
            cause, failures, logged = self._down_cause, self._failures, self._logged
            self._down_since, self._failures, self._logged = None, 0, False
        if logged:  # WARNING too: the server shows warnings and up, and the pair belongs together
            log.warning(
                'storage available again: cause="%s" outage_seconds=%.1f failed=%d',
                CAUSES[cause],
                seconds,
                failures,
                extra={"event": "storage_available", "cause": cause},
            )

    def _may_log(self) -> str | None:
        """None while rate-limited; else the suffix noting outages left out (lock held)."""
        now = self._clock()
        if now - self._last_line < self._quiet:
            self._skipped += 1
            return None
        self._last_line, skipped, self._skipped = now, self._skipped, 0
        return f" unlogged_outages={skipped}" if skipped else ""
