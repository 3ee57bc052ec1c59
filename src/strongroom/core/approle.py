"""`AppRoles` (the `vault.approle` service): Vault's AppRole machine login over recorded tokens.

A role has policies, a token TTL and max TTL, a secret-id TTL and use limit, and CIDR blocks a
login must come from. Its `role_id` is generated once and stays; its `secret_id`s are generated
(shown once), stored only as SHA-256, listed and destroyed by accessor. A login exchanges
(role_id, secret_id) for a recorded token (kind `approle`, role `token`, exactly the role's
policies) whose subject is `MACHINE_BASE + the role's id`, so the audit names the role and ids
never collide with built-in users. A failed login is one opaque `AuthenticationFailed`, audited;
a used-up secret id is deleted. This module never logs, returns or stores a secret id after
`new_secret_id` has handed it out.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from strongroom import errors
from strongroom.core.access import access_write
from strongroom.core.policy import check_policy_name
from strongroom.core.state import VaultState
from strongroom.core.token_records import TOKEN_ROLE, IssuedToken, Tokens
from strongroom.models import DEFAULT_ACTOR, Actor, iso, iso_or_none
from strongroom.storage import AppRoleRow, AppSecretRow, Tx

__all__ = [
    "MACHINE_BASE",
    "AppRoleStore",
    "AppRoles",
    "AppSecretDelete",
    "NewSecretID",
    "RoleSettings",
    "role_dict",
    "secret_dict",
]

#: Token subjects of AppRole logins start here (built-in users' ids stay far below).
MACHINE_BASE = 1_000_000_000_000
_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_MAX_TTL = 3650 * 86400


class AppRoleStore(Protocol):
    """AppRole roles and secret ids (`tx.approles`)."""

    def put_role(self, row: AppRoleRow) -> None: ...

    def role(self, *, name: str | None = None, role_id: str | None = None) -> AppRoleRow | None: ...

    def list_roles(self) -> list[str]: ...

    def delete_role(self, name: str) -> bool: ...

    def insert_secret(self, row: AppSecretRow) -> None: ...

    def secret(self, secret_hash: str) -> AppSecretRow | None: ...

    def list_secrets(self, role_name: str) -> list[AppSecretRow]: ...

    def use_secret(self, accessor: str, uses_left: int | None) -> None: ...


class AppSecretDelete(Protocol):
    """Destroying one secret id (`tx.approles`)."""

    def delete_secret(self, role_name: str, accessor: str) -> bool: ...


def _store(tx: Tx) -> AppRoleStore:
    return tx.approles


def _deleter(tx: Tx) -> AppSecretDelete:
    return tx.approles


def _hash(secret_id: str) -> str:
    return hashlib.sha256(secret_id.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class RoleSettings:
    """What a role grants: durations in seconds (0: the server default / no limit)."""

    policies: tuple[str, ...] = ()
    token_ttl: int = 0
    token_max_ttl: int = 0
    secret_id_ttl: int = 0
    secret_id_num_uses: int = 0
    bound_cidrs: tuple[str, ...] = ()

    def checked(self) -> RoleSettings:
        """These settings if valid.

        Raises:
            InvalidInput: a bad policy name, a negative or too long duration, a bad CIDR.
        """
        for name in self.policies:
            check_policy_name(name)
        for value in (self.token_ttl, self.token_max_ttl, self.secret_id_ttl):
            if not isinstance(value, int) or not 0 <= value <= _MAX_TTL:
                raise errors.InvalidInput("durations must be between 0 and 3650 days")
        uses = self.secret_id_num_uses
        if isinstance(uses, bool) or not isinstance(uses, int) or not 0 <= uses < 2**31:
            raise errors.InvalidInput("secret_id_num_uses must be an integer from 0 to 2^31-1")
        for block in self.bound_cidrs:
            _network(block)
        return self


def _network(block: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(block, strict=False)
    except ValueError as exc:
        raise errors.InvalidInput(f"invalid CIDR block {block[:64]!r}") from exc


def _inside(ip: str, blocks: Sequence[str]) -> bool:
    if not blocks:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in _network(b) for b in blocks)


@dataclass(frozen=True, slots=True)
class NewSecretID:
    """A new secret id (shown once) and its accessor, TTL and use limit."""

    secret_id: str
    accessor: str
    ttl: int
    num_uses: int


def role_dict(row: AppRoleRow) -> dict[str, object]:
    """A role as JSON-ready values (durations in seconds)."""
    return {
        "name": row.name,
        "role_id": row.role_id,
        "policies": list(row.policies),
        "token_ttl": row.token_ttl,
        "token_max_ttl": row.token_max_ttl,
        "secret_id_ttl": row.secret_id_ttl,
        "secret_id_num_uses": row.secret_id_num_uses,
        "bound_cidrs": list(row.bound_cidrs),
        "created_at": iso(row.created_at),
    }


def secret_dict(row: AppSecretRow) -> dict[str, object]:
    """A secret id's record as JSON-ready values (never the secret id)."""
    return {
        "accessor": row.accessor,
        "created_at": iso(row.created_at),
        "expires_at": iso_or_none(row.expires_at),
        "uses_left": row.uses_left,
        "bound_cidrs": list(row.bound_cidrs),
    }


