"""Key rotation: master-key rotation (re-wrap + new term + batched re-encryption, resumable) and
single-secret rotation.

Master-key rotation has one atomic step, a single write transaction that stores the root key
re-wrapped under the new master key (fresh salt), a new data-key term and a rotation marker
(`vault_keys.rotation = {"target_term": n, ...}`). A crash before it commits leaves the old key
valid; after it, the new one. Re-encryption then moves every version still under an older term to
the newest term in bounded batches, each its own transaction through the group-commit writer, so
reads and writes keep working meanwhile, in this process and in others. Old terms stay in the
keyring until no row uses them; the marker is cleared and unused terms deleted at the end.
Re-running `rotate_all` with the same new key, or `resume`, finishes an interrupted one;
`is_unfinished` says whether there is one (`vaultctl rotate --resume` asks it first).

`Rotation` (the `vault.rotation` service) uses `RotationStore` (`tx.rotation`), the key store
(`tx.keys`) and the version store (`tx.secrets`). A new term comes from `VaultState.terms`
(`start`, then `install_on_commit`), the one place that installs terms.

This module must never log or put into an error a master key or a secret value.
"""

from __future__ import annotations

from strongroom import errors
from strongroom.api import Progress, RotationResult
from strongroom.core.keyrules import MIN_MASTER_KEY_LENGTH, check_new_master_key
from strongroom.core.reencrypt import Reencryption, RotationStore
from strongroom.core.state import VaultState
from strongroom.core.terms import KeyStore
from strongroom.core.versions import live_secret, versions_of
from strongroom.core.writer import Entries
from strongroom.crypto import SealedRoot
from strongroom.models import DEFAULT_ACTOR, Actor, iso, validate_path
from strongroom.storage import KeysRow, Tx

__all__ = ["MIN_MASTER_KEY_LENGTH", "Rotation", "RotationStore"]

VAULT_WIDE = "master-key rotation is vault-wide; use rotate --all"


def _keys(tx: Tx) -> KeyStore:
    return tx.keys


class Rotation:
    """Master-key and single-secret rotation over `VaultState`."""

    def __init__(self, state: VaultState) -> None:
        self._state = state
        self._reencryption = Reencryption(state)

    # -- public operations ------------------------------------------------------------------
    def rotate_all(
        self,
        new_master_key: str,
        *,
        actor: Actor = DEFAULT_ACTOR,
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
        try:
            self._state.touch()
            self._state.require_unlocked()
            check_new_master_key(new_master_key, "new master key")
            with self._state.argon_slot():
                keys = self._keys_row()
                current = SealedRoot(keys.vault_id, keys.salt, keys.kdf_params, keys.wrapped_root)
                same = self._state.barrier.matches(new_master_key, current)
                if same and keys.rotation is None:
                    raise errors.InvalidInput(
                        "new master key must differ from the current master key"
                    )
                sealed = (
                    None
                    if same
                    else self._state.barrier.rewrap(new_master_key, self._state.kdf_params())
                )
        except errors.StrongroomError as exc:
            self._state.audit(self._state.entry("rotate_all", actor, success=False, error=exc))
            raise
        if sealed is None:
            return self._resume(actor, progress)
        target = self._switch_master_key(keys, sealed, actor)
        return self._reencryption.run(target, actor, progress)

    def is_unfinished(self) -> bool:
        """Whether a master-key rotation was interrupted and `resume` would finish it.

        Raises:
            VaultLocked: the vault is not initialised.
        """
        return self._keys_row().rotation is not None

    def resume(
        self, *, actor: Actor = DEFAULT_ACTOR, progress: Progress | None = None
    ) -> RotationResult:
        """Finish an interrupted master-key rotation (no-op result when none is unfinished).

        Unlock first with whichever key the atomic step left valid (the new one once it
        committed).

        Raises:
            VaultLocked: the vault is locked.
            IntegrityError: some versions fail their integrity check (see `rotate_all`).
            StorageUnavailable: a transaction could not be committed.
        """
        try:
            self._state.touch()
            self._state.require_unlocked()
        except errors.StrongroomError as exc:
            self._state.audit(self._state.entry("rotate_all", actor, success=False, error=exc))
            raise
        return self._resume(actor, progress)

    def rotate_secret(
        self,
        path: str,
        *,
        actor: Actor = DEFAULT_ACTOR,
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
        if new_master_key is not None:
            exc = errors.InvalidInput(VAULT_WIDE)
            self._state.audit(
                self._state.entry(
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
            row = live_secret(self._state, tx, path)
            count = 0
            store = versions_of(tx)
            for stored in store.versions(row.id):
                if stored.value is None:
                    continue
                plain = self._state.decrypt(tx, stored.value, row.id, row.path, stored.version)
                envelope, term = self._state.encrypt(tx, plain, row.id, row.path, stored.version)
                store.update_version(row.id, stored.version, value=envelope, key_term=term)
                count += 1
            return RotationResult(self._state.barrier.current_term, count, 1), row.id

        return self._state.write("rotate", actor, path, run)

    # -- the atomic step --------------------------------------------------------------------
    def _keys_row(self) -> KeysRow:
        with self._state.storage.read() as tx:
            keys = _keys(tx).get_keys()
        if keys is None:
            raise errors.VaultLocked()
        return keys

    def _switch_master_key(self, seen: KeysRow, sealed: SealedRoot, actor: Actor) -> int:
        """One transaction: re-wrapped root key + new term + rotation marker; return the term."""

        def run(tx: Tx) -> tuple[int, Entries]:
            self._state.require_unlocked()
            keys = _keys(tx).get_keys()
            if keys is None or (keys.salt, keys.wrapped_root) != (seen.salt, seen.wrapped_root):
                raise errors.Conflict("the master key was changed meanwhile; retry")
            # A term `before_batch` started in this very transaction is reused.
            fresh = self._state.terms.start(_keys(tx))
            marker = {
                "target_term": fresh.term,
                "started_at": iso(self._state.clock.now()),
                "user_id": actor.user_id,
            }
            _keys(tx).put_keys(
                KeysRow(keys.vault_id, sealed.salt, sealed.kdf_params, sealed.wrapped_root, marker),
                self._state.clock.now(),
            )
            # Last, once nothing here can fail: the term is installed when this commits.
            self._state.terms.install_on_commit(fresh)
            return fresh.term, self._state.entry("rotate_all", actor)

        def failed(exc: errors.StrongroomError) -> Entries:
            return self._state.entry("rotate_all", actor, success=False, error=exc)

        target: int = self._state.submit(run, failed)
        return target

    # -- re-encryption ----------------------------------------------------------------------
    def _resume(self, actor: Actor, progress: Progress | None) -> RotationResult:
        keys = self._keys_row()
        if keys.rotation is None:
            return RotationResult(self._current_term(), 0, 0)
        target = int(keys.rotation["target_term"])
        self._state.audit(self._state.entry("rotate_all", actor))
        return self._reencryption.run(target, actor, progress)

    def _current_term(self) -> int:
        with self._state.storage.read() as tx:
            return max(_keys(tx).max_term(), self._state.barrier.current_term)
