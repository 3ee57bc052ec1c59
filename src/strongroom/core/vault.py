"""The Vault facade: lock state, unlock/auto-lock, and the audited plumbing every operation uses.

Secret operations live in `core.secrets` (a mixin over this class), rotation in `core.rotation`.
Every public operation writes audit entries through the group-commit writer, in the same
transaction as the change it records; reads are answered only once their entry is durable.
This module must never log or put into an error a master key or a secret value.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from strongroom import errors
from strongroom.core.keyrules import check_new_master_key
from strongroom.core.options import VaultConfig
from strongroom.core.writer import Entries, Writer
from strongroom.crypto import Barrier, KDFParams, SealedRoot, SealedTerm
from strongroom.models import VaultHealth, VaultStatus
from strongroom.storage import KeysRow, NewAudit, Storage, TermRow, Tx

__all__ = ["Actor", "VaultBase"]

T = TypeVar("T")

#: Encryptions reserved from a term's shared counter at a time (one UPDATE per block).
RESERVE_BLOCK = 4096
SYSTEM_USER = 0


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: the audited user id, client IP (or `cli`) and request id."""

    user_id: int = 1
    ip: str = "cli"
    request_id: str | None = None


class _AlreadyInitialised(Exception):
    """Another process initialised the vault first; unlock it normally."""


