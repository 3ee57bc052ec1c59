"""Detached group commit (`Writer.submit_detached`, `VaultState.read_detached` and
`write_detached`): the caller does not wait, yet nothing is answered before its audit entry is
durable, a busy SQLite write lock never stalls the lead, and `close` drains queued work."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from datetime import timedelta
from typing import Any

import pytest

from strongroom import Vault, errors, open_vault
from strongroom.clock import ManualClock
from strongroom.core.kv_types import KVSecret, KVVersionMeta
from strongroom.core.writer import LOOP_TURNS, MAX_BATCH
from strongroom.storage import NewAudit, Tx
from tests.conftest import MASTER_KEY, fast_config
from tests.core.dbutil import raw_script, raw_sql, sqlite_path

#: How long a test waits for work another thread finishes (a deadline, not a sleep).
DEADLINE = 15.0

SQLITE_DENY = """
CREATE TRIGGER deny_audit BEFORE INSERT ON vault_audit_logs
BEGIN SELECT RAISE(ABORT, 'audit unavailable'); END;
"""
PG_DENY = """
CREATE FUNCTION deny_audit() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'audit unavailable'; END $$;
CREATE TRIGGER deny_audit BEFORE INSERT ON vault_audit_logs
FOR EACH ROW EXECUTE FUNCTION deny_audit();
"""


class RecordingLead:
    """A `lead` that keeps the calls it is handed, for the test to run when it chooses (as an
    event loop runs a `call_soon_threadsafe` callback on its next tick)."""

    def __init__(self) -> None:
        self.calls: list[Callable[[], None]] = []

    def __call__(self, call: Callable[[], None]) -> None:
        self.calls.append(call)

    def run_all(self) -> None:
        while self.calls:
            self.calls.pop(0)()

    def result(self, future: Future[Any]) -> Any:
        """Run the calls handed to this lead, as they come, until `future` is done (a batch
        the lead ran is answered through it once the writer's thread has committed it, as on
        an event loop: `Writer._answer`); its result."""
        return run_until(self.calls, future)


def run_until(calls: list[Callable[[], None]], future: Future[Any]) -> Any:
    """Run `calls` (a lead's list) as they are appended until `future` is done; its result."""
    deadline = time.monotonic() + DEADLINE
    while not future.done():
        if calls:
            calls.pop(0)()
            continue
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the batch's answer")
        time.sleep(0.001)  # polling interval only: the deadline decides
    return future.result()


class BatchThreads:
    """Records, per writer batch, the thread that ran it and the actions of its entries."""

    def __init__(self, vault: Vault) -> None:
        self.batches: list[tuple[str, list[str]]] = []
        vault.state.on_batch(self._hook)

    def _hook(self, tx: Tx, entries: list[NewAudit]) -> None:
        self.batches.append((threading.current_thread().name, [e.action for e in entries]))

    def threads_of(self, action: str) -> list[str]:
        return [name for name, actions in self.batches if action in actions]


def _raw_reads(dsn: str, path: str) -> int:
    """Read entries for `path` as stored, bypassing the vault (whose own reads would queue
    behind a detached job that has not been led yet)."""
    rows = raw_sql(
        dsn, "SELECT COUNT(*) FROM vault_audit_logs WHERE action = 'read' AND path = ?", (path,)
    )
    return int(rows[0][0])


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)  # polling interval only: the deadline decides


