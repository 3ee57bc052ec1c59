"""Access control in the core: built-in users, path policies, login throttling, denied requests.

`AccessMixin` adds to `Vault` the operations the server and `vaultctl user|policy` need. They work
while the vault is locked (an administrator must be able to log in to unlock it); their audit
entries are then unchained like every entry written while locked. Passwords are stored only as
Argon2id hashes; a login for an unknown or disabled user costs the same as one for a valid user.
This module never logs or returns a password or a hash.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from strongroom import errors
from strongroom.clock import Clock
from strongroom.core.policy import (
    Policy,
    check_policy_name,
    parse_rules,
    rules_from_json,
    rules_to_json,
)
from strongroom.core.roles import canonical_role
from strongroom.core.vault import Actor, VaultBase
from strongroom.crypto import dummy_verify, hash_password, verify_password
from strongroom.storage import NewAudit, Tx, UserRow

__all__ = ["AccessMixin", "LoginLimiter", "UserInfo"]

_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,128}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_ROLE = 64
BACKOFF_BASE_SECONDS = 5.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A built-in user as shown to administrators (no hash)."""

    id: int
    username: str
    role: str
    policies: tuple[str, ...]
    disabled: bool
    created_at: datetime


def _info(row: UserRow) -> UserInfo:
    return UserInfo(
        row.id, row.username, row.role, tuple(row.policies), row.disabled, row.created_at
    )


def _check_user_fields(username: object, role: object, policies: Sequence[str]) -> None:
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise errors.InvalidInput(
            "invalid username: use 1-128 letters, digits, '.', '_', '@' or '-'"
        )
    if not isinstance(role, str) or not role.strip() or len(role) > MAX_ROLE:
        raise errors.InvalidInput(
            f"role must be a non-empty string of at most {MAX_ROLE} characters"
        )
    for name in policies:
        check_policy_name(name)


def _check_password(password: object) -> str:
    if not isinstance(password, str) or not (MIN_PASSWORD <= len(password) <= MAX_PASSWORD):
        raise errors.InvalidInput(
            f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"
        )
    return password


