"""`Terms`: the data-key terms of an unlocked vault, between the barrier and the storage.

It reserves encryptions from a term's shared counter (one UPDATE per block), starts a new term
when the current one is used up or too old, picks up a term another process added, and installs
a new term only once the transaction that stored it has committed. Rotation asks for a term
through `start` and `install_on_commit`; nothing else writes this state.
This module never sees a key: the barrier wraps and unwraps them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from strongroom.clock import Clock
from strongroom.core.options import VaultConfig
from strongroom.crypto import Barrier, SealedTerm
from strongroom.storage import KeysRow, TermRow

__all__ = ["RESERVE_BLOCK", "KeyStore", "Terms"]

#: Encryptions reserved from a term's shared counter at a time (one UPDATE per block).
RESERVE_BLOCK = 4096


class KeyStore(Protocol):
    """The storage `VaultState` and `Terms` need: the key row and the data-key terms."""

    def get_keys(self) -> KeysRow | None: ...

    def put_keys(self, keys: KeysRow, now: datetime) -> None: ...

    def terms(self) -> list[TermRow]: ...

    def add_term(self, term: TermRow) -> None: ...

    def delete_term(self, term: int) -> None: ...

    def reserve_encryptions(self, term: int, count: int) -> int: ...

    def max_term(self) -> int: ...


class Terms:
    """Term bookkeeping of one vault instance (callers hold the writer or the state lock)."""

    def __init__(self, barrier: Barrier, clock: Clock, config: VaultConfig) -> None:
        self._barrier = barrier
        self._clock = clock
        self._config = config
        self._budget = 0
        self._created: dict[int, datetime] = {}
        self._need_new = False
        self._pending: SealedTerm | None = None

    def reset(self, created: dict[int, datetime] | None = None) -> None:
        """Forget the reserved budget (and, given `created`, replace the terms' ages)."""
        self._budget = 0
        if created is not None:
            self._created = dict(created)

    def reload(self, store: KeyStore) -> None:
        """Load every stored term into the barrier (another process may have added one)."""
        rows = store.terms()
        self._barrier.load_terms([SealedTerm(t.term, t.wrapped_key) for t in rows])
        self._created.update({t.term: t.created_at for t in rows})

    def reserve(self, store: KeyStore) -> int:
        """The term to encrypt one more version under, counted against its limit."""
        if self._budget <= 0:
            total = store.reserve_encryptions(self._barrier.current_term, RESERVE_BLOCK)
            if total >= self._config.term_max_encryptions:
                self._need_new = True
            self._budget = RESERVE_BLOCK
        self._budget -= 1
        return self._barrier.current_term

    def start(self, store: KeyStore) -> SealedTerm:
        """A new term stored in this transaction: the one `before_batch` just started, if any,
        else a fresh one. It is used only after `install_on_commit` and the commit."""
        newest = store.max_term()
        if self._pending is not None and self._pending.term == newest:
            return self._pending
        sealed = self._barrier.new_term(newest + 1, install=False)
        store.add_term(TermRow(newest + 1, sealed.wrapped_key, self._clock.now()))
        return sealed

    def install_on_commit(self, term: SealedTerm) -> None:
        """Use `term` for new encryptions once the current transaction commits."""
        self._pending = term

    # -- writer hooks ---------------------------------------------------------------------
    def before_batch(self, store: KeyStore, newest_term: int) -> None:
        """At the start of every write transaction, under the writer lock: pick up a term
        another process added, or start a new one when the current is used up or too old."""
        if not self._barrier.is_unlocked:
            return
        current = self._barrier.current_term
        if newest_term > current:
            self.reload(store)
            self._budget = 0
            return
        created = self._created.get(current)
        too_old = created is not None and self._clock.now() - created >= self._config.term_max_age
        if self._need_new or too_old:
            sealed = self._barrier.new_term(current + 1, install=False)
            store.add_term(TermRow(current + 1, sealed.wrapped_key, self._clock.now()))
            self._pending = sealed

    def after_commit(self) -> None:
        """The batch committed: install a term it stored."""
        pending, self._pending = self._pending, None
        if pending is not None and self._barrier.is_unlocked:
            self._barrier.load_terms([pending])
            self._created[pending.term] = self._clock.now()
            self._need_new = False
            self._budget = 0

    def after_failure(self) -> None:
        """The batch rolled back, and with it reserved encryptions and a new term."""
        self._budget = 0
        self._pending = None