def _fail_next_batch(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the writer's next batch fail before it runs any job (its first step raises)."""
    writer = vault.state._writer
    before = writer._before_batch
    failures = [RuntimeError("before the jobs")]

    def failing_once(tx: Tx, term: int) -> None:
        if failures:
            raise failures.pop()
        before(tx, term)

    monkeypatch.setattr(writer, "_before_batch", failing_once)


def _hold_a_batch(vault: Vault) -> tuple[threading.Event, threading.Thread]:
    """Start a batch in another thread that lasts until the event returned is set (work
    queued meanwhile waits behind it); the thread, to join."""
    running, release = threading.Event(), threading.Event()

    def blocking(tx: Tx) -> tuple[None, None]:
        running.set()
        release.wait(DEADLINE)
        return None, None

    blocker = threading.Thread(target=vault.state.submit, args=(blocking, lambda exc: None))
    blocker.start()
    assert running.wait(DEADLINE)
    return release, blocker


# -- read_detached ------------------------------------------------------------------------------
def test_read_entry_is_durable_only_once_the_lead_runs(dsn: str, vault: Vault) -> None:
    vault.kv.write("a", {"v": 1})
    lead = RecordingLead()

    result, error, future = vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)

    assert error is None
    assert isinstance(result, KVSecret) and result.data == {"v": 1}
    assert future is not None
    assert len(lead.calls) == 1  # the job is the head: its lead was asked at once
    assert not future.done()
    assert _raw_reads(dsn, "a") == 0  # nothing committed before the lead's call runs

    lead.run_all()  # the batch runs here; its commit follows in the writer's thread
    assert not future.done()  # answered on the lead's thread, once committed

    assert lead.result(future) is None
    entries = vault.audit_logs(path="a", action="read")
    assert len(entries) == 1
    assert entries[0].success and entries[0].secret_id is not None
    assert vault.verify_audit().ok


def test_read_of_a_missing_key_returns_the_error_and_its_failure_entry(vault: Vault) -> None:
    lead = RecordingLead()

    result, error, future = vault.state.read_detached(lambda: vault.kv.read("missing"), lead=lead)

    assert result is None
    assert isinstance(error, errors.SecretNotFound)
    assert future is not None and not future.done()
    assert lead.result(future) is None
    entries = vault.audit_logs(path="missing", action="read")
    assert [(e.success, e.error) for e in entries] == [(False, "SecretNotFound")]
    assert vault.verify_audit().ok


def test_read_with_no_entry_has_no_future(vault: Vault) -> None:
    result, error, future = vault.state.read_detached(lambda: 42)
    assert (result, error, future) == (42, None, None)


def test_without_a_lead_the_writer_thread_commits(vault: Vault) -> None:
    vault.kv.write("a", {"v": 1})
    batches = BatchThreads(vault)

    _, error, future = vault.state.read_detached(lambda: vault.kv.read("a"))

    assert error is None and future is not None
    assert future.result(timeout=DEADLINE) is None
    assert batches.threads_of("read") == ["strongroom-writer"]
    assert len(vault.audit_logs(path="a", action="read")) == 1
    assert vault.verify_audit().ok


def test_a_lead_that_fails_hands_the_batch_to_the_writer_thread(vault: Vault) -> None:
    """A lead callback that raises (an event loop already closed) must not strand the batch,
    nor fail the caller whose batch was committing when it was called."""
    vault.kv.write("a", {"v": 1})
    batches = BatchThreads(vault)

    def closed_loop(call: Callable[[], None]) -> None:
        raise RuntimeError("Event loop is closed")

    _, error, future = vault.state.read_detached(lambda: vault.kv.read("a"), closed_loop)

    assert error is None and future is not None
    assert future.result(timeout=DEADLINE) is None
    assert batches.threads_of("read") == ["strongroom-writer"]
    assert vault.kv.write("b", {"v": 2}).version == 1  # later writes are not stuck behind it
    assert vault.verify_audit().ok


def test_reads_queued_while_their_job_waits_share_it(vault: Vault) -> None:
    """The entries of reads queued for one lead while their job waits join that job: one
    job and one future for all of them; once it ran, the next read starts another."""
    vault.kv.write("a", {"v": 1})
    lead = RecordingLead()
    futures = [
        vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)[2] for _ in range(3)
    ]
    writer = vault.state._writer
    assert futures[0] is not None and all(f is futures[0] for f in futures)
    assert len(writer._queue) == 1
    assert lead.result(futures[0]) is None
    assert len(vault.audit_logs(path="a", action="read")) == 3

    _, _, later = vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)
    assert later is not None and later is not futures[0]
    assert lead.result(later) is None
    assert len(vault.audit_logs(path="a", action="read")) == 4
    assert vault.verify_audit().ok


