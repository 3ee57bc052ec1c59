"""TOTP second factor of built-in users' password logins (the `vault.totp` service).

Enrolment (`enable`) makes a seed, seals it under the server's TOTP key (`crypto.SeedBox`; the
vault's data keys cannot be used: logins work while the vault is locked) and returns the seed
and its `otpauth://` URI once; `disable` removes it. `check` is called by `Access.authenticate`
after the password matched: a code of the current 30-second step or its neighbours, compared
in constant time, and never accepted twice (the last accepted step is claimed with one
conditional UPDATE, so two workers or instances cannot both accept it). This module never logs
or returns a code, and returns a seed only from `enable`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from strongroom import errors
from strongroom.core.access import access_write
from strongroom.core.state import VaultState
from strongroom.core.writer import Entries
from strongroom.crypto import SeedBox, new_seed, otpauth_uri
from strongroom.models import DEFAULT_ACTOR, Actor
from strongroom.storage import Tx, UserRow

__all__ = ["TOTP", "TOTPEnrolment", "TOTPStore"]


class TOTPStore(Protocol):
    """What TOTP needs of built-in users (`tx.users`)."""

    def user_by_name(self, username: str) -> UserRow | None: ...

    def update_user(self, user_id: int, **values: object) -> None: ...

    def claim_totp_step(self, user_id: int, step: int) -> bool: ...


def _store(tx: Tx) -> TOTPStore:
    return tx.users


@dataclass(frozen=True, slots=True)
class TOTPEnrolment:
    """A new second factor, shown once: the base32 seed and the URI an authenticator scans."""

    username: str
    secret: str
    uri: str

    def __repr__(self) -> str:
        return f"TOTPEnrolment(username={self.username!r}, secret=<hidden>)"


class TOTP:
    """Enable, disable and check users' TOTP second factor."""

    def __init__(self, state: VaultState, key: str | None) -> None:
        """`key`: the server's TOTP key (None: enrolment refused, TOTP users cannot log in).

        Raises:
            InvalidInput: the key is shorter than 32 bytes.
        """
        self._state = state
        self._box = SeedBox(key) if key is not None else None

    def _sealer(self) -> SeedBox:
        if self._box is None:
            raise errors.InvalidInput(
                "TOTP needs the server's TOTP key: set VAULT_TOTP_KEY_FILE (32+ random bytes, "
                "the same file on every server)"
            )
        return self._box

    def enable(self, username: str, *, actor: Actor = DEFAULT_ACTOR) -> TOTPEnrolment:
        """Give a user a new TOTP seed (replacing any earlier one); audited as `user_totp_enable`.

        Raises:
            UserNotFound: no such user. InvalidInput: no TOTP key is configured.
        """
        box, seed = self._sealer(), new_seed()

        def run(tx: Tx) -> None:
            row = _find(tx, username)
            _store(tx).update_user(row.id, totp_seed=box.seal(seed, row.id), totp_last_step=None)

        self._write("user_totp_enable", username, actor, run)
        return TOTPEnrolment(username, seed, otpauth_uri(seed, username))

    def disable(self, username: str, *, actor: Actor = DEFAULT_ACTOR) -> None:
        """Remove a user's TOTP seed (password alone logs in again); audited.

        Raises:
            UserNotFound: no such user. InvalidInput: the user has no TOTP.
        """

        def run(tx: Tx) -> None:
            row = _find(tx, username)
            if row.totp_seed is None:
                raise errors.InvalidInput("TOTP is not enabled for this user")
            _store(tx).update_user(row.id, totp_seed=None, totp_last_step=None)

        self._write("user_totp_disable", username, actor, run)

    def check(self, row: UserRow, code: str | None, actor: Actor) -> None:
        """Accept `code` for `row` (a user with TOTP whose password matched) or raise. A
        success is audited as `login` in the transaction claiming the code's step.

        Raises:
            SecondFactorFailed: the code is missing, wrong or already used; or the server
                has no TOTP key, or another one, to open the seed with (fail closed).
        """
        seed = row.totp_seed
        if not isinstance(code, str) or not code.strip():
            raise errors.SecondFactorFailed("a TOTP code is required for this user")
        if self._box is None or seed is None:
            raise errors.SecondFactorFailed("TOTP is not configured on this server")
        try:
            step = self._box.matching_step(seed, row.id, code, self._state.clock.now())
        except errors.IntegrityError as exc:  # another TOTP key, or an altered row
            raise errors.SecondFactorFailed("this user's TOTP seed does not open") from exc
        if step is None:
            raise errors.SecondFactorFailed("invalid TOTP code")

        def run(tx: Tx) -> tuple[bool, Entries]:
            claimed = _store(tx).claim_totp_step(row.id, step)
            return claimed, self._state.entry("login", actor) if claimed else None

        if not self._state.submit(run, lambda exc: None):
            raise errors.SecondFactorFailed("TOTP code already used")

    def _write(self, action: str, username: str, actor: Actor, fn: Callable[[Tx], None]) -> None:
        access_write(self._state, action, actor, f"user:{username}", fn)


def _find(tx: Tx, username: str) -> UserRow:
    row = _store(tx).user_by_name(username) if isinstance(username, str) else None
    if row is None:
        raise errors.UserNotFound()
    return row
