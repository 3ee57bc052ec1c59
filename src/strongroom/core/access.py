"""Access control in the core: built-in users, path policies, login throttling, denied requests.

`Access` (the `vault.access` service) holds the operations the server and `vaultctl user|policy`
need; storage: `UserStore` (`tx.users`) and `PolicyStore` (`tx.policies`). They work
while the vault is locked (an administrator must be able to log in to unlock it); their audit
entries are then unchained like every entry written while locked. Passwords are stored only as
Argon2id hashes; a login for an unknown or disabled user costs the same as one for a valid user.
This module never logs or returns a password or a hash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from strongroom import errors
from strongroom.core.password_rules import check_new_password
from strongroom.core.policy import (
    Policy,
    check_policy_name,
    parse_rules,
    rules_from_json,
    rules_to_json,
)
from strongroom.core.roles import canonical_role
from strongroom.core.state import VaultState
from strongroom.core.throttle import LoginLimiter
from strongroom.crypto import dummy_verify, hash_password, verify_password
from strongroom.models import DEFAULT_ACTOR, Actor, iso
from strongroom.storage import NewAudit, PolicyRow, Tx, UserRow

if TYPE_CHECKING:
    from strongroom.core.totp import TOTP

__all__ = [
    "Access",
    "LoginLimiter",
    "PolicyStore",
    "UserDeleteStore",
    "UserInfo",
    "UserStore",
    "UserTokenStore",
    "access_write",
]

_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,128}")
MAX_ROLE = 64

T = TypeVar("T")


class UserStore(Protocol):
    """Built-in users (`tx.users`)."""

    def insert_user(
        self, username: str, password_hash: str, role: str, policies: list[str], now: datetime
    ) -> int: ...

    def user_by_name(self, username: str) -> UserRow | None: ...

    def user_by_id(self, user_id: int) -> UserRow | None: ...

    def list_users(self) -> list[UserRow]: ...

    def update_user(self, user_id: int, **values: Any) -> None: ...


class PolicyStore(Protocol):
    """Path policies (`tx.policies`)."""

    def put_policy(self, name: str, rules: str, now: datetime) -> None: ...

    def get_policies(self, names: list[str]) -> list[PolicyRow]: ...

    def list_policies(self) -> list[PolicyRow]: ...

    def delete_policy(self, name: str) -> bool: ...


class UserTokenStore(Protocol):
    """What a user change needs of recorded tokens (`tx.tokens`): revoke all of a user's."""

    def delete_tokens(self, *, user_id: int | None = None) -> list[str]: ...

    def bump_token_epoch(self) -> int: ...


class UserDeleteStore(Protocol):
    """Removing a built-in user (`tx.users`)."""

    def delete_user(self, user_id: int) -> bool: ...


def _user_tokens(tx: Tx) -> UserTokenStore:
    return tx.tokens


def _revoke_tokens(tx: Tx, user_id: int) -> None:
    """Revoke every recorded token of `user_id` in this transaction (the epoch tells the
    other processes)."""
    if _user_tokens(tx).delete_tokens(user_id=user_id):
        _user_tokens(tx).bump_token_epoch()


def _users(tx: Tx) -> UserStore:
    return tx.users


def _deleter(tx: Tx) -> UserDeleteStore:
    return tx.users