def test_a_batch_that_fails_before_its_entry_job_runs_lets_nothing_join_it(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that fails before it ran the entries' job answers its future with the
    failure; a read queued after that is not answered by it, but written by the next batch."""
    vault.kv.write("a", {"v": 1})
    _fail_next_batch(vault, monkeypatch)
    lead = RecordingLead()
    _, _, failed = vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)
    assert failed is not None
    with pytest.raises(errors.StorageUnavailable):
        lead.result(failed)

    _, _, later = vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)
    assert later is not None and later is not failed
    assert lead.result(later) is None
    assert [e.success for e in vault.audit_logs(path="a", action="read")] == [True]
    assert vault.verify_audit().ok


def test_a_read_after_an_unlock_is_chained_after_the_unlock(vault: Vault) -> None:
    """Entries join only the job at the end of the queue: a read the unlock made possible is
    chained after the unlock another thread queued meanwhile, never ahead of it."""
    vault.kv.write("a", {"v": 1})
    vault.lock()
    lead = RecordingLead()
    writer = vault.state._writer
    # A read on the loop while locked: its failure entry's job waits for the lead.
    _, error, first = vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)
    assert isinstance(error, errors.VaultLocked) and first is not None
    # An administrator unlocks in another thread: the keys load, then its entry queues.
    unlocker = threading.Thread(target=vault.unlock, args=(MASTER_KEY,))
    unlocker.start()
    _wait_until(lambda: len(writer._queue) == 2, "the unlock's entry queued")
    # The next read on the loop succeeds: the keys are loaded.
    _, error, second = vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)
    assert error is None and second is not None and second is not first
    assert lead.result(second) is None
    unlocker.join(DEADLINE)
    actions = [(e.action, e.success) for e in reversed(vault.audit_logs(limit=4))]
    assert actions == [("lock", True), ("read", False), ("unlock", True), ("read", True)]
    assert vault.verify_audit().ok


def test_a_read_after_a_failed_loop_batch_is_not_failed_by_it(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loop's batch that failed before its entries' job ran is answered on a later turn
    of the loop; a read of the turn in between does not join that job and fail with it."""
    vault.kv.write("a", {"v": 1})
    _fail_next_batch(vault, monkeypatch)
    lead = RecordingLead()
    _, _, failed = vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)
    assert failed is not None and len(lead.calls) == 1
    lead.calls.pop(0)()  # the batch fails before its job ran; its answer waits for the loop
    _, _, later = vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)
    assert later is not None and later is not failed
    with pytest.raises(errors.StorageUnavailable):
        run_until(lead.calls, failed)
    assert run_until(lead.calls, later) is None
    assert [e.success for e in vault.audit_logs(path="a", action="read")] == [True]


def test_a_loop_batch_holds_at_most_max_batch_entries(vault: Vault) -> None:
    """Reads that pile up behind a long batch join jobs of at most MAX_BATCH entries, and
    the loop runs at most MAX_BATCH entries' worth of jobs in one batch."""
    vault.kv.write("a", {"v": 1})
    sizes: list[tuple[str, int]] = []
    vault.state.on_batch(
        lambda tx, entries: sizes.append((threading.current_thread().name, len(entries)))
    )
    release, blocker = _hold_a_batch(vault)
    lead = RecordingLead()
    futures = [
        vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)[2]
        for _ in range(3 * MAX_BATCH + 5)
    ]
    assert len({id(f) for f in futures}) == 4  # jobs of 256, 256, 256 and 5 entries
    release.set()
    blocker.join(DEADLINE)
    for future in futures:
        assert future is not None
        assert run_until(lead.calls, future) is None
    loop = [n for name, n in sizes if name == threading.current_thread().name]
    assert sum(loop) == 3 * MAX_BATCH + 5 and max(loop) <= MAX_BATCH, loop
    assert vault.verify_audit().ok


# -- write_detached -----------------------------------------------------------------------------
def test_write_detached_future_holds_the_call_result(vault: Vault) -> None:
    lead = RecordingLead()

    future = vault.state.write_detached(lambda: vault.kv.write("k", {"v": 1}), lead=lead)

    assert not future.done()
    meta = lead.result(future)
    assert isinstance(meta, KVVersionMeta) and meta.version == 1
    # Without a lead the writer's thread leads; the next version follows.
    second = vault.state.write_detached(lambda: vault.kv.write("k", {"v": 2}))
    assert second.result(timeout=DEADLINE).version == 2
    assert vault.kv.read("k").data == {"v": 2}
    actions = [e.action for e in vault.audit_logs(path="k")]
    assert actions == ["read", "update", "create"]
    assert vault.verify_audit().ok


