"""Group commit: the writes and audit entries of concurrent callers become few durable transactions.

A caller submits a job (a function run inside the write transaction, under its own savepoint) and
waits for its future. The leader drains every job queued at that moment into one transaction,
appends each job's audit entry to the hash chain, commits once (one fsync), then answers all
callers. A caller is answered only after its audit entry is durable; if the commit fails, every
job in the batch fails and nothing of it is stored (fail-closed). A job that raises fails alone:
its savepoint is rolled back and its caller gets its error (an unexpected one, a bug, as is),
unless the transaction itself broke (a connection error), which fails the batch.

A caller that must not wait (an event loop) submits a detached job instead and gets its future
at once (`submit_detached`): when such a job reaches the head, its batch is led through the
caller's lead callback (on the loop: only that loop's jobs, run up to the commit there, the
commit's fsync in the writer's own thread) or by the writer's own thread.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from strongroom import errors
from strongroom.core.audit import canonical, unkeyed_mac
from strongroom.storage import DATABASE_ERRORS, NewAudit, Storage, Tx, WriterBusy

__all__ = ["AuditSink", "EmitFn", "Job", "Writer"]

log = logging.getLogger(__name__)

MAX_BATCH = 256
#: Turns of its event loop a batch the loop leads may wait for more of the loop's jobs
#: (`Writer._lead`): it is led after the first turn that queued nothing, or after these.
LOOP_TURNS = 8
#: How long `close` waits for detached work still queued.
CLOSE_WAIT = 30.0

#: Audit entries a job writes: one, several or none.
Entries = NewAudit | list[NewAudit] | None
#: Runs inside the transaction; returns (result, audit entries).
JobFn = Callable[[Tx], tuple[Any, Entries]]
#: Builds the audit entry of a job that raised.
FailFn = Callable[[errors.StrongroomError], Entries]
#: Streams a batch's entries (entry, id, MAC) to the audit devices before the batch commits;
#: raises StorageUnavailable when a required device fails (`core.audit_devices`).
EmitFn = Callable[[list[tuple[NewAudit, int, str | None]]], None]
#: Arranges for a call to run soon in the caller's own thread (an event loop's
#: `call_soon_threadsafe`).
Lead = Callable[[Callable[[], None]], Any]


class AuditSink(Protocol):
    """What the writer needs from storage to extend the audit chain (`tx.audit`)."""

    def batch_head(self) -> tuple[int, str | None]: ...

    def insert_audit(self, entry: NewAudit, mac: str | None) -> int: ...

    def insert_audits(
        self, entries: list[tuple[NewAudit, str | None]], *, last: bool = False
    ) -> None: ...

    def insert_audits_returning(self, entries: list[tuple[NewAudit, str | None]]) -> list[int]: ...


def _sink(tx: Tx) -> AuditSink:
    return tx.audit


@dataclass
class Job:
    """One unit of work for the writer."""

    run: JobFn
    on_error: FailFn
    atomic: bool = True
    future: Future[Any] = field(default_factory=Future)
    #: Set when the job's future is done, or when the job reached the head of the queue
    #: (a job with a caller waiting in a thread: `Writer.submit`).
    wake: threading.Event | None = None
    #: No caller waits in a thread for it (`Writer.submit_detached`): when it reaches the
    #: head of the queue, `lead` is handed the call that runs its batch (None: the writer's
    #: own thread runs it).
    detached: bool = False
    lead: Lead | None = None
    #: Set (under the writer's condition) when a leader took the batch this job heads: the
    #: loop's callback and the writer's thread may both be asked to lead it; one does.
    led: bool = False
    #: Its answer was handed to its `lead`, which sets its future soon (`Writer._answer`).
    answering: bool = False
    #: A `Writer.submit_entries` job's audit entries, open to more until it runs or its
    #: batch fails (then None; always None for other jobs).
    entries: list[NewAudit] | None = None


def _settle(batch: list[Job], outcomes: list[tuple[Any, BaseException | None]]) -> None:
    for job, (result, error) in zip(batch, outcomes, strict=True):
        if job.future.done():
            continue
        if error is None:
            job.future.set_result(result)
        else:
            job.future.set_exception(error)


def _no_entry(exc: errors.StrongroomError) -> Entries:
    return None


def _run(job: Job, tx: Tx, raised: list[Exception]) -> tuple[Any, Entries]:
    """Run a job, noting the error it raised (to tell it from a failed rollback)."""
    try:
        return job.run(tx)
    except Exception as exc:
        raised.append(exc)
        raise


class Writer:
    """Group commit for one Vault instance, leader/follower style (as LevelDB's write queue).

    Callers queue their jobs; the caller at the head of the queue becomes the leader, takes every
    job queued so far, runs them in one transaction in its own thread and answers the others. An
    uncontended call therefore costs no thread hand-off; contended calls share one commit.
    """

    def __init__(
        self,
        storage: Storage,
        mac: Callable[[bytes], str | None],
        genesis: Callable[[], str],
        before_batch: Callable[[Tx, int], None],
        after_commit: Callable[[], None],
        after_failure: Callable[[], None],
        emit: EmitFn | None = None,
        on_batch: Callable[[Tx, list[NewAudit]], None] | None = None,
    ) -> None:
        self._storage = storage
        self._emit = emit
        self._on_batch = on_batch
        self._mac = mac
        self._genesis = genesis
        self._before_batch = before_batch
        self._after_commit = after_commit
        self._after_failure = after_failure
        self._cond = threading.Condition()
        self._queue: deque[Job] = deque()
        self._closed = False
        self._flusher: threading.Thread | None = None
        self._flush_due = False
        #: Batches an event loop ran up to their commit, for the writer's thread to finish.
        self._commits: deque[Callable[[], None]] = deque()
        #: Jobs queued and entries joined to a queued job so far (`_lead` sees the queue grow).
        self._arrivals = 0

    def submit(self, run: JobFn, on_error: FailFn, *, atomic: bool = True) -> Any:
        """Run `run` in the next batch and return its result once the batch is durable.

        `atomic=False` skips the savepoint; only for jobs that write in one statement.

        Raises:
            StrongroomError: what `run` raised (its failure audit entry is durable), or
                StorageUnavailable when the batch could not be committed.
        """
        job = Job(run, on_error, atomic, wake=threading.Event())
        is_head = self._enqueue(job)
        # Each waiter sleeps on its own event, woken only when its batch is done or when it
        # becomes the next leader: a notify_all woke every waiting thread at every batch, and
        # under load (64 threads, one core, the GIL) the next leader's turn came late.
        if not is_head and job.wake is not None:
            job.wake.wait()
        self._lead(job)
        return job.future.result()

    def submit_detached(
        self, run: JobFn, on_error: FailFn, *, atomic: bool = True, lead: Lead | None = None
    ) -> Future[Any]:
        """Queue `run` for the next batch and return at once: the future is done when the batch
        is durable (its result or error as `submit` returns or raises them).

        For callers that must not wait, an event loop above all. When the job reaches the head
        of the queue, its batch is run by `lead(call)`, which should call `call` soon in the
        caller's thread (an event loop's `call_soon_threadsafe`: the loop then runs every job
        its requests queued meanwhile, once it stops queueing more (`_lead`), with no thread
        hand-off), or, with no `lead`, by the writer's own thread (started on first use).

        Raises:
            StorageUnavailable: the writer is closed.
        """
        job = Job(run, on_error, atomic, detached=True, lead=lead)
        if self._enqueue(job):
            self._wake(job)
        return job.future

    def submit_entries(self, entries: list[NewAudit], lead: Lead | None = None) -> Future[None]:
        """Queue audit entries that no change carries (a read's) for the next batch, as
        `submit_detached` queues a job: the future is done when they are durable.

        Entries for the same `lead` join the entries' job at the end of the queue while it
        has not run and holds fewer than MAX_BATCH entries, and share its future: a batch
        holds one job for the reads of its loop's turns, not a job, a future and a place in
        the queue each (decisions.md, "Speed, round ten"). Only the last job is joined, so
        the chain keeps the order of the queue (an unlock queued meanwhile stays ahead of
        the reads it allowed).

        Raises:
            StorageUnavailable: the writer is closed.
        """
        with self._cond:
            if self._closed:
                raise errors.StorageUnavailable("vault is closed")
            self._arrivals += 1
            last = self._queue[-1] if self._queue else None
            if (
                last is not None
                and last.entries is not None
                and last.lead == lead
                and len(last.entries) < MAX_BATCH
            ):
                last.entries.extend(entries)
                return last.future

            def run(tx: Tx) -> tuple[None, Entries]:
                with self._cond:  # nothing joins the job once it ran
                    pending, job.entries = job.entries, None
                return None, pending

            job = Job(run, _no_entry, atomic=False, detached=True, lead=lead)
            job.entries = list(entries)
            job.future.set_running_or_notify_cancel()  # (as `_enqueue`)
            self._queue.append(job)
            is_head = self._queue[0] is job
        if is_head:
            self._wake(job)
        return job.future

    def _enqueue(self, job: Job) -> bool:
        """Queue `job`; True when it is the head (its owner leads the next batch)."""
        # A queued job will run: its future cannot be cancelled any more (an awaiting request
        # cancelled at shutdown must neither strand the queue nor un-report a commit).
        job.future.set_running_or_notify_cancel()
        with self._cond:
            if self._closed:
                raise errors.StorageUnavailable("vault is closed")
            self._arrivals += 1
            self._queue.append(job)
            return self._queue[0] is job

    def _wake(self, job: Job) -> None:
        """Tell `job`'s owner that it is done or leads next (the writer thread, if detached)."""
        if job.wake is not None:
            job.wake.set()
            return
        if job.future.done():
            return
        if job.lead is not None and self._emit is None:
            # (With audit devices configured, a batch streams to them, which may wait on a
            # socket: never on the caller's event loop.) Led at its lead's next turn unless
            # that turn queued more (`_lead`).
            self._ask_lead(job, seen=self._arrivals)
            return
        self._hand_to_thread()

    def _ask_lead(self, job: Job, *, seen: int, turns: int = 0) -> None:
        """Have `job`'s lead run its batch soon (`_lead`), else the writer's thread."""
        assert job.lead is not None  # noqa: S101 - only for jobs with a lead
        try:
            job.lead(functools.partial(self._lead, job, nowait=True, seen=seen, turns=turns))
        except Exception:  # e.g. "event loop is closed": someone else must lead
            log.debug("lead callback failed; the writer thread leads the batch")
            self._hand_to_thread()

    def _hand_to_thread(self) -> None:
        """Have the writer's own thread lead the batch at the head of the queue."""
        with self._cond:
            if self._flusher is None:
                flusher = threading.Thread(
                    target=self._flush, name="strongroom-writer", daemon=True
                )
                flusher.start()  # (when it cannot start, the next hand-off tries again)
                self._flusher = flusher
            self._flush_due = True
            self._cond.notify_all()  # `close` may be waiting on the same condition

    def _flush(self) -> None:
        """The writer thread: leads every batch whose head is a detached job."""
        while True:
            with self._cond:
                while not self._flush_due:
                    if self._closed and not any(job.detached for job in self._queue):
                        self._flusher = None
                        return
                    self._cond.wait()
                self._flush_due = False
                commit = self._commits.popleft() if self._commits else None
                head = self._queue[0] if self._queue and commit is None else None
            if commit is not None:
                commit()  # a batch an event loop ran, up to its commit
                with self._cond:
                    self._flush_due = self._flush_due or bool(self._commits)
            elif head is not None and head.detached:
                self._lead(head)

    def _lead(self, job: Job, *, nowait: bool = False, seen: int = -1, turns: int = 0) -> None:
        """Run the batch that `job` heads (nothing when a leader already ran it), then hand the
        lead to the next head. `nowait` (a lead callback on an event loop): when another
        process holds the write lock, the writer's thread leads the batch instead, waiting.

        A loop's batch waits for its loop to go quiet first: while work was queued since the
        lead was asked (`seen` arrivals then), the call is handed back to the lead for the
        next turn of the loop, at most LOOP_TURNS times, so the requests those turns run join
        this batch and its one commit (decisions.md, "Speed, round ten"). A lone request
        (concurrency 1) is led at once."""
        with self._cond:
            if job.led or job.future.done() or not self._queue or self._queue[0] is not job:
                return
            queued = self._arrivals
            again = nowait and turns < LOOP_TURNS and queued != seen
            if not again:
                job.led = True
                batch = self._take_batch(job, nowait=nowait)
        if again:
            self._ask_lead(job, seen=queued, turns=turns + 1)
            return
        busy = handed = False
        try:
            if nowait:
                # On the caller's event loop: the jobs run here, the commit's fsync in the
                # writer's thread, so the loop serves requests meanwhile instead of idling.
                steps = self._batch_steps(batch, nowait=True)
                if next(steps, False) is None:
                    self._hand_commit(steps, batch)
                    handed = True
            else:
                self._run_batch(batch)
        except WriterBusy:
            busy = True  # nothing ran: the batch stays at the head of the queue
        finally:
            if not busy and not handed:
                self._finish(batch)
        if busy:
            with self._cond:
                job.led = False  # the writer's thread leads it, waiting for the lock
            self._hand_to_thread()

    def _take_batch(self, head: Job, *, nowait: bool) -> list[Job]:
        """The jobs of the batch `head` heads, a prefix of the queue as `_finish` expects: up
        to MAX_BATCH of them, a job of joined entries (`submit_entries`) weighing as many
        jobs as it has entries; on the caller's event loop (`nowait`) only the jobs it queued
        itself, never another thread's (an import of 100,000 versions must not run on the
        loop). The rest is led next. Called under the condition."""
        batch: list[Job] = []
        weight = 0
        for other in self._queue:
            if nowait and other.lead != head.lead:
                break
            weight += len(other.entries) if other.entries else 1
            if batch and weight > MAX_BATCH:
                break
            batch.append(other)
        return batch

    def _hand_commit(self, steps: Generator[None, None, None], batch: list[Job]) -> None:
        """Have the writer's thread finish a batch paused before its commit (`_batch_steps`)."""

        def complete() -> None:
            try:
                for _ in steps:
                    pass
            finally:
                self._finish(batch)

        with self._cond:
            self._commits.append(complete)
        try:
            self._hand_to_thread()
        except BaseException:
            # No thread to commit it (it could not start): the batch is rolled back here, and
            # its callers are told it failed (`_lead`), never committed behind their backs.
            with self._cond:
                if complete in self._commits:
                    self._commits.remove(complete)
            steps.close()
            raise

    def _finish(self, batch: list[Job]) -> None:
        """Pop a batch that ran (or was interrupted), waking its callers and the next head."""
        for other in batch:  # only if _run_batch itself was interrupted
            if not other.future.done() and not other.answering:
                other.future.set_exception(errors.StorageUnavailable("write interrupted"))
        with self._cond:
            for _ in batch:
                self._queue.popleft()
            head = self._queue[0] if self._queue else None
            self._cond.notify_all()  # `close` waits for detached work to drain
        for other in batch:
            if other.wake is not None:
                other.wake.set()
        if head is not None:
            self._wake(head)

    def close(self) -> None:
        """Refuse new work; queued work finishes in its callers' threads (detached work in the
        writer's, waited for here up to CLOSE_WAIT seconds)."""
        deadline = time.monotonic() + CLOSE_WAIT
        with self._cond:
            self._closed = True
            self._cond.notify_all()  # the writer's thread ends once nothing detached is left
            while any(job.detached for job in self._queue):
                left = deadline - time.monotonic()
                if left <= 0:
                    log.error("closing with detached writes still queued")
                    break
                self._cond.wait(left)

    def _run_batch(self, batch: list[Job], *, nowait: bool = False) -> None:
        """Run, commit and answer a batch in this thread."""
        for _ in self._batch_steps(batch, nowait=nowait):
            pass

    def _batch_steps(
        self, batch: list[Job], *, nowait: bool = False
    ) -> Generator[None, None, None]:
        """Run a batch's jobs in one write transaction, pausing once just before the commit
        (the caller may resume it in another thread: `_lead`), then commit and answer them.
        A batch that fails before the commit is answered without pausing."""
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            with self._storage.write(nowait=nowait, keep=True) as tx:
                newest_term, head = _sink(tx).batch_head()
                pending: list[tuple[NewAudit, str | None]] = []
                self._before_batch(tx, newest_term)
                for job in batch:
                    raised: list[Exception] = []
                    try:
                        if job.atomic:
                            with tx.savepoint():
                                result, entry = _run(job, tx, raised)
                        else:  # cannot fail half-way (a lone audit entry): no savepoint needed
                            result, entry = job.run(tx)
                        outcomes.append((result, None))
                    except errors.StrongroomError as exc:
                        if isinstance(exc, errors.StorageUnavailable):
                            raise
                        entry = job.on_error(exc)
                        outcomes.append((None, exc))
                    except Exception as exc:
                        # A bug in one job whose savepoint was rolled back (the error is the
                        # job's own, not the rollback's): it alone fails, audited. A database
                        # error may have broken the transaction: the batch fails.
                        if not raised or exc is not raised[0] or isinstance(exc, DATABASE_ERRORS):
                            raise
                        log.error("write job failed: %s", type(exc).__name__, exc_info=exc)
                        entry = job.on_error(errors.StrongroomError())
                        outcomes.append((None, exc))
                    for item in entry if isinstance(entry, list) else [entry] if entry else []:
                        head = self._append(pending, item, head)
                if self._on_batch is not None and pending:
                    # Outgoing events (`core.events`) join the batch's transaction.
                    self._on_batch(tx, [e for e, _ in pending])
                # One round trip for the batch's entries: one INSERT each made a batch of N
                # cost N round trips, each waiting for the GIL among the waiting threads.
                if self._emit is None:
                    _sink(tx).insert_audits(pending, last=True)  # (the commit follows)
                elif pending:
                    # Audit devices get each entry once, with its id, inside the transaction:
                    # a required device that fails fails the batch before anything commits.
                    ids = _sink(tx).insert_audits_returning(pending)
                    self._emit([(e, i, m) for (e, m), i in zip(pending, ids, strict=True)])
                yield  # the commit (one fsync) follows when resumed
        except WriterBusy:
            raise  # nothing ran (`_lead`)
        except Exception as exc:
            self._after_failure()
            with self._cond:  # entries joined from now on would fail with this batch
                for job in batch:
                    job.entries = None
            failure = exc if isinstance(exc, errors.StorageUnavailable) else None
            if failure is None:
                log.error("write batch failed: %s", type(exc).__name__, exc_info=exc)
                failure = errors.StorageUnavailable("the write could not be committed")
            self._answer(batch, [(None, failure)] * len(batch), nowait=nowait)
            return
        self._after_commit()
        self._answer(batch, outcomes, nowait=nowait)

    @staticmethod
    def _answer(
        batch: list[Job], outcomes: list[tuple[Any, BaseException | None]], *, nowait: bool
    ) -> None:
        """Set the futures of a batch's jobs. A batch an event loop led (`nowait`: all its jobs
        have that loop's `lead`) is answered on that loop, with one call for the whole batch:
        set from the writer's thread, each future woke the loop on its own (asyncio's
        `wrap_future` makes a `call_soon_threadsafe` per future)."""
        lead = batch[0].lead if nowait and batch else None
        if lead is not None:
            try:
                lead(functools.partial(_settle, batch, outcomes))
            except Exception:  # e.g. "event loop is closed": answered here
                log.debug("lead callback failed; the batch is answered in this thread")
            else:
                for job in batch:  # (`_finish`, next in this thread, leaves them to the lead)
                    job.answering = True
                return
        _settle(batch, outcomes)

    def _append(
        self, pending: list[tuple[NewAudit, str | None]], entry: NewAudit, head: str | None
    ) -> str:
        # The genesis is read late: the batch that initialises the vault has no key at its start.
        data = canonical(self._genesis() if head is None else head, entry)
        mac = self._mac(data) or unkeyed_mac(data)
        pending.append((entry, mac))
        return mac