def _policies(tx: Tx) -> PolicyStore:
    return tx.policies


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A built-in user as shown to administrators (no hash)."""

    id: int
    username: str
    role: str
    policies: tuple[str, ...]
    disabled: bool
    created_at: datetime
    totp: bool = False

    def as_dict(self) -> dict[str, object]:
        """The user as JSON-ready values (never a password, hash or TOTP seed)."""
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "policies": list(self.policies),
            "disabled": self.disabled,
            "created_at": iso(self.created_at),
            "totp": self.totp,
        }


def _info(row: UserRow) -> UserInfo:
    return UserInfo(
        row.id,
        row.username,
        row.role,
        tuple(row.policies),
        row.disabled,
        row.created_at,
        row.totp_seed is not None,
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


def access_write(
    state: VaultState, action: str, actor: Actor, path: str | None, fn: Callable[[Tx], T]
) -> T:
    """Run `fn` in the writer's next batch with its audit entry (no unlock needed): a change
    to users, policies or tokens, which work while the vault is locked."""

    def run(tx: Tx) -> tuple[T, NewAudit]:
        return fn(tx), state.entry(action, actor, path)

    return state.submit(run, lambda exc: state.entry(action, actor, path, success=False, error=exc))


class Access:
    """Users, policies and records of refused requests, over `VaultState`."""

    def __init__(
        self,
        state: VaultState,
        *,
        forget_tokens: Callable[[int], None] | None = None,
        totp: TOTP | None = None,
    ) -> None:
        """`forget_tokens(user_id)` drops a user's tokens from this process's token cache
        after a change revoked them (the other processes see the revocation epoch); `totp`
        checks the second factor of users who enabled it."""
        self._state = state
        self._forget = forget_tokens or (lambda _user_id: None)
        self._totp = totp

    def _access_write(
        self, action: str, actor: Actor, path: str | None, fn: Callable[[Tx], T]
    ) -> T:
        return access_write(self._state, action, actor, path, fn)

    # -- users ----------------------------------------------------------------------------
    def create_user(
        self,
        username: str,
        password: str,
        role: str,
        *,
        policies: Sequence[str] = (),
        actor: Actor = DEFAULT_ACTOR,
    ) -> UserInfo:
        """Create a built-in user with an Argon2id password hash.

        Raises:
            InvalidInput: bad username, role, policy name or password (8-1024 characters).
            Conflict: the username is taken.
        """
        _check_user_fields(username, role, policies)
        role = canonical_role(role)  # `admin` is `Admin` (core.roles)
        encoded = hash_password(check_new_password(password))
        now = self._state.clock.now()

        def run(tx: Tx) -> UserInfo:
            new_id = _users(tx).insert_user(username, encoded, role, list(policies), now)
            return UserInfo(new_id, username, role, tuple(policies), False, now)

        return self._access_write("user_create", actor, f"user:{username}", run)

    def list_users(self) -> list[UserInfo]:
        """Every built-in user, by id (no password hashes).

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        with self._state.storage.read() as tx:
            return [_info(r) for r in _users(tx).list_users()]

    def get_user(self, user_id: int) -> UserInfo | None:
        """The built-in user with this id, or None.

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        with self._state.storage.read() as tx:
            row = _users(tx).user_by_id(user_id)
        return _info(row) if row is not None else None

    def set_user_disabled(
        self,
        username: str,
        disabled: bool = True,
        *,
        actor: Actor = DEFAULT_ACTOR,
    ) -> UserInfo:
        """Disable (or re-enable) a built-in user; a disabled user cannot log in, and
        disabling revokes the user's recorded tokens at once.

        Raises:
            UserNotFound: no such user.
        """
        action = "user_disable" if disabled else "user_enable"
        return self._change_user(action, username, actor, disabled=disabled)

    def set_user_role(self, username: str, role: str, *, actor: Actor = DEFAULT_ACTOR) -> UserInfo:
        """Give a user another role; revokes the user's recorded tokens at once.

        Raises:
            UserNotFound: no such user. InvalidInput: a bad role.
        """
        _check_user_fields("x", role, ())
        return self._change_user("user_role", username, actor, role=canonical_role(role))

    def set_user_policies(
        self, username: str, policies: Sequence[str], *, actor: Actor = DEFAULT_ACTOR
    ) -> UserInfo:
        """Replace a user's policy names; revokes the user's recorded tokens at once.

        Raises:
            UserNotFound: no such user. InvalidInput: a bad policy name.
        """
        _check_user_fields("x", "x", policies)
        return self._change_user("user_policies", username, actor, policies=list(policies))

    def reset_password(
        self, username: str, password: str, *, actor: Actor = DEFAULT_ACTOR
    ) -> UserInfo:
        """Set a new password (12+ characters, not a common one); revokes the user's
        recorded tokens at once.

        Raises:
            UserNotFound: no such user. InvalidInput: the password breaks the rule.
        """
        encoded = hash_password(check_new_password(password))
        return self._change_user("user_password", username, actor, password_hash=encoded)

    def delete_user(self, username: str, *, actor: Actor = DEFAULT_ACTOR) -> UserInfo:
        """Delete a user and revoke their recorded tokens; audit rows keep the user's id (ids
        are never reused).

        Raises:
            UserNotFound: no such user.
        """
        return self._change_user("user_delete", username, actor, delete=True)

    def _change_user(
        self, action: str, username: str, actor: Actor, *, delete: bool = False, **values: Any
    ) -> UserInfo:
        def run(tx: Tx) -> UserInfo:
            store = _users(tx)
            row = store.user_by_name(username) if isinstance(username, str) else None
            if row is None:
                raise errors.UserNotFound()
            if delete:
                _deleter(tx).delete_user(row.id)
            else:
                store.update_user(row.id, **values)
            if delete or values.keys() - {"disabled"} or values.get("disabled"):
                _revoke_tokens(tx, row.id)
            shown = {k: v for k, v in values.items() if k != "password_hash"}
            if "policies" in shown:
                shown["policies"] = tuple(shown["policies"])
            return replace(_info(row), **shown)

        info = self._access_write(action, actor, f"user:{username}", run)
        self._forget(info.id)
        return info

    def authenticate(
        self,
        username: str,
        password: str,
        *,
        totp: str | None = None,
        actor: Actor = DEFAULT_ACTOR,
    ) -> UserInfo:
        """Check a built-in user's password (the same work whether or not the user exists),
        then, for a user with TOTP enabled, the code `totp` (`core.totp`).

        Raises:
            AuthenticationFailed: unknown user, wrong password or disabled user (one message).
            SecondFactorFailed: after a right password, a missing, wrong or replayed TOTP
                code (audited).
        """
        row = None
        if isinstance(username, str) and _USERNAME.fullmatch(username):
            with self._state.storage.read() as tx:
                row = _users(tx).user_by_name(username)
        candidate = password if isinstance(password, str) else ""
        if row is None:
            dummy_verify(candidate)
            ok = False
        else:
            ok = verify_password(row.password_hash, candidate) and not row.disabled
        # The entry names the user the login is for (0: unknown), from the caller's address.
        actor = replace(actor, user_id=row.id if row is not None else 0)
        if not ok:
            exc = errors.AuthenticationFailed("invalid username or password")
            self._state.audit(self._state.entry("login", actor, success=False, error=exc))
            raise exc
        assert row is not None  # noqa: S101 - ok implies a row
        if row.totp_seed is None:
            self._state.audit(self._state.entry("login", actor))
            return _info(row)
        try:
            if self._totp is None:
                raise errors.SecondFactorFailed("TOTP is not configured on this server")
            self._totp.check(row, totp, actor)
        except errors.AuthenticationFailed as exc:
            self._state.audit(self._state.entry("login", actor, success=False, error=exc))
            raise
        return _info(row)

    # -- policies -------------------------------------------------------------------------
    def write_policy(
        self,
        name: str,
        rules: str,
        *,
        actor: Actor = DEFAULT_ACTOR,
    ) -> Policy:
        """Create or replace the policy `name` from its text (see `core.policy`).

        Raises:
            InvalidInput: bad name or rules.
        """
        policy = Policy(check_policy_name(name), parse_rules(rules))
        now = self._state.clock.now()
        self._access_write(
            "policy_write",
            actor,
            f"policy:{name}",
            lambda tx: _policies(tx).put_policy(name, rules_to_json(policy.rules), now),
        )
        return policy

    def delete_policy(self, name: str, *, actor: Actor = DEFAULT_ACTOR) -> None:
        """Remove a policy (tokens naming it lose what it granted).

        Raises:
            NotFound: no such policy.
        """
        check_policy_name(name)

        def run(tx: Tx) -> None:
            if not _policies(tx).delete_policy(name):
                raise errors.NotFound("policy not found")

        self._access_write("policy_delete", actor, f"policy:{name}", run)

    def get_policies(self, names: Sequence[str]) -> list[Policy]:
        """The stored policies among `names` (unknown names grant nothing).

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        wanted = [n for n in names if isinstance(n, str)]
        if not wanted:
            return []
        with self._state.storage.read() as tx:
            rows = _policies(tx).get_policies(wanted)
        return [Policy(r.name, rules_from_json(r.rules)) for r in rows]

    def list_policies(self) -> list[Policy]:
        """Every stored policy, by name."""
        with self._state.storage.read() as tx:
            rows = _policies(tx).list_policies()
        return [Policy(r.name, rules_from_json(r.rules)) for r in rows]

    # -- refusals -------------------------------------------------------------------------
    def record_denied(self, action: str, path: str | None, actor: Actor) -> None:
        """Audit a request refused for lack of permission (fail-closed like every entry)."""
        self.record_failure(action, path, actor, errors.PermissionDenied())

    def record_failure(
        self, action: str, path: str | None, actor: Actor, error: errors.StrongroomError
    ) -> None:
        """Audit a request refused before it reached an operation (bad token, rate limit)."""
        self._state.audit(self._state.entry(action[:50], actor, path, success=False, error=error))