class VaultBase:
    """Lock state, audit plumbing and key bookkeeping shared by every operation."""

    def __init__(self, storage: Storage, config: VaultConfig | None = None) -> None:
        self._storage = storage
        self._config = config or VaultConfig()
        self._clock = self._config.clock
        self._barrier = Barrier()
        self._state = threading.RLock()
        self._argon_slots = threading.BoundedSemaphore(2)
        self._last_access: datetime | None = None
        self._failures = 0
        self._retry_at: datetime | None = None
        self._budget = 0
        self._term_created: dict[int, datetime] = {}
        self._need_new_term = False
        self._pending_term: SealedTerm | None = None
        self._closed = threading.Event()
        self._writer = Writer(
            storage,
            self._chain_mac,
            self._genesis,
            self._before_batch,
            self._after_commit,
            self._after_failure,
        )
        if self._config.auto_lock:
            threading.Thread(target=self._reap, name="strongroom-autolock", daemon=True).start()

    # -- public lifecycle -----------------------------------------------------------------
    @property
    def is_locked(self) -> bool:
        """True when the vault holds no keys (auto-lock applied first)."""
        self._check_idle()
        return not self._barrier.is_unlocked

    @property
    def storage_label(self) -> str:
        """The database this vault uses, password redacted."""
        return self._storage.label

    def unlock(
        self, master_key: str, *, user_id: int = 1, ip: str = "cli", request_id: str | None = None
    ) -> None:
        """Unlock with the master key; the first unlock of an empty database initialises it.

        Raises:
            InvalidInput: the key is empty or not a string; or, initialising, it is shorter than
                16 characters or of low estimated strength (`core.keyrules`).
            InvalidMasterKey: the key does not open this vault (audited; nothing changes).
            TooManyAttempts: too many recent failures; retry after `retry_after` seconds.
        """
        actor = Actor(user_id, ip, request_id)
        if not isinstance(master_key, str) or not master_key:
            raise errors.InvalidInput("master key must be a non-empty string")
        try:
            master_key.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise errors.InvalidInput("master key must be valid Unicode text") from exc
        with self._argon_slots:
            try:
                self._check_backoff()
                self._unlock(master_key, actor)
            except errors.StrongroomError as exc:
                if isinstance(exc, errors.InvalidMasterKey):
                    self._note_failure()
                self._audit(self._entry("unlock", actor, success=False, error=exc))
                raise
        with self._state:
            self._failures, self._retry_at = 0, None
            self._last_access = self._clock.now()

    def unlock_from_env(self, environ: Mapping[str, str] | None = None) -> None:
        """Unlock with `VAULT_MASTER_KEY` from the environment.

        Raises:
            InvalidInput: the variable is not set.
            InvalidMasterKey: it does not open this vault.
        """
        env = os.environ if environ is None else environ
        key = env.get("VAULT_MASTER_KEY", "")
        if not key:
            raise errors.InvalidInput("VAULT_MASTER_KEY is not set")
        self.unlock(key)

    def lock(self, *, user_id: int = 1, ip: str = "cli", request_id: str | None = None) -> None:
        """Drop every key from memory (the entry is written first, while it can be chained)."""
        self._audit(self._entry("lock", Actor(user_id, ip, request_id)))
        self._drop_keys()

    def status(self) -> VaultStatus:
        """Lock state and keyring summary. Not activity: it never delays auto-lock."""
        self._check_idle()
        with self._storage.read() as tx:
            keys = tx.get_keys()
        unlocked = self._barrier.is_unlocked
        terms = self._barrier.terms if unlocked else []
        return VaultStatus(
            not unlocked,
            keys is not None,
            keys.vault_id if keys else None,
            len(terms),
            max(terms) if terms else None,
        )

    def health(self) -> VaultHealth:
        """The design document's health body. Not activity."""
        self._check_idle()
        return VaultHealth(
            not self._barrier.is_unlocked, self._last_access, self._config.auto_lock, True
        )

    def close(self) -> None:
        """Finish queued writes, drop keys and close connections. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._writer.close()
        self._drop_keys()
        self._storage.dispose()

    def __enter__(self) -> VaultBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing for operations ----------------------------------------------------------
    def _entry(
        self,
        action: str,
        actor: Actor,
        path: str | None = None,
        secret_id: int | None = None,
        *,
        success: bool = True,
        error: BaseException | None = None,
    ) -> NewAudit:
        return NewAudit(
            self._clock.now(),
            secret_id,
            path,
            actor.user_id,
            action,
            actor.ip[:64],
            success,
            type(error).__name__ if error else None,
            actor.request_id[:64] if actor.request_id else None,
        )

    def _audit(self, entries: Entries) -> None:
        self._writer.submit(lambda tx: (None, entries), lambda exc: None, atomic=False)

    def _read_op(
        self, action: str, actor: Actor, path: str | None, fn: Callable[[Tx], tuple[T, int | None]]
    ) -> T:
        """Run a read in the caller's thread, then make its audit entry durable."""

        def read() -> tuple[T, int | None]:
            with self._storage.read() as tx:
                return fn(tx)

        return self._audited(action, actor, path, read)

    def _audited(
        self, action: str, actor: Actor, path: str | None, fn: Callable[[], tuple[T, int | None]]
    ) -> T:
        """Run `fn` (activity; needs the vault unlocked), then make its audit entry durable."""
        try:
            self._touch()
            self._require_unlocked()
            result, secret_id = fn()
        except errors.StrongroomError as exc:
            self._audit(self._entry(action, actor, path, success=False, error=exc))
            raise
        self._audit(self._entry(action, actor, path, secret_id))
        return result

    def _write_op(
        self,
        action: str,
        actor: Actor,
        path: str | None,
        fn: Callable[[Tx], tuple[T, int | Entries | None]],
    ) -> T:
        """Run a change in the writer's next batch with its audit entry (fail-closed)."""
        self._touch()

        def run(tx: Tx) -> tuple[T, Entries]:
            self._require_unlocked()
            result, extra = fn(tx)
            if isinstance(extra, NewAudit | list):
                return result, extra
            return result, self._entry(action, actor, path, extra)

        def failed(exc: errors.StrongroomError) -> Entries:
            return self._entry(action, actor, path, success=False, error=exc)

        result: T = self._writer.submit(run, failed)
        return result

    def _require_unlocked(self) -> None:
        if not self._barrier.is_unlocked:
            raise errors.VaultLocked()

    def _encrypt(
        self,
        tx: Tx,
        plaintext: bytes,
        secret_id: int,
        path: str,
        version: int,
    ) -> tuple[str, int]:
        """Encrypt one version under the newest term, counting it against the term's limit."""
        if self._budget <= 0:
            term = self._barrier.current_term
            total = tx.reserve_encryptions(term, RESERVE_BLOCK)
            if total >= self._config.term_max_encryptions:
                self._need_new_term = True
            self._budget = RESERVE_BLOCK
        self._budget -= 1
        term = self._barrier.current_term
        return self._barrier.encrypt(
            plaintext, "version", secret_id, path, version, term=term
        ), term

    def _decrypt(self, tx: Tx, envelope: str, secret_id: int, path: str, version: int) -> bytes:
        """Decrypt one version; an unknown term first reloads the keyring (another process
        may have added it).

        Raises:
            IntegrityError: the envelope fails authentication for this secret and version.
        """
        try:
            return self._barrier.decrypt(envelope, "version", secret_id, path, version)
        except errors.IntegrityError:
            if self._barrier.envelope_term(envelope) in self._barrier.terms:
                raise
        self._load_terms(tx)
        return self._barrier.decrypt(envelope, "version", secret_id, path, version)

    # -- keys and terms -------------------------------------------------------------------
    def _kdf_params(self) -> KDFParams:
        c = self._config
        return KDFParams(c.argon2_time_cost, c.argon2_memory_kib, c.argon2_parallelism)

    def _unlock(self, master_key: str, actor: Actor) -> None:
        with self._storage.read() as tx:
            keys, terms = tx.get_keys(), tx.terms()
        if keys is None:
            try:
                self._initialise(master_key, actor)
                return
            except _AlreadyInitialised:
                with self._storage.read() as tx:
                    keys, terms = tx.get_keys(), tx.terms()
                assert keys is not None  # noqa: S101 - just committed by another process
        sealed = SealedRoot(keys.vault_id, keys.salt, keys.kdf_params, keys.wrapped_root)
        with self._state:
            if self._barrier.is_unlocked:
                if not self._barrier.matches(master_key, sealed):
                    raise errors.InvalidMasterKey()
            else:
                self._barrier.unlock(
                    master_key, sealed, [SealedTerm(t.term, t.wrapped_key) for t in terms]
                )
                self._term_created = {t.term: t.created_at for t in terms}
                self._budget = 0
        try:
            self._audit(self._entry("unlock", actor))
        except errors.StrongroomError:
            self._drop_keys()
            raise

    def _initialise(self, master_key: str, actor: Actor) -> None:
        check_new_master_key(master_key)  # a new vault gets a strong key (old ones keep opening)

        def run(tx: Tx) -> tuple[None, Entries]:
            if tx.get_keys() is not None:
                raise errors.Conflict("already initialised")
            now = self._clock.now()
            sealed, first = self._barrier.initialize(master_key, self._kdf_params())
            tx.put_keys(
                KeysRow(sealed.vault_id, sealed.salt, sealed.kdf_params, sealed.wrapped_root), now
            )
            tx.add_term(TermRow(first.term, first.wrapped_key, now))
            self._term_created = {first.term: now}
            self._budget = 0
            return None, [self._entry("init", actor), self._entry("unlock", actor)]

        with self._state:
            try:
                self._writer.submit(run, lambda exc: None)
            except errors.Conflict as exc:
                raise _AlreadyInitialised() from exc
            except errors.StrongroomError:
                self._barrier.lock()
                raise

    def _load_terms(self, tx: Tx) -> None:
        rows = tx.terms()
        self._barrier.load_terms([SealedTerm(t.term, t.wrapped_key) for t in rows])
        self._term_created.update({t.term: t.created_at for t in rows})

    def _before_batch(self, tx: Tx, newest_term: int) -> None:
        """Runs at the start of every write transaction, under the writer lock: picks up a term
        another process added, or starts a new one when the current is used up or too old."""
        if not self._barrier.is_unlocked:
            return
        current = self._barrier.current_term
        if newest_term > current:
            self._load_terms(tx)
            self._budget = 0
            return
        created = self._term_created.get(current)
        too_old = created is not None and self._clock.now() - created >= self._config.term_max_age
        if self._need_new_term or too_old:
            self._pending_term = self._new_term(tx, current + 1)

    def _new_term(self, tx: Tx, term: int) -> SealedTerm:
        """Store a new data key; it is used once its transaction commits (`_after_commit`)."""
        sealed = self._barrier.new_term(term, install=False)
        tx.add_term(TermRow(term, sealed.wrapped_key, self._clock.now()))
        return sealed

    def _after_commit(self) -> None:
        pending, self._pending_term = self._pending_term, None
        if pending is not None and self._barrier.is_unlocked:
            self._barrier.load_terms([pending])
            self._term_created[pending.term] = self._clock.now()
            self._need_new_term = False
            self._budget = 0

    def _after_failure(self) -> None:
        # Reserved encryptions and a new term were rolled back with the transaction.
        self._budget = 0
        self._pending_term = None

    def _chain_mac(self, data: bytes) -> str | None:
        try:
            return self._barrier.mac(data)
        except errors.VaultLocked:
            return None

    def _genesis(self) -> str:
        return self._barrier.vault_id if self._barrier.is_unlocked else ""

    # -- lock state -----------------------------------------------------------------------
    def _drop_keys(self) -> None:
        with self._state:
            self._barrier.lock()
            self._last_access = None
            self._budget = 0

    def _touch(self) -> None:
        """Mark activity (after applying a due auto-lock)."""
        self._check_idle()
        with self._state:
            if self._barrier.is_unlocked:
                self._last_access = self._clock.now()

    def _check_idle(self) -> None:
        if not self._config.auto_lock:
            return
        with self._state:
            last = self._last_access
            if last is None or not self._barrier.is_unlocked:
                return
            if self._clock.now() - last < self._config.auto_lock_timeout:
                return
            try:
                self._audit(self._entry("auto_lock", Actor(SYSTEM_USER, "system")))
            finally:
                self._drop_keys()

    def _reap(self) -> None:
        interval = min(self._config.auto_lock_timeout.total_seconds() / 4, 5.0)
        while not self._closed.wait(max(interval, 0.05)):
            try:
                self._check_idle()
            except errors.StrongroomError:
                continue

    def _check_backoff(self) -> None:
        with self._state:
            retry_at = self._retry_at
        if retry_at is not None:
            wait = (retry_at - self._clock.now()).total_seconds()
            if wait > 0:
                raise errors.TooManyAttempts(
                    f"too many failed unlock attempts; retry in {wait:.0f}s", retry_after=wait
                )

    def _note_failure(self) -> None:
        with self._state:
            self._failures += 1
            over = self._failures - self._config.unlock_backoff_after
            if over >= 0:
                delay = min(2.0**over, 900.0)
                self._retry_at = self._clock.now() + timedelta(seconds=delay)