class AccessMixin(VaultBase):
    """Users, policies and denial records over the audited plumbing of `VaultBase`."""

    def _access_write(
        self, action: str, actor: Actor, path: str | None, fn: Callable[[Tx], T]
    ) -> T:
        """Run `fn` in the writer's next batch with its audit entry (no unlock needed)."""

        def run(tx: Tx) -> tuple[T, NewAudit]:
            return fn(tx), self._entry(action, actor, path)

        result: T = self._writer.submit(
            run, lambda exc: self._entry(action, actor, path, success=False, error=exc)
        )
        return result

    # -- users ----------------------------------------------------------------------------
    def create_user(
        self,
        username: str,
        password: str,
        role: str,
        *,
        policies: Sequence[str] = (),
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> UserInfo:
        """Create a built-in user with an Argon2id password hash.

        Raises:
            InvalidInput: bad username, role, policy name or password (8-1024 characters).
            Conflict: the username is taken.
        """
        _check_user_fields(username, role, policies)
        role = canonical_role(role)  # `admin` is `Admin` (core.roles)
        encoded = hash_password(_check_password(password))
        now = self._clock.now()

        def run(tx: Tx) -> UserInfo:
            new_id = tx.insert_user(username, encoded, role, list(policies), now)
            return UserInfo(new_id, username, role, tuple(policies), False, now)

        return self._access_write(
            "user_create", Actor(user_id, ip, request_id), f"user:{username}", run
        )

    def list_users(self) -> list[UserInfo]:
        """Every built-in user, by id (no password hashes).

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        with self._storage.read() as tx:
            return [_info(r) for r in tx.list_users()]

    def get_user(self, user_id: int) -> UserInfo | None:
        """The built-in user with this id, or None.

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        with self._storage.read() as tx:
            row = tx.user_by_id(user_id)
        return _info(row) if row is not None else None

    def set_user_disabled(
        self,
        username: str,
        disabled: bool = True,
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> UserInfo:
        """Disable (or re-enable) a built-in user; a disabled user cannot log in.

        Raises:
            UserNotFound: no such user.
        """

        def run(tx: Tx) -> UserInfo:
            row = tx.user_by_name(username) if isinstance(username, str) else None
            if row is None:
                raise errors.UserNotFound()
            tx.update_user(row.id, disabled=disabled)
            return _info(row)

        action = "user_disable" if disabled else "user_enable"
        return self._access_write(action, Actor(user_id, ip, request_id), f"user:{username}", run)

    def authenticate(
        self, username: str, password: str, *, ip: str = "cli", request_id: str | None = None
    ) -> UserInfo:
        """Check a built-in user's password (the same work whether or not the user exists).

        Raises:
            AuthenticationFailed: unknown user, wrong password or disabled user (one message).
        """
        row = None
        if isinstance(username, str) and _USERNAME.fullmatch(username):
            with self._storage.read() as tx:
                row = tx.user_by_name(username)
        candidate = password if isinstance(password, str) else ""
        if row is None:
            dummy_verify(candidate)
            ok = False
        else:
            ok = verify_password(row.password_hash, candidate) and not row.disabled
        user = row.id if row is not None else 0
        actor = Actor(user, ip, request_id)
        if not ok:
            exc = errors.AuthenticationFailed("invalid username or password")
            self._audit(self._entry("login", actor, success=False, error=exc))
            raise exc
        assert row is not None  # noqa: S101 - ok implies a row
        self._audit(self._entry("login", actor))
        return _info(row)

    # -- policies -------------------------------------------------------------------------
    def write_policy(
        self,
        name: str,
        rules: str,
        *,
        user_id: int = 1,
        ip: str = "cli",
        request_id: str | None = None,
    ) -> Policy:
        """Create or replace the policy `name` from its text (see `core.policy`).

        Raises:
            InvalidInput: bad name or rules.
        """
        policy = Policy(check_policy_name(name), parse_rules(rules))
        now = self._clock.now()
        self._access_write(
            "policy_write",
            Actor(user_id, ip, request_id),
            f"policy:{name}",
            lambda tx: tx.put_policy(name, rules_to_json(policy.rules), now),
        )
        return policy

    def delete_policy(
        self, name: str, *, user_id: int = 1, ip: str = "cli", request_id: str | None = None
    ) -> None:
        """Remove a policy (tokens naming it lose what it granted).

        Raises:
            NotFound: no such policy.
        """
        check_policy_name(name)

        def run(tx: Tx) -> None:
            if not tx.delete_policy(name):
                raise errors.NotFound("policy not found")

        self._access_write("policy_delete", Actor(user_id, ip, request_id), f"policy:{name}", run)

    def get_policies(self, names: Sequence[str]) -> list[Policy]:
        """The stored policies among `names` (unknown names grant nothing).

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        wanted = [n for n in names if isinstance(n, str)]
        if not wanted:
            return []
        with self._storage.read() as tx:
            rows = tx.get_policies(wanted)
        return [Policy(r.name, rules_from_json(r.rules)) for r in rows]

    def list_policies(self) -> list[Policy]:
        """Every stored policy, by name."""
        with self._storage.read() as tx:
            rows = tx.list_policies()
        return [Policy(r.name, rules_from_json(r.rules)) for r in rows]

    # -- server support -------------------------------------------------------------------
    def record_denied(
        self, action: str, path: str | None, user_id: int, ip: str, request_id: str | None = None
    ) -> None:
        """Audit a request refused for lack of permission (fail-closed like every entry)."""
        self._audit(
            self._entry(
                action[:50],
                Actor(user_id, ip, request_id),
                path,
                success=False,
                error=errors.PermissionDenied(),
            )
        )

    def record_failure(
        self,
        action: str,
        path: str | None,
        user_id: int,
        ip: str,
        error: errors.StrongroomError,
        request_id: str | None = None,
    ) -> None:
        """Audit a request refused before it reached an operation (bad token, rate limit)."""
        self._audit(
            self._entry(
                action[:50], Actor(user_id, ip, request_id), path, success=False, error=error
            )
        )

    def lock_idle(self) -> None:
        """Drop the keys because the whole server was idle (audited as `auto_lock`)."""
        if self._barrier.is_unlocked:
            try:
                self._audit(self._entry("auto_lock", Actor(0, "system")))
            finally:
                self._drop_keys()

    def secrets_nearing_expiry(self, within: timedelta) -> int:
        """How many live secrets expire within `within` (metadata only: no key needed)."""
        now = self._clock.now()
        with self._storage.read() as tx:
            return tx.count_expiring(now, now + within)


class LoginLimiter:
    """Failed-login throttling per username and per client IP, with exponential back-off.

    From the `free`-th failure for a key on, each failure doubles the wait (5 s, 10 s, 20 s, ...
    up to 15 min). A success clears the username's counter. In memory, per process.
    """

    def __init__(self, clock: Clock, *, free_per_user: int = 5, free_per_ip: int = 20) -> None:
        self._clock = clock
        self._free = {"user": free_per_user, "ip": free_per_ip}
        self._state: dict[tuple[str, str], tuple[int, datetime | None]] = {}
        self._lock = threading.Lock()

    def check(self, username: str, ip: str) -> None:
        """Raise if either key is in back-off.

        Raises:
            TooManyAttempts: with `retry_after` seconds.
        """
        now = self._clock.now()
        with self._lock:
            waits = [
                (until - now).total_seconds()
                for key in (("user", username[:128]), ("ip", ip))
                for _, until in [self._state.get(key, (0, None))]
                if until is not None and until > now
            ]
        if waits:
            wait = max(waits)
            raise errors.TooManyAttempts(
                f"too many failed logins; retry in {wait:.0f}s", retry_after=wait
            )

    def failed(self, username: str, ip: str) -> None:
        """Count a failure against both keys."""
        now = self._clock.now()
        with self._lock:
            if len(self._state) > 100_000:
                self._state.clear()
            for key in (("user", username[:128]), ("ip", ip)):
                count = self._state.get(key, (0, None))[0] + 1
                over = count - self._free[key[0]]
                delay = min(BACKOFF_BASE_SECONDS * 2.0**over, 900.0)
                until = now + timedelta(seconds=delay) if over >= 0 else None
                self._state[key] = (count, until)

    def succeeded(self, username: str) -> None:
        """Clear the username's failures."""
        with self._lock:
            self._state.pop(("user", username[:128]), None)