def test_write_detached_refuses_a_call_that_makes_no_write(vault: Vault) -> None:
    with pytest.raises(RuntimeError, match="no write"):
        vault.state.write_detached(lambda: None)


def test_write_detached_raises_invalid_input_directly(vault: Vault) -> None:
    with pytest.raises(errors.InvalidInput):
        vault.state.write_detached(lambda: vault.kv.write("/bad/", {"v": 1}))
    with pytest.raises(errors.InvalidInput):
        vault.state.write_detached(lambda: vault.kv.write("ok", "not an object"))  # type: ignore[arg-type]
    assert vault.audit_logs(action="write") == []


def test_write_detached_error_in_the_batch_comes_through_the_future(vault: Vault) -> None:
    vault.kv.write("k", {"v": 1})
    lead = RecordingLead()

    future = vault.state.write_detached(lambda: vault.kv.write("k", {"v": 2}, cas=0), lead=lead)

    with pytest.raises(errors.VersionConflict):
        lead.result(future)
    failed = vault.audit_logs(path="k", action="write")
    assert [(e.success, e.error) for e in failed] == [(False, "VersionConflict")]
    assert vault.kv.read("k").data == {"v": 1}


# -- a busy write lock (SQLite) -----------------------------------------------------------------
def _detached_read(vault: Vault, lead: Callable[[Callable[[], None]], Any]) -> Future[Any]:
    _, error, future = vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)
    assert error is None and future is not None
    return future


def _detached_write(vault: Vault, lead: Callable[[Callable[[], None]], Any]) -> Future[Any]:
    return vault.state.write_detached(lambda: vault.kv.write("a", {"v": 2}), lead=lead)


@pytest.mark.parametrize(
    ("submit", "action"), [(_detached_read, "read"), (_detached_write, "update")]
)
def test_a_busy_write_lock_hands_the_batch_to_the_writer_thread(
    sqlite_dsn: str,
    submit: Callable[[Vault, Callable[[Callable[[], None]], Any]], Future[Any]],
    action: str,
) -> None:
    with open_vault(sqlite_dsn, fast_config(auto_lock=False)) as vault:
        vault.unlock(MASTER_KEY)
        vault.kv.write("a", {"v": 1})
        batches = BatchThreads(vault)
        led_in: list[str] = []

        def lead(call: Callable[[], None]) -> None:
            led_in.append(threading.current_thread().name)
            call()  # at once, in this thread, as a loop callback would

        other = sqlite3.connect(sqlite_path(sqlite_dsn), isolation_level=None, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")  # another connection holds the write lock
            started = time.monotonic()
            future = submit(vault, lead)
            # The lead returned at once: it never sleeps in SQLite's 30 s busy handler.
            assert time.monotonic() - started < 5
            assert led_in == [threading.current_thread().name]
            assert not future.done()
            done, _ = wait([future], timeout=0.3)
            assert not done  # the writer thread waits for the lock; it does not give up
            other.execute("ROLLBACK")
        finally:
            other.close()

        future.result(timeout=DEADLINE)
        assert batches.threads_of(action) == ["strongroom-writer"]
        assert [e.success for e in vault.audit_logs(path="a", action=action)] == [True]
        assert vault.verify_audit().ok


# -- fail-closed --------------------------------------------------------------------------------
def test_detached_futures_fail_when_the_batch_cannot_commit(dsn: str, vault: Vault) -> None:
    vault.kv.write("a", {"v": 1})
    raw_script(dsn, SQLITE_DENY, PG_DENY)
    lead = RecordingLead()

    result, error, read_future = vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)
    assert read_future is not None
    with pytest.raises(errors.StorageUnavailable):
        lead.result(read_future)
    write_future = vault.state.write_detached(lambda: vault.kv.write("b", {"v": 2}), lead=lead)
    with pytest.raises(errors.StorageUnavailable):
        lead.result(write_future)

    assert error is None and result is not None  # the caller must not use it: its entry failed
    assert raw_sql(dsn, "SELECT COUNT(*) FROM vault_secrets WHERE path = 'b'")[0][0] == 0

    raw_sql(
        dsn,
        "DROP TRIGGER deny_audit" + ("" if dsn.startswith("sqlite") else " ON vault_audit_logs"),
    )
    assert _raw_reads(dsn, "a") == 0
    assert vault.verify_audit().ok


