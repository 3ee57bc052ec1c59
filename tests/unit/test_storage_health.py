"""Storage outage bookkeeping (#11 items 11, 12): causes in words, one line per transition,
rate-limited, and a full disk failing writes fast."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy import exc as sa_exc

from strongroom.storage.health import CAUSES, StorageHealth, cause_of


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _sqlite_error(code: int) -> sa_exc.OperationalError:
    orig = sqlite3.OperationalError("driver text that must not leak")
    orig.sqlite_errorcode = code
    return sa_exc.OperationalError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    ("code", "cause"),
    [(sqlite3.SQLITE_FULL, "disk_full"), (sqlite3.SQLITE_BUSY, "busy"), (1, "other")],
)
def test_sqlite_causes(code: int, cause: str) -> None:
    assert cause_of(_sqlite_error(code)) == cause
    assert "OperationalError" not in CAUSES[cause]


def test_one_line_per_transition_and_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    health = StorageHealth(quiet_seconds=30, clock=clock)
    caplog.set_level(logging.WARNING, "strongroom.storage")
    for _ in range(5):
        health.failed("connection_lost")
    clock.now = 2.9
    health.ok()
    health.ok()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        'storage unavailable: cause="database connection lost"',
        'storage available again: cause="database connection lost" outage_seconds=2.9 failed=5',
    ]
    clock.now = 5  # flapping within 30 s: not logged, counted in the next logged outage
    health.failed("connection_lost")
    health.ok()
    clock.now = 40
    health.failed("disk_full", writing=True)
    assert caplog.records[-1].getMessage().endswith("unlogged_outages=1")
    assert health.counts() == {"connection_lost": 6, "audit": 1}


def test_a_full_disk_fails_writes_fast_but_retries_each_second() -> None:
    clock = Clock()
    health = StorageHealth(retry_seconds=1.0, clock=clock)
    assert health.refusing() is None
    health.failed("disk_full", writing=True)
    assert health.refusing() == "disk_full"
    clock.now = 1.0
    assert health.refusing() is None  # one attempt per second finds out whether space is back
    assert health.refusing() == "disk_full"
    health.ok()
    assert health.refusing() is None
    health.failed("connection_lost")
    assert health.refusing() is None  # a connection may come back at once: always try
