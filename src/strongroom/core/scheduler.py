"""Scheduler: periodic background jobs of a server process, on one thread.

A `Job` is a name, a period and a function. Jobs marked `leader_only` run in one process
across every worker and instance on the database: the scheduler asks `lead` (the storage's
leadership lease: a PostgreSQL advisory lock, or a designated process on SQLite) before each run
and keeps the lease while it holds. Other jobs run in every process (a process's own gauges).
A failing job is logged and retried at its next period; it never stops the others. New kinds of
job (webhooks, expiry reminders) are one more `Job` in the list the server passes.
This module must never log a secret value or a key.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from strongroom import errors

__all__ = ["Job", "Lease", "Scheduler"]

log = logging.getLogger("strongroom.jobs")


class Lease(Protocol):
    """Held leadership (`storage.lease.Lease`)."""

    def is_held(self) -> bool:
        """True while the lease still holds."""
        ...

    def release(self) -> None:
        """Give the lease up; never raises."""
        ...


@dataclass(frozen=True, slots=True)
class Job:
    """One periodic job.

    Attributes:
        name: shown in logs.
        every: seconds between runs (the first run is one period after start, or at once
            with `at_start`).
        run: the work; it may raise (logged, retried next period).
        leader_only: run in the leader process only.
        at_start: run once as soon as the scheduler starts.
    """

    name: str
    every: float
    run: Callable[[], object]
    leader_only: bool = False
    at_start: bool = False


class Scheduler:
    """Runs `jobs` on a daemon thread until `close()`.

    `lead()` returns a lease when this process may lead (None: another holds it); without
    `lead` this process never runs `leader_only` jobs.
    """

    def __init__(
        self,
        jobs: Sequence[Job],
        *,
        lead: Callable[[], Lease | None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._jobs = [j for j in jobs if j.every > 0]
        self._lead = lead
        self._now = monotonic
        self._lease: Lease | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        start = self._now()
        self._due = {j.name: start if j.at_start else start + j.every for j in self._jobs}

    @property
    def is_leader(self) -> bool:
        """True while this process holds the leadership lease."""
        return self._lease is not None

    def start(self) -> None:
        """Start the thread (nothing to do without jobs)."""
        if self._jobs and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="strongroom-jobs", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the running job, and give up the lease."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    def run_due(self) -> None:
        """Run every job that is due now (the thread's step; tests call it directly)."""
        now = self._now()
        for job in self._jobs:
            if self._stop.is_set() or now < self._due[job.name]:
                continue
            self._due[job.name] = now + job.every
            if job.leader_only and not self._leads():
                continue
            try:
                job.run()
            except errors.StrongroomError as exc:
                log.warning("job %s failed: %s", job.name, exc.code)
            except Exception:
                log.exception("job %s failed", job.name)

    def _leads(self) -> bool:
        if self._lease is not None and self._lease.is_held():
            return True
        self._lease = None
        if self._lead is None:
            return False
        try:
            self._lease = self._lead()
        except errors.StrongroomError as exc:
            log.warning("could not ask for job leadership: %s", exc.code)
        return self._lease is not None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due()
            wait = min(self._due.values()) - self._now()
            self._stop.wait(min(max(wait, 0.05), 60.0))