# -- close --------------------------------------------------------------------------------------
def test_close_finishes_queued_detached_work_first(dsn: str, vault: Vault) -> None:
    vault.kv.write("a", {"v": 1})
    # A batch in progress in another thread keeps the detached job queued behind it.
    release, blocker = _hold_a_batch(vault)
    _, error, future = vault.state.read_detached(lambda: vault.kv.read("a"))
    assert error is None and future is not None
    closer = threading.Thread(target=vault.close)
    closer.start()
    _wait_until(lambda: vault.state._writer._closed, "close to refuse new work")

    assert closer.is_alive() and not future.done()  # close is waiting for the queued job
    release.set()
    closer.join(DEADLINE)
    blocker.join(DEADLINE)

    assert not closer.is_alive()
    assert future.done() and future.exception() is None
    with open_vault(dsn, fast_config(auto_lock=False)) as fresh:
        fresh.unlock(MASTER_KEY)
        assert [e.success for e in fresh.audit_logs(path="a", action="read")] == [True]
        assert fresh.verify_audit().ok


def test_an_auto_lock_due_on_the_leading_thread_does_not_wait_for_itself(dsn: str) -> None:
    """An auto-lock that falls due inside a loop-led read must not wait synchronously for its
    entry: a batch led by this very thread may be at the head of the queue (a deadlock)."""
    clock = ManualClock()
    v = open_vault(dsn, fast_config(clock=clock, auto_lock_timeout=timedelta(minutes=15)))
    try:
        v.unlock(MASTER_KEY)
        v.kv.write("a", {"v": 1})
        led: list[Callable[[], None]] = []
        _, error, first = v.state.read_detached(lambda: v.kv.read("a"), led.append)
        assert error is None and first is not None and len(led) == 1  # led by "the loop", later
        clock.advance(timedelta(minutes=16))

        done = threading.Event()
        outcome: list[Any] = []

        def loop_turn() -> None:
            outcome.append(v.state.read_detached(lambda: v.kv.read("a"), led.append))
            done.set()

        worker = threading.Thread(target=loop_turn, daemon=True)
        worker.start()
        assert done.wait(DEADLINE), "the read waited for a batch only its own thread can lead"
        _, error, _ = outcome[0]
        assert isinstance(error, errors.VaultLocked)
        # the loop's turn: its batch (the first read, the auto-lock entry) commits
        assert run_until(led, first) is None
        auto_locks = "SELECT COUNT(*) FROM vault_audit_logs WHERE action = 'auto_lock'"
        _wait_until(lambda: int(raw_sql(dsn, auto_locks)[0][0]) == 1, "the auto_lock entry")
        assert v.is_locked
        v.unlock(MASTER_KEY)
        assert v.verify_audit().ok
    finally:
        v.close()


def test_a_synchronous_write_on_the_leading_thread_is_refused(vault: Vault) -> None:
    """A second write inside write_detached (or any synchronous write there) would wait for
    the loop's own batch: it is refused as a bug instead of hanging."""

    def two_writes() -> None:
        vault.kv.write("x", {"v": 1})
        vault.kv.write("y", {"v": 2})

    with pytest.raises(RuntimeError):
        vault.state.write_detached(two_writes, lambda call: call())


def test_a_queued_job_cannot_be_cancelled(vault: Vault) -> None:
    """An awaiting request cancelled (a server shutting down) must not strand the queue or
    un-report a commit: a queued job's future refuses cancel()."""
    vault.kv.write("a", {"v": 1})
    led: list[Callable[[], None]] = []
    _, _, future = vault.state.read_detached(lambda: vault.kv.read("a"), led.append)
    assert future is not None and not future.cancel()
    assert run_until(led, future) is None
    assert vault.kv.write("b", {"v": 1}).version == 1  # the queue moves on


def test_the_loop_leads_only_its_own_jobs(vault: Vault) -> None:
    """A batch led on an event loop holds only that loop's jobs: another thread's write
    queued behind them is led by its own thread, never on the loop."""
    vault.kv.write("a", {"v": 1})
    batches = BatchThreads(vault)
    led: list[Callable[[], None]] = []
    _, _, first = vault.state.read_detached(lambda: vault.kv.read("a"), led.append)
    other = threading.Thread(
        target=lambda: vault.kv.write("from-thread", {"v": 2}), name="other-writer"
    )
    other.start()
    _wait_until(lambda: len(vault.state._writer._queue) == 2, "the thread's job queued")
    assert first is not None
    assert run_until(led, first) is None  # the loop's turn, then its answer
    other.join(DEADLINE)
    assert not other.is_alive()
    assert batches.threads_of("create") == ["other-writer"]


