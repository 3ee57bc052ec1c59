"""`VaultState`: what every service of one vault shares — lock state, barrier, writer, clock —
and the audited plumbing every operation goes through.

Every service receives the one `VaultState` of its vault in its constructor and uses only the
public methods below: `read`/`write`/`audited` run an operation and make its audit entry durable
(fail-closed), `encrypt`/`decrypt` bind a version's ciphertext to its secret, `entry`/`audit`
write entries no operation wraps. Unlock, lock and the one auto-lock path (`auto_lock`, audited)
live here too. This module must never log or put into an error a master key or a secret value.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from strongroom import errors
from strongroom.core.audit_devices import AuditDevices, parse_device
from strongroom.core.keyrules import check_new_master_key
from strongroom.core.options import VaultConfig
from strongroom.core.terms import KeyStore, Terms
from strongroom.core.throttle import UnlockBackoff
from strongroom.core.writer import Entries, Lead, Writer
from strongroom.crypto import Barrier, KDFParams, SealedRoot, SealedTerm
from strongroom.models import MAX_PATH_LENGTH, SYSTEM_ACTOR, Actor
from strongroom.storage import KeysRow, NewAudit, Storage, TermRow, Tx, new_audit_entry

__all__ = ["VaultState"]

T = TypeVar("T")

#: Where `read_detached` gathers the audit entries of the reads it runs (None: not collecting).
_COLLECTED: ContextVar[list[NewAudit] | None] = ContextVar("strongroom_collected", default=None)


@dataclass
class _Detach:
    """The one write a `write_detached` call queues, and who leads its batch."""

    lead: Lead | None
    future: Future[Any] | None = None


_DETACH: ContextVar[_Detach | None] = ContextVar("strongroom_detach", default=None)
#: True where the calling thread must never wait for the writer (`_no_wait`): an event loop,
#: inside `read_detached` called with a `lead` (it leads detached batches: waiting could wait
#: for a batch only it can run) and inside every `write_detached` (a loop on PostgreSQL too,
#: whose batches the writer's thread runs: waiting would stall every request on the loop).
_NO_WAIT: ContextVar[bool] = ContextVar("strongroom_no_wait", default=False)


def _storable(path: str | None) -> str | None:
    if path is None:
        return None
    text = path.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\0")
    return text[:MAX_PATH_LENGTH]


class _AlreadyInitialised(Exception):
    """Another process initialised the vault first; unlock it normally."""


def _keys(tx: Tx) -> KeyStore:
    return tx.keys


def _no_wait() -> None:
    """Refuse a synchronous write on a thread that must not wait for the writer (see
    `_NO_WAIT`).

    Raises:
        RuntimeError: a bug: the call would wait for a batch only this thread can run.
    """
    if _NO_WAIT.get():
        raise RuntimeError("a synchronous write on a thread that must not wait for the writer")


class VaultState:
    """Lock state, keys, writer and audit plumbing of one vault. Thread-safe.

    Attributes:
        storage: the database (services open read transactions with `storage.read()`).
        config: the vault's options; `clock` is `config.clock`.
        barrier: the key holder (`crypto.Barrier`); services call only its public methods.
        terms: the data-key term bookkeeping (`core.terms.Terms`).
    """

    def __init__(self, storage: Storage, config: VaultConfig | None = None) -> None:
        self.storage = storage
        self.config = config or VaultConfig()
        self.clock = self.config.clock
        self.barrier = Barrier()
        self.terms = Terms(self.barrier, self.clock, self.config)
        self._lock = threading.RLock()
        self._argon_slots = threading.BoundedSemaphore(2)
        self._backoff = UnlockBackoff(self.clock, self.config.unlock_backoff_after)
        self._last_access: datetime | None = None
        self._auto_locked = False
        self._closed = threading.Event()
        #: The audit devices every committed entry is streamed to (`core.audit_devices`).
        self.devices = AuditDevices(
            [parse_device(d) for d in self.config.audit_devices], self.clock
        )
        self._batch_hooks: list[Callable[[Tx, list[NewAudit]], None]] = []
        self._writer = Writer(
            storage,
            self._chain_mac,
            self._genesis,
            lambda tx, newest: self.terms.before_batch(_keys(tx), newest),
            self.terms.after_commit,
            self.terms.after_failure,
            self.devices.emit if self.devices else None,
            self._run_batch_hooks,
        )
        if self.config.auto_lock:
            threading.Thread(target=self._reap, name="strongroom-autolock", daemon=True).start()

    # -- lock state -------------------------------------------------------------------------
    @property
    def is_unlocked(self) -> bool:
        """True while the barrier holds keys (no auto-lock applied: see `check_idle`)."""
        return self.barrier.is_unlocked

    @property
    def is_auto_locked(self) -> bool:
        """True while the vault is locked because auto-lock locked it (not an explicit lock)."""
        return self._auto_locked and not self.barrier.is_unlocked

    @property
    def last_access(self) -> datetime | None:
        """The last activity while unlocked (None when locked)."""
        return self._last_access

    def require_unlocked(self) -> None:
        """Raises:
        VaultLocked: the vault is locked."""
        if not self.barrier.is_unlocked:
            raise errors.VaultLocked()

    def touch(self) -> None:
        """Mark activity (after applying a due auto-lock).

        Activity is a secret operation by an authenticated caller that succeeded (docs/security.md,
        "Memory"): `read`, `audited` and `write` mark it after the operation and its audit entry
        are durable. A refused or failed call (not found, conflict, invalid input) is not
        activity, like a 401 or 403 that never reaches the core, and like status and health.
        """
        self.check_idle()
        self._mark_active()  # never waits: a read on a server's event loop must not stall

    def check_idle(self) -> None:
        """Apply auto-lock if the vault has been idle for `auto_lock_timeout`."""
        # Never waits (see `touch`): while the lock state is changing, there is nothing to apply.
        if not self.config.auto_lock or not self._lock.acquire(blocking=False):
            return
        try:
            last = self._last_access
            if (
                last is not None
                and self.barrier.is_unlocked
                and self.clock.now() - last >= self.config.auto_lock_timeout
            ):
                self.auto_lock()
        finally:
            self._lock.release()

    def auto_lock(self) -> None:
        """The one auto-lock path: audit `auto_lock` as the system, then drop the keys.

        Used by `check_idle` (under the state lock) and by a server whose workers were all idle;
        it does not wait for an unlock in progress (a vault still locked is left alone).
        """
        if not self.barrier.is_unlocked:
            return
        if _NO_WAIT.get():
            # On an event loop (`_NO_WAIT`): waiting here for the entry could wait for a batch
            # only this thread can run, or stall the loop. The writer's thread commits it
            # (chained without the key if the keys are gone by then, covered by the next keyed
            # entry).
            self._writer.submit_detached(
                lambda tx: (None, self.entry("auto_lock", SYSTEM_ACTOR)), lambda exc: None
            )
            self.drop_keys(auto=True)
            return
        try:
            self.audit(self.entry("auto_lock", SYSTEM_ACTOR))
        finally:
            self.drop_keys(auto=True)

    def drop_keys(self, *, auto: bool = False) -> None:
        """Overwrite every key in memory (no audit entry: see `lock` and `auto_lock`).
        `auto`: the keys go because the vault was idle (a relayed auto-lock), so a server
        with `--auto-unlock` may bring them back."""
        with self._lock:
            if auto and not self.barrier.is_unlocked:
                return  # already locked (an explicit lock stays explicit)
            self._auto_locked = auto
            self.barrier.lock()
            self._last_access = None
            self.terms.reset()

    # -- audited plumbing -------------------------------------------------------------------
    def entry(
        self,
        action: str,
        actor: Actor,
        path: str | None = None,
        secret_id: int | None = None,
        *,
        success: bool = True,
        error: BaseException | None = None,
    ) -> NewAudit:
        """An audit entry for `actor` doing `action` now. The path is recorded as given, made
        storable (NUL and lone surrogates escaped, at most MAX_PATH_LENGTH characters): a refused
        request is audited before its path is validated, and one unstorable entry must not fail
        the other entries of its group commit."""
        return new_audit_entry(
            self.clock.now(),
            secret_id,
            _storable(path),
            actor.user_id,
            action,
            actor.ip[:64],
            success,
            type(error).__name__ if error else None,
            actor.request_id[:64] if actor.request_id else None,
        )

    def audit(self, entries: Entries) -> None:
        """Write entries no operation wraps (durable before this returns).

        Raises:
            StorageUnavailable: they could not be written (fail-closed).
        """
        _no_wait()
        self._writer.submit(lambda tx: (None, entries), lambda exc: None, atomic=False)

    def read(
        self, action: str, actor: Actor, path: str | None, fn: Callable[[Tx], tuple[T, int | None]]
    ) -> T:
        """Run a read (returning (result, secret id)) in the caller's thread, then make its
        audit entry durable. Activity; needs the vault unlocked."""

        def run() -> tuple[T, int | None]:
            with self.storage.read() as tx:
                return fn(tx)

        return self.audited(action, actor, path, run)

    def audited(
        self, action: str, actor: Actor, path: str | None, fn: Callable[[], tuple[T, int | None]]
    ) -> T:
        """Run `fn` (needs the vault unlocked), then make its audit entry durable; activity
        only when it succeeded (see `touch`)."""
        collected = _COLLECTED.get()
        record = self.audit if collected is None else collected.append
        try:
            self.check_idle()
            self.require_unlocked()
            result, secret_id = fn()
        except errors.StrongroomError as exc:
            record(self.entry(action, actor, path, success=False, error=exc))
            raise
        record(self.entry(action, actor, path, secret_id))
        self.touch()
        return result

    def read_detached(
        self, fn: Callable[[], T], lead: Lead | None = None
    ) -> tuple[T | None, errors.StrongroomError | None, Future[None] | None]:
        """Run `fn` with the audit entries of its reads (`read`/`audited`) queued for the
        writer's next batch instead of waited for: (result, the error it raised, the future of
        its entries, None when it made none). The caller must wait for that future before it
        uses the result or reports the error (fail-closed): that is what lets an event loop
        run a read without blocking on the audit commit. `lead` runs the batch in the caller's
        thread (`Writer.submit_detached`). Entries that other paths write (an auto-lock, a
        write) are written as usual."""
        collected: list[NewAudit] = []
        token, no_wait = _COLLECTED.set(collected), _NO_WAIT.set(lead is not None)
        result: T | None = None
        error: errors.StrongroomError | None = None
        try:
            result = fn()
        except errors.StrongroomError as exc:
            error = exc
        finally:
            _COLLECTED.reset(token)
            _NO_WAIT.reset(no_wait)
        if not collected:
            return result, error, None
        return result, error, self._writer.submit_entries(collected, lead)

    def write(
        self,
        action: str,
        actor: Actor,
        path: str | None,
        fn: Callable[[Tx], tuple[T, int | Entries | None]],
    ) -> T:
        """Run a change in the writer's next batch with its audit entry (fail-closed).

        `fn` returns (result, secret id) or (result, its own audit entries). Needs the vault
        unlocked. Activity only when it succeeded (see `touch`).
        """
        self.check_idle()

        def run(tx: Tx) -> tuple[T, Entries]:
            self.require_unlocked()
            result, extra = fn(tx)
            if isinstance(extra, NewAudit | list):
                return result, extra
            return result, self.entry(action, actor, path, extra)

        def failed(exc: errors.StrongroomError) -> Entries:
            return self.entry(action, actor, path, success=False, error=exc)

        detach = _DETACH.get()
        if detach is not None and detach.future is None:
            detach.future = self._writer.submit_detached(run, failed, lead=detach.lead)
            detach.future.add_done_callback(self._touch_if_written)
            return None  # type: ignore[return-value]  # `write_detached`'s caller has the future
        _no_wait()
        result: T = self._writer.submit(run, failed)
        self.touch()
        return result

    def write_detached(self, fn: Callable[[], object], lead: Lead | None = None) -> Future[Any]:
        """Run `fn`, a service call that makes one `write` and returns its result as is (e.g.
        `KVEngine.write`), with that write queued instead of waited for: the future holds what
        the call would have returned once the write and its audit entry are durable, or its
        error. `lead` runs the batch in the caller's thread (`Writer.submit_detached`). What
        `fn` raises before it writes (invalid input) is raised here.

        Raises:
            RuntimeError: `fn` made no write (not a call this is meant for).
        """
        detach = _Detach(lead)
        token, no_wait = _DETACH.set(detach), _NO_WAIT.set(True)
        try:
            fn()
        finally:
            _DETACH.reset(token)
            _NO_WAIT.reset(no_wait)
        if detach.future is None:
            raise RuntimeError("write_detached: the call made no write")
        return detach.future

    def _touch_if_written(self, future: Future[Any]) -> None:
        # Runs where the batch is answered (the thread that led it, its batch still queued, or
        # the event loop that led it, through its lead): activity only, never `check_idle` (an
        # auto-lock there could wait for a batch); the next call or the reaper applies a due
        # auto-lock.
        if future.exception() is None:
            self._mark_active()

    def _mark_active(self) -> None:
        # Never waits: the lock is held only while the lock state changes (an unlock's Argon2
        # run among others), and an unlock marks activity itself.
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self.barrier.is_unlocked:
                self._last_access = self.clock.now()
        finally:
            self._lock.release()

    def submit(
        self,
        fn: Callable[[Tx], tuple[T, Entries]],
        on_error: Callable[[errors.StrongroomError], Entries],
    ) -> T:
        """Run `fn` in the writer's next batch as is (no activity, no unlock check): for
        changes allowed while locked (users, policies) and multi-step jobs (rotation)."""
        _no_wait()
        result: T = self._writer.submit(fn, on_error)
        return result

    # -- encryption -------------------------------------------------------------------------
    def encrypt(
        self, tx: Tx, plaintext: bytes, secret_id: int, path: str, version: int
    ) -> tuple[str, int]:
        """Encrypt one version under the newest term; return (envelope, term)."""
        term = self.terms.reserve(_keys(tx))
        return self.barrier.encrypt(plaintext, "version", secret_id, path, version, term=term), term

    def decrypt(self, tx: Tx, envelope: str, secret_id: int, path: str, version: int) -> bytes:
        """Decrypt one version; an unknown term first reloads the keyring (another process
        may have added it).

        Raises:
            IntegrityError: the envelope fails authentication for this secret and version.
        """
        try:
            return self.barrier.decrypt(envelope, "version", secret_id, path, version)
        except errors.IntegrityError:
            if self.barrier.envelope_term(envelope) in self.barrier.terms:
                raise
        self.terms.reload(_keys(tx))
        return self.barrier.decrypt(envelope, "version", secret_id, path, version)

    # -- unlock and lock --------------------------------------------------------------------
    def kdf_params(self) -> KDFParams:
        """The Argon2id parameters for a new master key."""
        c = self.config
        return KDFParams(c.argon2_time_cost, c.argon2_memory_kib, c.argon2_parallelism)

    @contextmanager
    def argon_slot(self) -> Iterator[None]:
        """Hold one of the two Argon2 slots (bounds memory under concurrent unlocks)."""
        with self._argon_slots:
            yield

    def unlock(self, master_key: str, actor: Actor, *, action: str = "unlock") -> None:
        """Unlock with the master key; the first unlock of an empty database initialises it.
        `action` names the audit entry (`auto_unlock` for a server's unattended unlock).

        Raises:
            InvalidInput: the key is empty or not a string.
            InvalidMasterKey: the key does not open this vault (audited; nothing changes).
            TooManyAttempts: too many recent failures; retry after `retry_after` seconds.
        """
        if not isinstance(master_key, str) or not master_key:
            raise errors.InvalidInput("master key must be a non-empty string")
        try:
            master_key.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise errors.InvalidInput("master key must be valid Unicode text") from exc
        with self._argon_slots:
            try:
                self._backoff.check()
                self._unlock(master_key, actor, action)
            except errors.StrongroomError as exc:
                if isinstance(exc, errors.InvalidMasterKey):
                    self._backoff.failed()
                self.audit(self.entry(action, actor, success=False, error=exc))
                raise
        self._backoff.succeeded()
        with self._lock:
            self._last_access = self.clock.now()

    def unlock_relayed(self, master_key: str) -> None:
        """Apply an unlock that another process of the same server made and audited (the
        server's worker processes, `http.control`): the keys are loaded, no audit entry is
        written, so one unlock is one audit entry however many workers apply it. The relayed
        lock is `drop_keys`. Not for callers: an unlock by a caller is `unlock`.

        Raises:
            InvalidMasterKey: the key does not open this vault.
        """
        with self._argon_slots:
            self._unlock(master_key, None)
        with self._lock:
            self._last_access = self.clock.now()

    def lock(self, actor: Actor) -> None:
        """Drop every key from memory (the entry is written first, while it can be chained)."""
        self.audit(self.entry("lock", actor))
        self.drop_keys()

    def close(self) -> None:
        """Finish queued writes, drop keys and close connections. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._writer.close()
        self.drop_keys()
        self.storage.dispose()
        self.devices.close()

    def _unlock(self, master_key: str, actor: Actor | None, action: str = "unlock") -> None:
        """Load the keys; audit the unlock as `actor` under `action` (None: relayed, not
        audited)."""
        with self.storage.read() as tx:
            keys, terms = tx.keys.get_keys(), tx.keys.terms()
        if keys is None and actor is not None:
            try:
                self._initialise(master_key, actor)
                return
            except _AlreadyInitialised:
                with self.storage.read() as tx:
                    keys, terms = tx.keys.get_keys(), tx.keys.terms()
                assert keys is not None  # noqa: S101 - just committed by another process
        if keys is None:
            raise errors.InvalidMasterKey()  # relayed before the vault exists: cannot happen
        sealed = SealedRoot(keys.vault_id, keys.salt, keys.kdf_params, keys.wrapped_root)
        with self._lock:
            if self.barrier.is_unlocked:
                if not self.barrier.matches(master_key, sealed):
                    raise errors.InvalidMasterKey()
            else:
                self.barrier.unlock(
                    master_key, sealed, [SealedTerm(t.term, t.wrapped_key) for t in terms]
                )
                self.terms.reset({t.term: t.created_at for t in terms})
        if actor is None:
            return
        try:
            self.audit(self.entry(action, actor))
        except errors.StrongroomError:
            self.drop_keys()
            raise

    def _initialise(self, master_key: str, actor: Actor) -> None:
        check_new_master_key(master_key)  # a new vault gets a strong key (old ones keep opening)

        def run(tx: Tx) -> tuple[None, Entries]:
            if tx.keys.get_keys() is not None:
                raise errors.Conflict("already initialised")
            now = self.clock.now()
            sealed, first = self.barrier.initialize(master_key, self.kdf_params())
            tx.keys.put_keys(
                KeysRow(sealed.vault_id, sealed.salt, sealed.kdf_params, sealed.wrapped_root), now
            )
            tx.keys.add_term(TermRow(first.term, first.wrapped_key, now))
            self.terms.reset({first.term: now})
            return None, [self.entry("init", actor), self.entry("unlock", actor)]

        with self._lock:
            try:
                self._writer.submit(run, lambda exc: None)
            except errors.Conflict as exc:
                raise _AlreadyInitialised() from exc
            except errors.StrongroomError:
                self.barrier.lock()
                raise

    def on_batch(self, hook: Callable[[Tx, list[NewAudit]], None]) -> None:
        """Run `hook(tx, entries)` in every writer batch's transaction, before it commits, with
        the batch's audit entries (`core.events` turns them into outgoing events). A hook that
        raises fails the batch (fail-closed)."""
        self._batch_hooks.append(hook)

    # -- writer callbacks -------------------------------------------------------------------
    def _run_batch_hooks(self, tx: Tx, entries: list[NewAudit]) -> None:
        for hook in self._batch_hooks:
            hook(tx, entries)

    def _chain_mac(self, data: bytes) -> str | None:
        try:
            return self.barrier.mac(data)
        except errors.VaultLocked:
            return None

    def _genesis(self) -> str:
        return self.barrier.vault_id if self.barrier.is_unlocked else ""

    def _reap(self) -> None:
        interval = min(self.config.auto_lock_timeout.total_seconds() / 4, 5.0)
        while not self._closed.wait(max(interval, 0.05)):
            try:
                self.check_idle()
            except errors.StrongroomError:
                continue
