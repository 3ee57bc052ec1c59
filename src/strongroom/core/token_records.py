"""`Tokens` (the `vault.tokens` service): recorded, revocable tokens, as Vault's token store.

A recorded token is an opaque random string (`sr.` + 43 URL-safe characters, 256 bits); the
database keeps its accessor and its SHA-256, never the token. Its expiry lives in its record, so a
renewal keeps the same token; a renewal past the token's max TTL is capped there with a warning.

Checking a token costs no database round trip on the hot path: verified records are cached in
memory, and every process polls one counter row, the revocation epoch, at most once a second
(`refresh`; the server also runs it as a background job). Every revocation and renewal bumps the
epoch in the same transaction, so a process that sees a new epoch drops its whole cache and
re-reads tokens as they are used: a revoked token is refused by every worker and instance within
`staleness` (1 s) of its revocation. Refusals are audited. Last use is written coarsely: at most
once a minute per token, in one batch (`flush_last_used`).

This module never logs, returns or stores a token after `create` has handed it out.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from strongroom import errors
from strongroom.core.access import access_write
from strongroom.core.policy import check_policy_name
from strongroom.core.state import VaultState
from strongroom.core.token_types import (
    LAST_USED_EVERY,
    PREFIX,
    TOKEN_ROLE,
    EpochStore,
    IssuedToken,
    TokenInfo,
    TokenStore,
    check_ttl,
    cutoff_time,
    epoch_store,
    is_recorded,
    token_hash,
    token_info,
    token_store,
)
from strongroom.core.tokens import Principal
from strongroom.models import DEFAULT_ACTOR, Actor
from strongroom.storage import TokenRow, Tx

__all__ = [
    "PREFIX",
    "TOKEN_ROLE",
    "EpochStore",
    "IssuedToken",
    "TokenInfo",
    "TokenStore",
    "Tokens",
    "cutoff_time",
    "is_recorded",
    "new_accessor",
]

STALENESS_SECONDS = 1.0
_MAX_CACHED = 100_000


def new_accessor() -> str:
    """A token's accessor: 24 URL-safe characters (about 144 random bits) that never start with `-`,
    which a command line would take for an option (`vaultctl token lookup ACCESSOR`)."""
    while True:
        accessor = secrets.token_urlsafe(18)
        if not accessor.startswith("-"):
            return accessor


class Tokens:
    """Recorded tokens: issue, verify (cached), look up, renew, revoke. Thread-safe."""

    def __init__(
        self,
        state: VaultState,
        *,
        staleness: float = STALENESS_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._staleness = staleness
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._cache: dict[str, TokenInfo] = {}
        self._epoch = -1
        self._generation = 0
        self._checked = float("-inf")
        self._cutoffs: dict[int, float] = {}
        self._used: dict[str, datetime] = {}
        self._pending: dict[str, datetime] = {}

    # -- issue ------------------------------------------------------------------------------
    def create(
        self,
        user_id: int,
        role: str,
        *,
        policies: Sequence[str] = (),
        ttl: timedelta,
        max_ttl: timedelta | None = None,
        kind: str = "token",
        parent: str | None = None,
        not_after: datetime | None = None,
        actor: Actor = DEFAULT_ACTOR,
    ) -> IssuedToken:
        """Issue and record a token for subject `user_id` with `role` and exactly `policies`.

        `max_ttl` (default: `ttl`) bounds every renewal; `actor` is recorded as the issuer.
        A `parent` (the creating token's accessor) makes a child: it expires, and may be
        renewed, no later than its parent, and is revoked with it. `not_after` caps both
        the expiry and the max TTL (a JWT parent's `exp`).

        Raises:
            InvalidInput: a bad subject, role, policy name, or TTL outside 1 s-3650 d.
            AuthenticationFailed: the parent is revoked or expired.
        """
        if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 <= user_id < 2**63:
            raise errors.InvalidInput("user id must be a non-negative integer")
        if not isinstance(role, str) or not role or len(role) > 64:
            raise errors.InvalidInput("role must be a non-empty string of at most 64 characters")
        names = sorted({check_policy_name(p) for p in policies})
        ttl = check_ttl(ttl, "ttl")
        limit = ttl if max_ttl is None else check_ttl(max_ttl, "max ttl")
        token = PREFIX + secrets.token_urlsafe(32)
        now = self._state.clock.now().replace(microsecond=0)
        row = TokenRow(
            accessor=new_accessor(),
            token_hash=token_hash(token),
            user_id=user_id,
            role=role,
            policies=names,
            kind=kind,
            issuer=actor.user_id,
            created_at=now,
            expires_at=now + min(ttl, limit),
            max_expires_at=now + limit,
            ttl=int(ttl.total_seconds()),
            parent=parent,
        )

        def run(tx: Tx) -> TokenRow:
            ends, most = row.expires_at, row.max_expires_at
            if parent is not None:
                above = token_store(tx).token_by_accessor(parent)
                if above is None or above.expires_at <= now:
                    raise errors.AuthenticationFailed("the parent token is revoked or expired")
                ends, most = min(ends, above.expires_at), min(most, above.max_expires_at)
            if not_after is not None:
                ends, most = min(ends, not_after), min(most, not_after)
            if ends <= now:
                raise errors.InvalidInput("the parent token expires too soon")
            made = replace(row, expires_at=min(ends, most), max_expires_at=most)
            token_store(tx).insert_token(made)
            return made

        made = access_write(self._state, "token_create", actor, f"token:{row.accessor}", run)
        return IssuedToken(token, token_info(made))

    # -- verify -----------------------------------------------------------------------------
    def verify_cached(self, token: str) -> Principal | None:
        """The principal of a valid recorded token when the answer needs no I/O: a cached,
        unexpired record and an epoch checked within the staleness bound; else None (then
        call `verify`). Never raises."""
        if self._monotonic() - self._checked > self._staleness:
            return None
        info = self._cache.get(token_hash(token))
        if info is None:
            return None
        now = self._state.clock.now()
        if info.expires_at <= now:
            return None
        self._note_use(info, now)
        return info.principal()

    def verify(self, token: str, actor: Actor) -> Principal:
        """The principal of a valid recorded token (the epoch re-read if stale).

        Raises:
            AuthenticationFailed: unknown, revoked or expired (audited as `token_refused`).
            StorageUnavailable: the database cannot be reached.
        """
        if self._monotonic() - self._checked > self._staleness:
            self.refresh()
        digest = token_hash(token) if isinstance(token, str) else ""
        info = self._cache.get(digest)
        if info is None and digest:
            generation = self._generation
            with self._state.storage.read() as tx:
                row = token_store(tx).token_by_hash(digest)
            info = token_info(row) if row is not None else None
            if info is not None:
                with self._lock:
                    if generation == self._generation:
                        if len(self._cache) >= _MAX_CACHED:
                            self._cache.clear()
                        self._cache[digest] = info
        now = self._state.clock.now()
        if info is None or info.expires_at <= now:
            exc = errors.AuthenticationFailed("invalid token" if info is None else "token expired")
            path = None if info is None else f"token:{info.accessor}"
            self._state.audit(
                self._state.entry("token_refused", actor, path, success=False, error=exc)
            )
            raise exc
        self._note_use(info, now)
        return info.principal()

    def refresh(self) -> None:
        """Re-read the revocation epoch (one small query); drop every cached record when it
        changed. Concurrent callers share one read.

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        with self._refreshing:
            started = self._monotonic()
            if started - self._checked <= self._staleness / 4:
                return  # another thread just did it
            with self._state.storage.read() as tx:
                epoch = epoch_store(tx).token_epoch()
                cutoffs = epoch_store(tx).jwt_cutoffs() if epoch != self._epoch else None
            with self._lock:
                if epoch != self._epoch:
                    self._cache.clear()
                    self._generation += 1
                    self._epoch = epoch
                if cutoffs is not None:
                    self._cutoffs = {u: when.timestamp() for u, when in cutoffs.items()}
                self._checked = started

    # -- stateless JWTs: "revoke subject N's tokens issued before T" -----------------------
    def jwt_allowed_cached(self, principal: Principal) -> bool | None:
        """Whether a verified JWT escapes every cut-off, decided without I/O; None when the
        cut-offs are older than the staleness bound (then call `check_jwt`). Never raises."""
        if self._monotonic() - self._checked > self._staleness:
            return None
        cut = self._cutoffs.get(principal.user_id)
        return cut is None or principal.issued_at >= cut

    def check_jwt(self, principal: Principal, actor: Actor) -> None:
        """Refuse a JWT of a subject whose tokens issued before a cut-off were revoked.

        Raises:
            AuthenticationFailed: issued before its subject's cut-off (audited).
        """
        if self._monotonic() - self._checked > self._staleness:
            self.refresh()
        if self.jwt_allowed_cached(principal) is False:
            exc = errors.AuthenticationFailed("token revoked")
            path = f"user-id:{principal.user_id}"
            self._state.audit(
                self._state.entry("token_refused", actor, path, success=False, error=exc)
            )
            raise exc

    def revoke_jwts_before(
        self, user_id: int, issued_before: datetime, *, actor: Actor = DEFAULT_ACTOR
    ) -> None:
        """Refuse every stateless JWT of subject `user_id` issued before `issued_before`
        (everywhere within the staleness bound); a JWT without `iat` is refused too.

        Raises:
            InvalidInput: a bad subject or a naive time.
        """
        if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 0:
            raise errors.InvalidInput("user id must be a non-negative integer")
        if issued_before.tzinfo is None:
            raise errors.InvalidInput("the cut-off time needs a timezone")

        def run(tx: Tx) -> None:
            epoch_store(tx).put_jwt_cutoff(user_id, issued_before)
            epoch_store(tx).bump_token_epoch()

        access_write(self._state, "token_revoke_jwts", actor, f"user-id:{user_id}", run)
        with self._lock:
            self._cutoffs[user_id] = issued_before.timestamp()

    def _note_use(self, info: TokenInfo, now: datetime) -> None:
        last = self._used.get(info.accessor) or info.last_used_at
        if last is None or now - last >= LAST_USED_EVERY:
            with self._lock:
                if len(self._used) >= _MAX_CACHED:
                    self._used.clear()
                self._used[info.accessor] = now
                self._pending[info.accessor] = now

    def flush_last_used(self) -> int:
        """Write the coarse last use of the tokens used since the last flush (one statement);
        return how many. The server calls it every minute.

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        with self._state.storage.write() as tx:
            token_store(tx).touch_tokens(sorted(pending), max(pending.values()))
        return len(pending)

    # -- look up ----------------------------------------------------------------------------
    def lookup(self, accessor: str) -> TokenInfo:
        """The record of the token with `accessor`.

        Raises:
            NotFound: no such (unexpired) token.
        """
        with self._state.storage.read() as tx:
            row = token_store(tx).token_by_accessor(accessor) if isinstance(accessor, str) else None
        if row is None or row.expires_at <= self._state.clock.now():
            raise errors.NotFound("token not found")
        return token_info(row)

    def accessor_of(self, token: str) -> str:
        """The accessor of a (still recorded) token.

        Raises:
            NotFound: not a recorded token, or revoked.
        """
        row = None
        if isinstance(token, str) and is_recorded(token):
            with self._state.storage.read() as tx:
                row = token_store(tx).token_by_hash(token_hash(token))
        if row is None:
            raise errors.NotFound("token not found")
        return row.accessor

    def list_tokens(self, user_id: int | None = None) -> list[TokenInfo]:
        """Every unexpired recorded token (of one subject), oldest first."""
        now = self._state.clock.now()
        with self._state.storage.read() as tx:
            rows = token_store(tx).list_tokens(user_id)
        return [token_info(r) for r in rows if r.expires_at > now]

    # -- renew and revoke -------------------------------------------------------------------
    def renew(
        self, accessor: str, increment: timedelta | None = None, *, actor: Actor = DEFAULT_ACTOR
    ) -> tuple[TokenInfo, list[str]]:
        """Extend a token's expiry to now + `increment` (default: its TTL), capped at its max
        TTL (with a warning, as Vault). Keeps the same token. Returns the record and warnings.

        Raises:
            NotFound: no such token; InvalidInput: a bad increment.
        """
        inc = None if increment is None else check_ttl(increment, "increment")
        now = self._state.clock.now().replace(microsecond=0)
        warnings: list[str] = []

        def run(tx: Tx) -> TokenInfo:
            row = token_store(tx).token_by_accessor(accessor)
            if row is None or row.expires_at <= now:
                raise errors.NotFound("token not found")
            wanted = now + (inc if inc is not None else timedelta(seconds=row.ttl))
            most = row.max_expires_at
            above = token_store(tx).token_by_accessor(row.parent) if row.parent else None
            if above is not None:  # a child never outlives its parent's current expiry
                most = min(most, max(above.expires_at, row.expires_at))
            expires = min(wanted, most)
            if wanted > most:
                warnings.append(
                    "TTL of "
                    f'"{int((wanted - now).total_seconds())}s" exceeded the effective max_ttl '
                    f'of "{int((expires - now).total_seconds())}s"; TTL value is capped accordingly'
                )
            token_store(tx).set_expiry(row.accessor, expires)
            epoch_store(tx).bump_token_epoch()
            return replace(token_info(row), expires_at=expires)

        info = access_write(self._state, "token_renew", actor, f"token:{accessor}", run)
        return info, warnings

    def revoke(self, accessor: str, *, actor: Actor = DEFAULT_ACTOR) -> None:
        """Revoke the token with `accessor` and the tokens it created, transitively (refused
        everywhere within the staleness bound).

        Raises:
            NotFound: no such token.
        """

        def run(tx: Tx) -> set[str]:
            gone = token_store(tx).delete_tokens(accessor=accessor)
            if not gone:
                raise errors.NotFound("token not found")
            epoch_store(tx).bump_token_epoch()
            return set(gone)

        gone = access_write(self._state, "token_revoke", actor, f"token:{accessor}", run)
        self._drop(lambda info: info.accessor in gone)

    def revoke_user(self, user_id: int, *, actor: Actor = DEFAULT_ACTOR) -> int:
        """Revoke every recorded token of subject `user_id`; return how many."""

        def run(tx: Tx) -> set[str]:
            gone = token_store(tx).delete_tokens(user_id=user_id)
            if gone:
                epoch_store(tx).bump_token_epoch()
            return set(gone)

        gone = access_write(self._state, "token_revoke_user", actor, f"user-id:{user_id}", run)
        self._drop(lambda info: info.user_id == user_id or info.accessor in gone)
        return len(gone)

    def cleanup_expired(self) -> int:
        """Remove expired records and the tokens they created (no audit entry: nothing valid
        is revoked but a child renewed past its parent's shortened expiry); return how many."""
        now = self._state.clock.now()
        with self._state.storage.write() as tx:
            gone = token_store(tx).delete_tokens(expired_at=now)
            if gone:
                epoch_store(tx).bump_token_epoch()
            return len(gone)

    def forget_user(self, user_id: int) -> None:
        """Drop a user's tokens from this process's cache (their records were just revoked
        by a user change; the other processes see the revocation epoch)."""
        self._drop(lambda info: info.user_id == user_id)

    def _drop(self, which: Callable[[TokenInfo], bool]) -> None:
        # This process refuses at once; the others when they see the new epoch.
        with self._lock:
            for key in [k for k, info in self._cache.items() if which(info)]:
                del self._cache[key]
            self._generation += 1