class AppRoles:
    """AppRole roles, secret ids and login. Thread-safe."""

    def __init__(self, state: VaultState, tokens: Tokens, *, default_ttl: timedelta) -> None:
        self._state = state
        self._tokens = tokens
        self._default_ttl = default_ttl

    def write_role(
        self, name: str, settings: RoleSettings, *, actor: Actor = DEFAULT_ACTOR
    ) -> AppRoleRow:
        """Create or update the role `name` (its role_id stays).

        Raises:
            InvalidInput: a bad name or setting.
        """
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise errors.InvalidInput("invalid role name: use 1-128 letters, digits, . _ -")
        s = settings.checked()
        row = AppRoleRow(
            0, name, secrets.token_hex(16), list(s.policies), s.token_ttl, s.token_max_ttl,
            s.secret_id_ttl, s.secret_id_num_uses, list(s.bound_cidrs), self._state.clock.now(),
        )  # fmt: skip

        def run(tx: Tx) -> AppRoleRow:
            _store(tx).put_role(row)
            stored = _store(tx).role(name=name)
            assert stored is not None  # noqa: S101 - just written
            return stored

        return access_write(self._state, "approle_write", actor, f"approle:{name}", run)

    def read_role(self, name: str) -> AppRoleRow:
        """The role `name`.

        Raises:
            NotFound: no such role.
        """
        with self._state.storage.read() as tx:
            row = _store(tx).role(name=name) if isinstance(name, str) else None
        if row is None:
            raise errors.NotFound("role not found")
        return row

    def list_roles(self) -> list[str]:
        """Every role name."""
        with self._state.storage.read() as tx:
            return _store(tx).list_roles()

    def delete_role(self, name: str, *, actor: Actor = DEFAULT_ACTOR) -> None:
        """Remove a role and its secret ids (tokens it issued live on until they expire).

        Raises:
            NotFound: no such role.
        """

        def run(tx: Tx) -> None:
            if not _store(tx).delete_role(name):
                raise errors.NotFound("role not found")

        access_write(self._state, "approle_delete", actor, f"approle:{name}", run)

    def new_secret_id(
        self, name: str, *, bound_cidrs: Sequence[str] = (), actor: Actor = DEFAULT_ACTOR
    ) -> NewSecretID:
        """Generate a secret id for role `name` (stored hashed; shown only here).

        Raises:
            NotFound: no such role. InvalidInput: a bad CIDR block.
        """
        for block in bound_cidrs:
            _network(block)
        secret_id = secrets.token_urlsafe(32)
        accessor = secrets.token_hex(12)
        now = self._state.clock.now()

        def run(tx: Tx) -> NewSecretID:
            role = _store(tx).role(name=name)
            if role is None:
                raise errors.NotFound("role not found")
            ttl = role.secret_id_ttl
            expires = now + timedelta(seconds=ttl) if ttl else None
            _store(tx).insert_secret(
                AppSecretRow(
                    accessor, name, _hash(secret_id), now, expires, role.secret_id_num_uses,
                    list(bound_cidrs),
                )
            )  # fmt: skip
            return NewSecretID(secret_id, accessor, ttl, role.secret_id_num_uses)

        return access_write(self._state, "approle_secret_id", actor, f"approle:{name}", run)

    def list_secret_ids(self, name: str) -> list[AppSecretRow]:
        """The unexpired secret ids of role `name` (accessors and limits, never the ids)."""
        now = self._state.clock.now()
        with self._state.storage.read() as tx:
            rows = _store(tx).list_secrets(name)
        return [r for r in rows if r.expires_at is None or r.expires_at > now]

    def destroy_secret_id(self, name: str, accessor: str, *, actor: Actor = DEFAULT_ACTOR) -> None:
        """Destroy one secret id by accessor.

        Raises:
            NotFound: no such secret id for this role.
        """

        def run(tx: Tx) -> None:
            if not _deleter(tx).delete_secret(name, accessor):
                raise errors.NotFound("secret id not found")

        access_write(self._state, "approle_secret_destroy", actor, f"approle:{name}", run)

    def login(self, role_id: str, secret_id: str, *, actor: Actor) -> IssuedToken:
        """Exchange a role_id and secret_id for a recorded token, from `actor.ip`.

        Raises:
            AuthenticationFailed: unknown role or secret id, expired or used up, or the address
                outside the role's or secret id's CIDR blocks (one message; audited).
        """
        now = self._state.clock.now()

        def run(tx: Tx) -> AppRoleRow:
            store = _store(tx)
            role = store.role(role_id=role_id) if isinstance(role_id, str) else None
            found = store.secret(_hash(secret_id)) if isinstance(secret_id, str) else None
            if (
                role is None
                or found is None
                or found.role_name != role.name
                or (found.expires_at is not None and found.expires_at <= now)
                or not _inside(actor.ip, role.bound_cidrs)
                or not _inside(actor.ip, found.bound_cidrs)
            ):
                raise errors.AuthenticationFailed("invalid role or secret ID")
            if found.uses_left:
                left = found.uses_left - 1
                store.use_secret(found.accessor, left or None)
            return role

        role = access_write(self._state, "approle_login", actor, None, run)
        ttl = timedelta(seconds=role.token_ttl) if role.token_ttl else self._default_ttl
        max_ttl = timedelta(seconds=role.token_max_ttl) if role.token_max_ttl else None
        return self._tokens.create(
            MACHINE_BASE + role.id,
            TOKEN_ROLE,
            policies=role.policies,
            ttl=min(ttl, max_ttl) if max_ttl else ttl,
            max_ttl=max_ttl,
            kind="approle",
            actor=actor,
        )
