"""The core's job Scheduler (periods, leadership, failures) and the server's readiness probe
(a hung database answers "not ready" within the timeout and never blocks the event loop)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from strongroom import errors
from strongroom.core.scheduler import Job, Scheduler
from strongroom.http import health as health_module
from strongroom.http.health import ReadinessProbe


class FakeLease:
    def __init__(self) -> None:
        self.held = True
        self.released = 0

    def is_held(self) -> bool:
        return self.held

    def release(self) -> None:
        self.released += 1


def test_jobs_run_on_their_period_and_failures_do_not_stop_others() -> None:
    now = [0.0]
    ran: list[str] = []

    def boom() -> None:
        ran.append("boom")
        raise errors.StorageUnavailable("down")

    sched = Scheduler(
        [
            Job("a", 10, lambda: ran.append("a"), at_start=True),
            Job("boom", 5, boom),
            Job("off", 0, lambda: ran.append("off"), at_start=True),
        ],
        monotonic=lambda: now[0],
    )
    sched.run_due()
    assert ran == ["a"]
    now[0] = 5
    sched.run_due()
    assert ran == ["a", "boom"]
    now[0] = 10
    sched.run_due()
    assert ran == ["a", "boom", "a", "boom"]


def test_leader_only_jobs_need_the_lease() -> None:
    now = [0.0]
    ran: list[str] = []
    leases: list[FakeLease | None] = [None]
    asked = [0]

    def lead() -> FakeLease | None:
        asked[0] += 1
        return leases[0]

    sched = Scheduler(
        [Job("cleanup", 1, lambda: ran.append("cleanup"), leader_only=True, at_start=True)],
        lead=lead,
        monotonic=lambda: now[0],
    )

    def leads() -> bool:
        return sched.is_leader

    sched.run_due()
    assert ran == [] and not leads()  # another process leads
    lease = FakeLease()
    leases[0] = lease
    now[0] = 1
    sched.run_due()
    assert ran == ["cleanup"] and leads()
    now[0] = 2
    sched.run_due()
    assert asked[0] == 2  # a held lease is kept, not asked for again
    lease.held = False  # lost (database session gone): ask again
    leases[0] = None
    now[0] = 3
    sched.run_due()
    assert ran == ["cleanup", "cleanup"] and not leads()
    sched.close()


def test_without_lead_a_process_never_runs_leader_jobs() -> None:
    ran: list[str] = []
    sched = Scheduler([Job("c", 1, lambda: ran.append("c"), leader_only=True, at_start=True)])
    sched.run_due()
    assert ran == []


def test_thread_runs_and_close_releases_the_lease() -> None:
    lease = FakeLease()
    done = threading.Event()
    sched = Scheduler([Job("c", 0.05, done.set, leader_only=True)], lead=lambda: lease)
    sched.start()
    assert done.wait(10)
    sched.close()
    assert lease.released == 1


def _vault(read: Any, unlocked: bool = True, auto_locked: bool = False) -> Any:
    storage = SimpleNamespace(read=read)
    state = SimpleNamespace(is_unlocked=unlocked, is_auto_locked=auto_locked, storage=storage)
    return SimpleNamespace(state=state)


def test_readiness_times_out_on_a_hung_database(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    class Hung:
        def __enter__(self) -> Any:
            release.wait(10)
            raise errors.StorageUnavailable("gone")

        def __exit__(self, *exc: object) -> None:
            return None

    def hung() -> Hung:
        return Hung()

    monkeypatch.setattr(health_module, "DB_CHECK_TIMEOUT", 0.2)
    probe = ReadinessProbe(_vault(hung), auto_unlock=False)

    async def main() -> tuple[str | None, float, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.ensure_future(ticker())
        with ThreadPoolExecutor(4) as pool:
            started = time.monotonic()
            answers = await asyncio.gather(*(probe.check(pool) for _ in range(5)))
            took = time.monotonic() - started
            release.set()
        task.cancel()
        assert len(set(answers)) == 1
        return answers[0], took, ticks

    reason, took, ticks = asyncio.run(main())
    assert reason == "database unavailable"
    assert took < 2 and ticks >= 5  # the loop kept running while the check hung


def test_readiness_and_lock_state() -> None:
    @contextmanager
    def fine() -> Any:
        yield SimpleNamespace(keys=SimpleNamespace(get_keys=lambda: None))

    async def check(vault: Any, auto_unlock: bool) -> str | None:
        with ThreadPoolExecutor(1) as pool:
            return await ReadinessProbe(vault, auto_unlock=auto_unlock).check(pool)

    assert asyncio.run(check(_vault(fine), False)) is None
    assert asyncio.run(check(_vault(fine, unlocked=False), False)) == "locked"
    assert asyncio.run(check(_vault(fine, unlocked=False, auto_locked=True), False)) == "locked"
    assert asyncio.run(check(_vault(fine, unlocked=False, auto_locked=True), True)) is None
    assert asyncio.run(check(_vault(fine, unlocked=False), True)) == "locked"


def test_server_runs_outbox_prune_in_the_leader_only() -> None:
    from strongroom.config import Settings
    from strongroom.http.jobs import server_scheduler
    from strongroom.http.metrics import ExpiryCounts

    calls: list[timedelta] = []
    tokens = SimpleNamespace(refresh=None, flush_last_used=None, cleanup_expired=None)
    vault: Any = SimpleNamespace(events=SimpleNamespace(prune=calls.append), tokens=tokens)
    counts = ExpiryCounts(timedelta(days=7))
    settings = Settings(outbox_retention=timedelta(days=2))
    scheduler = server_scheduler(settings, vault, counts, may_lead=True)
    (job,) = [j for j in scheduler._jobs if j.name == "outbox-prune"]
    assert job.leader_only and job.every == 60
    job.run()
    assert calls == [timedelta(days=2)]
