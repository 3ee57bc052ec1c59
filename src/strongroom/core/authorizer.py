"""`Authorizer`: who may do what to which secret path, decided once for every front end.

Roles plus path policies (DESIGN §6): `SuperAdmin` and `Admin` pass every check except master-key
rotation (`require_admin(..., superadmin=True)`), which only `SuperAdmin` passes; any other role
needs a stored policy, named by its token, that grants the capability on the path. Listings are
filtered here too. Every refusal is audited here, exactly once, before `PermissionDenied` is
raised. This module decides and audits; it never logs.

Using it from an async handler (the HTTP dialects, a web UI)::

    principal = ...                       # the verified token (`core.tokens.Principal`)
    actor = Actor(principal.user_id, ip, request_id)
    await run_in_thread(vault.authorizer.require, principal, "read", path, actor)
    visible = await run_in_thread(vault.authorizer.list_filter, principal, prefix, actor)
    found = [info for info in found if visible(info.path)]
    # or read only where such paths can be: vault.secrets.list_paths(..., within=visible.prefixes)

Rules name keys of `secret/` by their key and keys of another mount by Vault's path
(`team/data/app/db`, `core.mount_paths.policy_path`). Checks say which mount they are for
(`mount=`, default `secret/`), and a rule applies to exactly one mount: a rule whose pattern
starts with another mount's path applies to that mount only, every other rule to `secret/`
only. So `team/data/x` never reaches `secret/`'s key `team/data/x`, and `*` never reaches
another mount. The mount paths are re-read at most every `policy_ttl` seconds.

Every method is synchronous and may read policies from storage (cached for `policy_ttl`
seconds) or write an audit entry, so an async caller runs it in its thread pool. A check that
passes for an administrator touches neither.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from strongroom import errors
from strongroom.core.access import Access
from strongroom.core.mount_paths import DEFAULT_MOUNT
from strongroom.core.policy import ADMIN_ROLES, SUPERADMIN, Policy
from strongroom.core.roles import canonical_role
from strongroom.core.tokens import Principal
from strongroom.models import Actor

__all__ = ["Authorizer", "PathFilter", "Visible"]

#: Says whether one path may appear in a listing.
PathFilter = Callable[[str], bool]
POLICY_TTL_SECONDS = 5.0
_MAX_CACHED = 10_000


def _everything(path: str) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Visible:
    """Which listed paths a principal sees (`Authorizer.list_filter`). Calling it decides a
    path; `prefixes` bounds where such paths can be, so a listing may read only the paths
    under them and call it on those (None: anywhere)."""

    decide: PathFilter
    prefixes: tuple[str, ...] | None = None

    def __call__(self, path: str) -> bool:
        return self.decide(path)


def _within(prefix: str, literals: Iterable[str]) -> tuple[str, ...]:
    """The fewest prefixes under `prefix` covering every path that starts with `prefix` and
    with one of `literals`, sorted and none inside another."""
    bounds = sorted(
        {
            lit if lit.startswith(prefix) else prefix
            for lit in literals
            if lit.startswith(prefix) or prefix.startswith(lit)
        }
    )
    kept: list[str] = []
    for bound in bounds:
        if not kept or not bound.startswith(kept[-1]):
            kept.append(bound)
    return tuple(kept)


class Authorizer:
    """Role and path-policy checks, with audited refusals. Thread-safe."""

    def __init__(
        self,
        access: Access,
        *,
        mount_paths: Callable[[], Collection[str]] = frozenset,
        policy_ttl: float = POLICY_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._access = access
        self._ttl = policy_ttl
        self._monotonic = monotonic
        self._cache: dict[tuple[str, ...], tuple[float, list[Policy]]] = {}
        self._lock = threading.Lock()
        self._read_mounts = mount_paths
        self._mounts: tuple[float, frozenset[str]] | None = None

    @staticmethod
    def is_admin(principal: Principal) -> bool:
        """SuperAdmin or Admin (every capability on every path)."""
        return principal.role in ADMIN_ROLES

    def policies_of(self, principal: Principal) -> list[Policy]:
        """The stored policies the principal's token names (re-read at most every
        `policy_ttl` seconds, so a change made by another process is seen within it).

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        names = principal.policies
        if not names:
            return []
        now = self._monotonic()
        with self._lock:
            hit = self._cache.get(names)
        if hit is not None and now - hit[0] <= self._ttl:
            return hit[1]
        policies = self._access.get_policies(list(names))
        with self._lock:
            if len(self._cache) > _MAX_CACHED:
                self._cache.clear()
            self._cache[names] = (now, policies)
        return policies

    def _other_mounts(self, *, cached_only: bool = False) -> frozenset[str] | None:
        """The paths of every mount but `secret/` (re-read every `policy_ttl` seconds); None
        when `cached_only` and the cache is stale."""
        now = self._monotonic()
        hit = self._mounts
        if hit is not None and now - hit[0] <= self._ttl:
            return hit[1]
        if cached_only:
            return None
        paths = frozenset(self._read_mounts()) - {DEFAULT_MOUNT}
        self._mounts = (now, paths)
        return paths

    def _scope(self, mount: str, *, cached_only: bool = False) -> Callable[[str], bool] | None:
        """Which rule patterns apply to a check in `mount` (None: unknown without storage)."""
        if mount != DEFAULT_MOUNT:
            return lambda pattern: pattern.startswith(mount)
        others = self._other_mounts(cached_only=cached_only)
        if others is None:
            return None
        if not others:
            return lambda pattern: True
        prefixes = tuple(others)
        return lambda pattern: not pattern.startswith(prefixes)

    def allows_cached(
        self, principal: Principal, capability: str, path: str, *, mount: str = DEFAULT_MOUNT
    ) -> bool:
        """Whether the principal may use `capability` on `path`, decided without blocking:
        True for administrators and for fresh cached policies that grant it; False when the
        answer needs storage (policies not cached) or a refusal (then call `require`).

        Lets an event-loop caller skip the thread hop on the common, allowed path.
        """
        if self.is_admin(principal):
            return True
        names = principal.policies
        if not names:
            return False
        with self._lock:
            hit = self._cache.get(names)
        if hit is None or self._monotonic() - hit[0] > self._ttl:
            return False
        scope = self._scope(mount, cached_only=True)
        return scope is not None and any(p.allows(capability, path, scope) for p in hit[1])

    def allows(
        self, principal: Principal, capability: str, path: str, *, mount: str = DEFAULT_MOUNT
    ) -> bool:
        """Whether the principal may use `capability` on `path` of `mount` (no audit entry).

        Raises:
            StorageUnavailable: the policies or mounts cannot be read.
        """
        if self.is_admin(principal):
            return True
        policies = self.policies_of(principal)
        if not policies:
            return False
        scope = self._scope(mount)
        return any(p.allows(capability, path, scope) for p in policies)

    def require(
        self,
        principal: Principal,
        capability: str,
        path: str,
        actor: Actor,
        *,
        action: str | None = None,
        mount: str = DEFAULT_MOUNT,
    ) -> None:
        """Allow admins, or a policy granting `capability` on `path` of `mount`.

        `action` names the refused operation in the audit entry (default: the capability;
        e.g. capability `update` for action `rollback`).

        Raises:
            PermissionDenied: nothing grants it (audited once).
        """
        if not self.allows(principal, capability, path, mount=mount):
            raise self.deny(action or capability, path, actor)

    def require_admin(
        self,
        principal: Principal,
        action: str,
        actor: Actor,
        *,
        superadmin: bool = False,
        path: str | None = None,
    ) -> None:
        """Allow only SuperAdmin and Admin (SuperAdmin alone when `superadmin`).

        Raises:
            PermissionDenied: any other role (audited once).
        """
        role = principal.role
        if role == SUPERADMIN or (not superadmin and role in ADMIN_ROLES):
            return
        raise self.deny(action, path, actor)

    def require_manage(
        self,
        principal: Principal,
        roles: Iterable[str],
        action: str,
        actor: Actor,
        *,
        path: str | None = None,
    ) -> None:
        """Allow managing users or tokens whose current or new `roles` are given: an
        administrator for roles below Admin, only SuperAdmin when one is Admin or SuperAdmin.

        Raises:
            PermissionDenied: any other caller (audited once).
        """
        high = any(canonical_role(r) in ADMIN_ROLES for r in roles if isinstance(r, str))
        self.require_admin(principal, action, actor, superadmin=high, path=path)

    def list_filter(self, principal: Principal, prefix: str, actor: Actor) -> Visible:
        """Check that the principal may list at all, and return which listed `secret/` paths
        under `prefix` it sees (with the prefixes bounding them, from the literal start of
        every rule granting `list`).

        Admins see everything. Another role needs some policy granting `list` somewhere, and
        then sees only the paths a policy grants `list` on.

        Raises:
            PermissionDenied: no policy grants `list` anywhere (audited once, as `list` of
                `prefix`).
        """
        if self.is_admin(principal):
            return Visible(_everything)
        policies = self.policies_of(principal)
        if not any(p.grants_anywhere("list") for p in policies):
            raise self.deny("list", prefix or None, actor)

        scope = self._scope(DEFAULT_MOUNT)

        def visible(path: str) -> bool:
            return any(p.allows("list", path, scope) for p in policies)

        literals = (
            r.literal_prefix
            for p in policies
            for r in p.rules
            if "list" in r.capabilities and (scope is None or scope(r.pattern))
        )
        return Visible(visible, _within(prefix, literals))

    def deny(self, action: str, path: str | None, actor: Actor) -> errors.PermissionDenied:
        """Audit a refusal and return the error to raise.

        Raises:
            StorageUnavailable: the entry could not be written (fail-closed).
        """
        self._access.record_denied(action, path, actor)
        return errors.PermissionDenied()