def test_a_loop_batch_waits_for_the_turns_that_queue_more(vault: Vault) -> None:
    """A batch its loop leads is led at the first turn of the loop after which nothing more
    was queued: the reads of the turns before join it, one batch and one commit for all."""
    vault.kv.write("a", {"v": 1})
    batches = BatchThreads(vault)
    lead = RecordingLead()

    def read() -> Future[Any]:
        return _detached_read(vault, lead)

    futures = [read(), read()]  # the turn that queued the head queued another read too
    for turn in range(2):
        assert len(lead.calls) == 1  # one call pending: the head's, handed back each turn
        lead.calls.pop(0)()  # the turn before queued more: it waits one more turn
        assert batches.batches == [], f"led at turn {turn} after a turn that queued a read"
        if turn == 0:
            futures.append(read())
    assert len(lead.calls) == 1
    lead.calls.pop(0)()  # the turn before queued nothing: the batch of three is led now
    assert [run_until(lead.calls, f) for f in futures] == [None, None, None]
    assert [actions for _, actions in batches.batches] == [["read", "read", "read"]]


def test_a_lone_loop_batch_is_led_at_once(vault: Vault) -> None:
    """Nothing queued after it (concurrency 1): the batch is led at the lead's first call."""
    vault.kv.write("a", {"v": 1})
    batches = BatchThreads(vault)
    lead = RecordingLead()
    _, _, future = vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)
    assert future is not None and len(lead.calls) == 1
    lead.calls.pop(0)()
    assert [actions for _, actions in batches.batches] == [["read"]]
    assert run_until(lead.calls, future) is None


def test_a_loop_batch_waits_at_most_loop_turns(vault: Vault) -> None:
    """A loop that queues a read on every turn does not hold its batch back for ever: it is
    led after LOOP_TURNS turns, with what was queued by then."""
    vault.kv.write("a", {"v": 1})
    batches = BatchThreads(vault)
    lead = RecordingLead()

    def read() -> Future[Any]:
        return _detached_read(vault, lead)

    futures = [read()]
    turns = 0
    while not batches.batches:
        futures.append(read())  # every turn queues one more read
        assert len(lead.calls) == 1
        lead.calls.pop(0)()
        turns += 1
        assert turns <= LOOP_TURNS + 1, "the batch was never led"
    assert turns == LOOP_TURNS + 1  # handed back LOOP_TURNS times, then led
    assert [actions for _, actions in batches.batches] == [["read"] * (LOOP_TURNS + 2)]
    assert [run_until(lead.calls, f) for f in futures] == [None] * len(futures)


def test_a_batch_asked_to_two_leaders_runs_once(vault: Vault) -> None:
    """The loop's callback and the writer's thread may both be asked to lead the same head
    (a hand-off still pending when the loop's turn comes): its jobs run once."""
    vault.kv.write("a", {"v": 1})
    led: list[Callable[[], None]] = []
    _, _, future = vault.state.read_detached(lambda: vault.kv.read("a"), led.append)
    assert future is not None and len(led) == 1
    writer = vault.state._writer
    writer._hand_to_thread()  # the writer's thread is also told to lead the head
    assert run_until(led, future) is None  # and so is the loop
    _wait_until(lambda: not writer._queue, "the queue drained")
    assert len(vault.audit_logs(path="a", action="read")) == 1
    assert vault.verify_audit().ok


