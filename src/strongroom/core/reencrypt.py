"""Re-encryption after a master-key rotation: every version still under a term older than the
target moves to it, in bounded batches through the group-commit writer (each batch its own
transaction, so reads and writes keep working), then the rotation marker is cleared and unused
terms are deleted. Storage: `RotationStore` (`tx.rotation`) and `KeyStore` (`tx.keys`).

A version that fails its integrity check keeps its old term and is reported at the end; this
module never logs or puts a value into an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from strongroom import errors
from strongroom.api import Progress, RotationResult
from strongroom.core.state import VaultState
from strongroom.core.terms import KeyStore
from strongroom.core.writer import Entries
from strongroom.models import Actor
from strongroom.storage import NewAudit, Tx, VersionRow

__all__ = ["Reencryption", "RotationStore"]

#: Re-encryption passes before giving up (a pass after the first only runs if rows were left).
MAX_PASSES = 3


class RotationStore(Protocol):
    """What re-encryption needs from storage (`tx.rotation`)."""

    def count_versions_below_term(self, term: int) -> int: ...

    def count_secrets_below_term(self, term: int) -> int: ...

    def versions_below_term_after(
        self, term: int, after_id: int, limit: int
    ) -> list[tuple[int, VersionRow, str]]: ...

    def rewrite_versions(self, rows: list[tuple[int, str, int]]) -> None: ...

    def terms_in_use(self) -> set[int]: ...

    def set_rotation(self, rotation: dict[str, Any] | None, now: datetime) -> None: ...


def _rotation(tx: Tx) -> RotationStore:
    return tx.rotation


def _keys(tx: Tx) -> KeyStore:
    return tx.keys


@dataclass
class _Pass:
    """Progress of one re-encryption pass towards `target` (a term)."""

    target: int
    total: int
    secrets: int
    done: int = 0
    failed: int = 0
    cursor: int = 0


class Reencryption:
    """Moves every version to a target term, resumably (used by `Rotation`)."""

    def __init__(self, state: VaultState) -> None:
        self._state = state

    def run(self, target: int, actor: Actor, progress: Progress | None) -> RotationResult:
        """Re-encrypt everything below `target`, then finish the rotation.

        Raises:
            IntegrityError: some versions fail their integrity check (they keep their term).
            Conflict: versions kept appearing under old terms (resume later).
            StorageUnavailable: a transaction could not be committed (resume later).
        """
        return self._reencrypt_all(target, actor, progress)

    def _reencrypt_all(
        self,
        target: int,
        actor: Actor,
        progress: Progress | None,
    ) -> RotationResult:
        with self._state.storage.read() as tx:
            state = _Pass(
                target,
                _rotation(tx).count_versions_below_term(target),
                _rotation(tx).count_secrets_below_term(target),
            )
        if progress is not None:
            progress(0, state.total)
        term, finished = 0, False
        for _ in range(MAX_PASSES):
            while self._reencrypt_batch(state, actor):
                if progress is not None:
                    progress(state.done, max(state.total, state.done + state.failed))
            term, finished = self._complete(state, actor)
            if finished or state.failed:
                break
            state.cursor = 0  # rows left behind a concurrent change: one more pass
        if progress is not None:
            progress(state.done, state.done + state.failed)
        if state.failed:
            raise errors.IntegrityError(
                f"{state.failed} versions failed their integrity check and keep their old key "
                "term; every other version was re-encrypted and the rotation stays unfinished"
            )
        if not finished:
            exc = errors.Conflict("rotation could not finish; run it again to resume")
            self._state.audit(self._state.entry("rotate_all", actor, success=False, error=exc))
            raise exc
        return RotationResult(term, state.done, state.secrets)

    def _reencrypt_batch(self, state: _Pass, actor: Actor) -> bool:
        """Re-encrypt the next batch in its own transaction; False when none is left."""

        self._state.touch()  # a long rotation is activity: auto-lock must not cut it short

        def run(tx: Tx) -> tuple[tuple[int, int, int], Entries]:
            self._state.require_unlocked()
            rows = _rotation(tx).versions_below_term_after(
                state.target, state.cursor, self._state.config.rotation_batch
            )
            bad: list[NewAudit] = []
            rewritten: list[tuple[int, str, int]] = []
            for row_id, stored, path in rows:
                assert stored.value is not None  # noqa: S101 - the query skips destroyed values
                try:
                    plain = self._state.decrypt(
                        tx, stored.value, stored.secret_id, path, stored.version
                    )
                except errors.IntegrityError as exc:
                    # Left under its old term (which therefore stays) and reported at the end.
                    bad.append(
                        self._state.entry(
                            "rotate_all", actor, path, stored.secret_id, success=False, error=exc
                        )
                    )
                    continue
                envelope, term = self._state.encrypt(
                    tx, plain, stored.secret_id, path, stored.version
                )
                rewritten.append((row_id, envelope, term))
            _rotation(tx).rewrite_versions(rewritten)
            cursor = rows[-1][0] if rows else state.cursor
            return (cursor, len(rows) - len(bad), len(bad)), bad or None

        def failed(exc: errors.StrongroomError) -> Entries:
            return self._state.entry("rotate_all", actor, success=False, error=exc)

        outcome: tuple[int, int, int] = self._state.submit(run, failed)
        cursor, done, bad = outcome
        more = cursor != state.cursor
        state.cursor, state.done, state.failed = cursor, state.done + done, state.failed + bad
        return more

    def _complete(self, state: _Pass, actor: Actor) -> tuple[int, bool]:
        """Clear the marker and drop terms no row uses, once no version is left behind; return
        the newest term and whether the rotation is finished."""

        def run(tx: Tx) -> tuple[tuple[int, bool], Entries]:
            self._state.require_unlocked()
            keystore, store = _keys(tx), _rotation(tx)
            newest = keystore.max_term()
            if store.count_versions_below_term(state.target) > 0:
                if not state.failed:
                    return (newest, False), None
                return (newest, False), self._state.entry(
                    "rotate_all", actor, success=False, error=errors.IntegrityError()
                )
            keys = keystore.get_keys()
            marker = keys.rotation if keys else None
            # A newer rotation may have superseded ours: its marker stays.
            if marker is not None and int(marker["target_term"]) <= state.target:
                store.set_rotation(None, self._state.clock.now())
            used = store.terms_in_use()
            for row in keystore.terms():
                if row.term < newest and row.term not in used:
                    keystore.delete_term(row.term)
            return (newest, True), self._state.entry("rotate_all", actor)

        def failed(exc: errors.StrongroomError) -> Entries:
            return self._state.entry("rotate_all", actor, success=False, error=exc)

        outcome: tuple[int, bool] = self._state.submit(run, failed)
        return outcome
