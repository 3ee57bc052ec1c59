"""Key rotation: master-key rotation (re-wrap + new term + batched re-encryption, resumable) and
single-secret rotation.

Master-key rotation has one atomic step, a single write transaction that stores the root key
re-wrapped under the new master key (fresh salt), a new data-key term and a rotation marker
(`vault_keys.rotation = {"target_term": n, ...}`). A crash before it commits leaves the old key
valid; after it, the new one. Re-encryption then moves every version still under an older term to
the newest term in bounded batches, each its own transaction through the group-commit writer, so
reads and writes keep working meanwhile, in this process and in others. Old terms stay in the
keyring until no row uses them; the marker is cleared and unused terms deleted at the end.
Re-running `rotate_all` with the same new key, or `resume_rotation`, finishes an interrupted one.

This module must never log or put into an error a master key or a secret value.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom import errors
from strongroom.api import Progress, RotationResult
from strongroom.core.keyrules import MIN_MASTER_KEY_LENGTH, check_new_master_key
from strongroom.core.secrets import SecretsMixin
from strongroom.core.vault import Actor
from strongroom.core.writer import Entries
from strongroom.crypto import SealedRoot, SealedTerm
from strongroom.models import iso, validate_path
from strongroom.storage import KeysRow, NewAudit, Tx

__all__ = ["MIN_MASTER_KEY_LENGTH", "RotationMixin"]

#: Re-encryption passes before giving up (a pass after the first only runs if rows were left).
MAX_PASSES = 3
VAULT_WIDE = "master-key rotation is vault-wide; use rotate --all"


@dataclass
class _Pass:
    """Progress of one re-encryption pass towards `target` (a term)."""

    target: int
    total: int
    secrets: int
    done: int = 0
    failed: int = 0
    cursor: int = 0


class RotationMixin(SecretsMixin):
    """Master-key and single-secret rotation over the audited plumbing of `VaultBase`."""

    # -- public operations ------------------------------------------------------------------
    def rotate_all(
        self,
        new_master_key: str,
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
        progress: Progress | None = None,
    ) -> RotationResult:
        """Re-wrap the root key under `new_master_key`, start a new data-key term and
        re-encrypt every version of every secret under it.

        From the moment the atomic step commits, only `new_master_key` unlocks the vault. If a
        previous rotation was interrupted and `new_master_key` is already the current key, this
        resumes it (so re-running the same command after a crash finishes the job).

        Raises:
            InvalidInput: the key is not a string of at least 16 characters, is of low estimated
                strength (`core.keyrules`), or it equals the current master key and no rotation
                is unfinished.
            VaultLocked: the vault is locked.
            IntegrityError: some versions fail their integrity check; they keep their old term
                and the rotation stays unfinished (everything else was re-encrypted).
            Conflict: the master key was changed by another process meanwhile, or versions
                kept appearing under old terms (resume later).
            StorageUnavailable: a transaction could not be committed (resume later).
        """
        actor = Actor(user_id, ip, request_id)
        try:
            self._touch()
            self._require_unlocked()
            check_new_master_key(new_master_key, "new master key")
            with self._argon_slots:
                keys = self._keys_row()
                current = SealedRoot(keys.vault_id, keys.salt, keys.kdf_params, keys.wrapped_root)
                same = self._barrier.matches(new_master_key, current)
                if same and keys.rotation is None:
                    raise errors.InvalidInput(
                        "new master key must differ from the current master key"
                    )
                sealed = None if same else self._barrier.rewrap(new_master_key, self._kdf_params())
        except errors.StrongroomError as exc:
            self._audit(self._entry("rotate_all", actor, success=False, error=exc))
            raise
        if sealed is None:
            return self._resume(actor, progress)
        target = self._switch_master_key(keys, sealed, actor)
        return self._reencrypt_all(target, actor, progress)

    def resume_rotation(
        self,
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
        progress: Progress | None = None,
    ) -> RotationResult:
        """Finish an interrupted master-key rotation (no-op result when none is unfinished).

        Unlock first with whichever key the atomic step left valid (the new one once it
        committed).

        Raises:
            VaultLocked: the vault is locked.
            IntegrityError: some versions fail their integrity check (see `rotate_all`).
            StorageUnavailable: a transaction could not be committed.
        """
        actor = Actor(user_id, ip, request_id)
        try:
            self._touch()
            self._require_unlocked()
        except errors.StrongroomError as exc:
            self._audit(self._entry("rotate_all", actor, success=False, error=exc))
            raise
        return self._resume(actor, progress)

    def rotate_secret(
        self,
        path: str,
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
        new_master_key: str | None = None,
    ) -> RotationResult:
        """Re-encrypt every stored version of one secret under the newest data-key term.

        `new_master_key` exists only to refuse the design document's single-path master-key
        rotation: one secret under another master key would be unreadable.

        Raises:
            InvalidInput: bad path, or `new_master_key` given (rotation is vault-wide).
            SecretNotFound / SecretExpired: no live secret at `path`.
            IntegrityError: a stored version fails its integrity check (nothing changes).
            VaultLocked: the vault is locked.
        """
        actor = Actor(user_id, ip, request_id)
        if new_master_key is not None:
            exc = errors.InvalidInput(VAULT_WIDE)
            self._audit(
                self._entry(
                    "rotate",
                    actor,
                    path if isinstance(path, str) else None,
                    success=False,
                    error=exc,
                )
            )
            raise exc
        validate_path(path)

        def run(tx: Tx) -> tuple[RotationResult, int]:
            row = self._live(tx, path)
            count = 0
            for stored in tx.versions(row.id):
                if stored.value is None:
                    continue
                plain = self._decrypt(tx, stored.value, row.id, row.path, stored.version)
                envelope, term = self._encrypt(tx, plain, row.id, row.path, stored.version)
                tx.update_version(row.id, stored.version, value=envelope, key_term=term)
                count += 1
            return RotationResult(self._barrier.current_term, count, 1), row.id

        return self._write_op("rotate", actor, path, run)

    # -- the atomic step --------------------------------------------------------------------
    def _keys_row(self) -> KeysRow:
        with self._storage.read() as tx:
            keys = tx.get_keys()
        if keys is None:
            raise errors.VaultLocked()
        return keys

    def _switch_master_key(self, seen: KeysRow, sealed: SealedRoot, actor: Actor) -> int:
        """One transaction: re-wrapped root key + new term + rotation marker; return the term."""

        def run(tx: Tx) -> tuple[int, Entries]:
            self._require_unlocked()
            keys = tx.get_keys()
            if keys is None or (keys.salt, keys.wrapped_root) != (seen.salt, seen.wrapped_root):
                raise errors.Conflict("the master key was changed meanwhile; retry")
            # `_before_batch` may have started a term in this very transaction: reuse it.
            fresh: SealedTerm | None = self._pending_term
            if fresh is None or fresh.term != tx.max_term():
                fresh = self._new_term(tx, tx.max_term() + 1)
            marker = {
                "target_term": fresh.term,
                "started_at": iso(self._clock.now()),
                "user_id": actor.user_id,
            }
            tx.put_keys(
                KeysRow(keys.vault_id, sealed.salt, sealed.kdf_params, sealed.wrapped_root, marker),
                self._clock.now(),
            )
            # Last, once nothing here can fail: `_after_commit` installs the term.
            self._pending_term = fresh
            return fresh.term, self._entry("rotate_all", actor)

        def failed(exc: errors.StrongroomError) -> Entries:
            return self._entry("rotate_all", actor, success=False, error=exc)

        target: int = self._writer.submit(run, failed)
        return target

    # -- re-encryption ----------------------------------------------------------------------
    def _resume(self, actor: Actor, progress: Progress | None) -> RotationResult:
        keys = self._keys_row()
        if keys.rotation is None:
            return RotationResult(self._current_term(), 0, 0)
        target = int(keys.rotation["target_term"])
        self._audit(self._entry("rotate_all", actor))
        return self._reencrypt_all(target, actor, progress)

    def _current_term(self) -> int:
        with self._storage.read() as tx:
            return max(tx.max_term(), self._barrier.current_term)

    def _reencrypt_all(
        self,
        target: int,
        actor: Actor,
        progress: Progress | None,
    ) -> RotationResult:
        with self._storage.read() as tx:
            state = _Pass(
                target, tx.count_versions_below_term(target), tx.count_secrets_below_term(target)
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
            self._audit(self._entry("rotate_all", actor, success=False, error=exc))
            raise exc
        return RotationResult(term, state.done, state.secrets)

    def _reencrypt_batch(self, state: _Pass, actor: Actor) -> bool:
        """Re-encrypt the next batch in its own transaction; False when none is left."""

        self._touch()  # a long rotation is activity: auto-lock must not cut it short

        def run(tx: Tx) -> tuple[tuple[int, int, int], Entries]:
            self._require_unlocked()
            rows = tx.versions_below_term_after(
                state.target, state.cursor, self._config.rotation_batch
            )
            bad: list[NewAudit] = []
            rewritten: list[tuple[int, str, int]] = []
            for row_id, stored, path in rows:
                assert stored.value is not None  # noqa: S101 - the query skips destroyed values
                try:
                    plain = self._decrypt(tx, stored.value, stored.secret_id, path, stored.version)
                except errors.IntegrityError as exc:
                    # Left under its old term (which therefore stays) and reported at the end.
                    bad.append(
                        self._entry(
                            "rotate_all", actor, path, stored.secret_id, success=False, error=exc
                        )
                    )
                    continue
                envelope, term = self._encrypt(tx, plain, stored.secret_id, path, stored.version)
                rewritten.append((row_id, envelope, term))
            tx.rewrite_versions(rewritten)
            cursor = rows[-1][0] if rows else state.cursor
            return (cursor, len(rows) - len(bad), len(bad)), bad or None

        def failed(exc: errors.StrongroomError) -> Entries:
            return self._entry("rotate_all", actor, success=False, error=exc)

        outcome: tuple[int, int, int] = self._writer.submit(run, failed)
        cursor, done, bad = outcome
        more = cursor != state.cursor
        state.cursor, state.done, state.failed = cursor, state.done + done, state.failed + bad
        return more

    def _complete(self, state: _Pass, actor: Actor) -> tuple[int, bool]:
        """Clear the marker and drop terms no row uses, once no version is left behind; return
        the newest term and whether the rotation is finished."""

        def run(tx: Tx) -> tuple[tuple[int, bool], Entries]:
            self._require_unlocked()
            newest = tx.max_term()
            if tx.count_versions_below_term(state.target) > 0:
                if not state.failed:
                    return (newest, False), None
                return (newest, False), self._entry(
                    "rotate_all", actor, success=False, error=errors.IntegrityError()
                )
            keys = tx.get_keys()
            marker = keys.rotation if keys else None
            # A newer rotation may have superseded ours: its marker stays.
            if marker is not None and int(marker["target_term"]) <= state.target:
                tx.set_rotation(None, self._clock.now())
            used = tx.terms_in_use()
            for row in tx.terms():
                if row.term < newest and row.term not in used:
                    tx.delete_term(row.term)
            return (newest, True), self._entry("rotate_all", actor)

        def failed(exc: errors.StrongroomError) -> Entries:
            return self._entry("rotate_all", actor, success=False, error=exc)

        outcome: tuple[int, bool] = self._writer.submit(run, failed)
        return outcome