def test_a_batch_whose_commit_cannot_be_handed_off_is_rolled_back(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop runs a batch up to its commit and hands the commit to the writer's thread: when
    that thread cannot start, the batch is rolled back (its callers are told it failed), never
    left open holding the write lock nor committed later behind their backs."""
    writer = vault.state._writer
    assert writer._flusher is None  # nothing detached ran yet: the thread is started on demand
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        if thread.name == "strongroom-writer":
            raise RuntimeError("can't start new thread")
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    lead = RecordingLead()
    future = vault.state.write_detached(lambda: vault.kv.write("k", {"v": 1}), lead=lead)
    with pytest.raises(RuntimeError, match="can't start"):
        lead.run_all()
    with pytest.raises(errors.StorageUnavailable):
        future.result(timeout=DEADLINE)
    assert not writer._commits
    monkeypatch.undo()

    # Nothing of it was committed, and the write lock is free: the next write runs at once.
    with pytest.raises(errors.SecretNotFound):
        vault.kv.read("k")
    assert vault.kv.write("k", {"v": 2}).version == 1
    assert vault.kv.read("k").data == {"v": 2}
    assert vault.verify_audit().ok


def test_an_auto_lock_due_in_a_write_detached_without_a_lead_never_waits(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the server queues a KV write from its event loop with no lead (the
    writer's thread runs the batch): an auto-lock falling due there queues its entry too,
    instead of waiting on the loop for a commit."""
    clock = ManualClock()
    v = open_vault(dsn, fast_config(clock=clock, auto_lock_timeout=timedelta(minutes=15)))
    try:
        v.unlock(MASTER_KEY)
        v.kv.write("a", {"v": 1})
        clock.advance(timedelta(minutes=16))
        caller = threading.current_thread()
        waits: list[str] = []
        real_submit = v.state._writer.submit

        def submit(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is caller:
                waits.append("submit")  # a synchronous wait on "the loop"
            return real_submit(*args, **kwargs)

        monkeypatch.setattr(v.state._writer, "submit", submit)
        future = v.state.write_detached(lambda: v.kv.write("a", {"v": 2}), None)
        with pytest.raises(errors.VaultLocked):
            future.result(timeout=DEADLINE)
        assert waits == []
        auto_locks = "SELECT COUNT(*) FROM vault_audit_logs WHERE action = 'auto_lock'"
        _wait_until(lambda: int(raw_sql(dsn, auto_locks)[0][0]) == 1, "the auto_lock entry")
        monkeypatch.undo()
        assert v.is_locked
        v.unlock(MASTER_KEY)
        assert v.kv.read("a").data == {"v": 1}  # the write after the auto-lock was refused
        assert v.verify_audit().ok
    finally:
        v.close()


# -- answers through the lead -------------------------------------------------------------------
def test_a_batch_the_loop_led_is_answered_on_the_loop_in_one_call(vault: Vault) -> None:
    """A loop-led batch's futures are set by one call handed to its lead (on the loop's
    thread), not one wake-up of the loop per future from the writer's thread."""
    vault.kv.write("a", {"v": 1})
    lead = RecordingLead()
    futures = []
    for _ in range(3):
        _, error, future = vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)
        assert error is None and future is not None
        futures.append(future)
    assert len(lead.calls) == 1  # the head asked its lead to run the batch; the others queued
    set_in: list[str] = []
    for future in futures:
        future.add_done_callback(lambda _: set_in.append(threading.current_thread().name))

    lead.run_all()  # the batch of three runs here, its commit in the writer's thread
    _wait_until(lambda: len(lead.calls) == 1, "the batch's answer handed to the lead")
    assert not any(future.done() for future in futures)  # committed, answered on the loop
    lead.run_all()

    assert [future.result(timeout=0) for future in futures] == [None, None, None]
    assert set_in == [threading.current_thread().name] * 3
    assert len(vault.audit_logs(path="a", action="read")) == 3
    assert vault.verify_audit().ok


def test_a_batch_whose_lead_cannot_take_its_answer_is_answered_by_the_writer(
    vault: Vault,
) -> None:
    """The loop closed while its batch committed: the writer's thread sets the futures."""
    vault.kv.write("a", {"v": 1})
    calls = 0

    def lead(call: Callable[[], None]) -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise RuntimeError("Event loop is closed")
        call()  # the batch, at once, in this thread

    set_in: list[str] = []
    _, error, future = vault.state.read_detached(lambda: vault.kv.read("a"), lead=lead)
    assert error is None and future is not None
    future.add_done_callback(lambda _: set_in.append(threading.current_thread().name))

    assert future.result(timeout=DEADLINE) is None
    assert calls == 2 and set_in == ["strongroom-writer"]
    assert vault.kv.write("b", {"v": 1}).version == 1  # the queue moves on
