"""ServerState: what every request handler of both APIs shares, and the request pipeline's
steps that need it: the caller, authorisation, unlock and lock.

Handlers are async; the core is synchronous and may block (a lock held during an unlock's
Argon2 run, an audit write, SQL), so every core call, the lock-state check included, goes
through `run()`, which hands it to a dedicated thread pool: nothing blocking runs on the event
loop. `caller()` is the one way a request becomes a `Caller` (token -> principal -> caller) for
`/api/vault` and `/v1` alike; `Dialect` says what differs. Authorisation is the core's
`Authorizer` (`vault.authorizer`): `require`/`require_admin` here only hand it the caller,
off the event loop unless its cache already allows the request.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request

from strongroom import errors
from strongroom.config import Settings
from strongroom.core import Vault
from strongroom.core.access import LoginLimiter
from strongroom.core.authorizer import Visible
from strongroom.core.mount_paths import DEFAULT_MOUNT
from strongroom.core.token_records import is_recorded
from strongroom.core.tokens import Principal
from strongroom.http import deps
from strongroom.http.autounlock import AutoUnlocker
from strongroom.http.control import PeerLink
from strongroom.http.health import ReadinessProbe
from strongroom.http.metrics import Metrics
from strongroom.models import Actor, new_actor
from strongroom.records import constructor

__all__ = ["API", "V1", "V1_SYS", "Caller", "Dialect", "ServerState", "state_of"]

T = TypeVar("T")
USER_RECHECK_SECONDS = 5.0
#: The request scope's key of its caller (`ServerState.caller`).
_CALLER = "strongroom.caller"


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one API finds its caller.

    Attributes:
        vault_token: also accept `X-Vault-Token` (read first), as Vault clients send it.
        locked_first: refuse with VaultLocked before looking at the token (Vault answers 503
            while sealed, whoever asks).
    """

    vault_token: bool = False
    locked_first: bool = False


#: `/api/vault`: `Authorization: Bearer` only.
API = Dialect()
#: `/v1`: Vault's token header, and the lock state checked first.
V1 = Dialect(vault_token=True, locked_first=True)
#: `/v1/sys/unseal` and `/v1/sys/seal`: they work on a locked vault.
V1_SYS = Dialect(vault_token=True)


def on_loop(future: Future[T]) -> asyncio.Future[T]:
    """The running loop's view of a writer future, as `asyncio.wrap_future`, but one whose
    result set on this loop's own thread (a batch the loop led is answered through its lead:
    `Writer._answer`) is copied at once instead of through one more `call_soon_threadsafe`
    per future. Cancelling the view leaves the job alone (it runs anyway once queued)."""
    loop = asyncio.get_running_loop()
    view: asyncio.Future[T] = loop.create_future()
    thread = threading.get_ident()

    def copy(done: Future[T]) -> None:
        if threading.get_ident() == thread:
            _copy_outcome(done, view)
        else:
            try:
                loop.call_soon_threadsafe(_copy_outcome, done, view)
            except RuntimeError:
                pass  # the loop is closed: nobody is waiting any more

    future.add_done_callback(copy)
    return view


class LoopLead:
    """A loop's lead callback for the writer (`Writer.submit_detached`): `call_soon` when called
    on the loop's own thread (a request's job leading its batch), `call_soon_threadsafe` from
    any other (the writer's thread answering the batch after its commit).
    `call_soon_threadsafe` also wakes the loop through its eventfd: a write, a read and one
    more turn of the loop per batch, for nothing when the caller is the loop itself. Build it
    on the loop's thread, once per loop: the writer batches jobs of the same lead (`==`)."""

    __slots__ = ("_call_soon", "_thread", "_threadsafe", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._call_soon, self._threadsafe = loop.call_soon, loop.call_soon_threadsafe
        self._thread = threading.get_ident()

    def __call__(self, call: Callable[[], None]) -> None:
        if threading.get_ident() == self._thread:
            self._call_soon(call)
        else:
            self._threadsafe(call)


def _copy_outcome(done: Future[T], view: asyncio.Future[T]) -> None:
    if view.done():
        return  # cancelled meanwhile (the client went away, a shutdown)
    error = done.exception()
    if error is not None:
        view.set_exception(_own(error))
    else:
        view.set_result(done.result())


def _own(error: BaseException) -> BaseException:
    """The error to raise for one request. A failed batch answers all its jobs with one
    StorageUnavailable, and joined reads share one future: each request raises a copy of
    its own, so no shared traceback grows with every request that raises it. Any other error
    is one job's own (its only waiter) and is raised as it is."""
    if type(error) is errors.StorageUnavailable:
        return errors.StorageUnavailable(error.message, cause=error.cause)
    return error


def _raise(exc: Exception) -> Any:
    raise exc


def state_of(request: Request) -> ServerState:
    """The ServerState of the app serving `request`."""
    state: ServerState = request.app.state.strongroom
    return state


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request: the verified token, and the `Actor` every core call audits."""

    principal: Principal
    actor: Actor

    @property
    def request_id(self) -> str:
        """The request id (also in the `Actor`)."""
        return self.actor.request_id or ""


#: `Caller(...)` built faster, for every request (`strongroom.records`).
_new_caller = constructor(Caller)


class ServerState:
    """Shared by all requests of one worker process."""

    def __init__(self, settings: Settings, vault: Vault, link: PeerLink, metrics: Metrics) -> None:
        self.settings = settings
        self.vault = vault
        self.link = link
        self.metrics = metrics
        if not settings.has_jwt_keys:
            raise errors.InvalidInput("VAULT_JWT_SECRET is required: at least 32 bytes")
        self.auth = settings.jwt_auth()
        # PyJWT now, not in the first request (`core.tokens` loads it on first use)
        importlib.import_module("jwt")
        self.limiter = LoginLimiter(settings.vault_config().clock)
        #: Core reads and KV writes run on the event loop (SQLite), not in the thread pool
        #: (`read`, `write`).
        self.inline = vault.state.storage.dialect == "sqlite"
        # On PostgreSQL the pool's threads do the reads: each keeps its own connection, as the
        # loop does on SQLite (no pool checkout and return around every read).
        self.executor = ThreadPoolExecutor(
            settings.threads,
            thread_name_prefix="strongroom-op",
            initializer=None if self.inline else vault.state.storage.pin_thread,
        )
        if self.inline:
            vault.state.storage.pin_thread()  # built on the event loop's thread (lifespan)
        #: Built-in users' current role (None: disabled or gone), re-read every few seconds.
        self.users: dict[int, tuple[float, str | None]] = {}
        #: `--auto-unlock`: unlocks again after an auto-lock (None: off).
        self.unlocker = (
            AutoUnlocker(vault, link, settings.master_key)
            if settings.auto_unlock and settings.master_key
            else None
        )
        self.readiness = ReadinessProbe(vault, auto_unlock=self.unlocker is not None)
        self._lead: LoopLead | None = None

    def lead(self) -> LoopLead:
        """The running loop's lead callback (one per loop: see `LoopLead`)."""
        loop = asyncio.get_running_loop()
        lead = self._lead
        if lead is None or lead.loop is not loop:
            lead = self._lead = LoopLead(loop)
        return lead

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a synchronous core call in the thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    async def read(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a core read (audited or not) and return its result once its audit entry is durable.

        On SQLite the read itself runs on the event loop (a point read takes microseconds and
        a WAL reader never waits for a writer), and its audit entry joins the group commit
        that the loop leads for the requests of its turns, once it stops queueing more: no
        thread hop and no GIL hand-off (docs/decisions.md, "Speed, round one" and "round
        ten").
        On PostgreSQL the read runs in the thread pool (a round trip must not hold the loop)
        and the writer's thread commits its entry.
        Either way the caller sees the result, or the read's error, only after the entry is
        on disk (fail-closed: StorageUnavailable otherwise).
        """
        call = functools.partial(fn, *args, **kwargs)
        if not self.inline:
            return await self._pooled_read(call)
        result, error, audited = self.vault.state.read_detached(call, self.lead())
        if audited is not None:
            await on_loop(audited)
        if error is not None:
            raise error
        return result  # type: ignore[return-value]  # None only with an error

    async def _pooled_read(self, call: Callable[[], T]) -> T:
        """`read` in the thread pool, its answer handed to the loop once, when the audit entry
        is durable: the pool's thread leaves a callback on the entry's future instead of
        returning to the loop first (one wake-up of the loop and one future chain fewer per
        read: docs/decisions.md, "Speed, round three")."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[T] = loop.create_future()

        def settle(outcome: Callable[[], T]) -> None:  # on the loop
            if answer.done():
                return  # cancelled meanwhile (the client went away, a shutdown)
            try:
                answer.set_result(outcome())
            except Exception as exc:
                answer.set_exception(exc)

        def hand_over(outcome: Callable[[], T]) -> None:  # any thread
            try:
                loop.call_soon_threadsafe(settle, outcome)
            except RuntimeError:
                pass  # the loop is closed: nobody is waiting any more

        def work() -> None:  # in a pool thread
            try:
                result, error, audited = self.vault.state.read_detached(call)
            except Exception as exc:
                hand_over(functools.partial(_raise, exc))
                return

            def outcome() -> T:
                if audited is not None and (failure := audited.exception()) is not None:
                    raise _own(failure)  # the batch's failure (StorageUnavailable): fail-closed
                if error is not None:
                    raise error
                return result  # type: ignore[return-value]  # None only with an error

            if audited is None:
                hand_over(outcome)
            else:
                audited.add_done_callback(lambda _: hand_over(outcome))

        self.executor.submit(work)
        return await answer

    async def write(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a core call that makes one write and returns its result as is (`KVEngine.write`)
        and return that result once the write and its audit entry are durable.

        The call runs on the event loop up to its write (its checks: it reads nothing), and
        the write is queued. On SQLite it joins the group commit the loop leads (as
        `read`'s audit entries); on PostgreSQL the writer's own thread runs
        the batch, every write queued meanwhile in it (a thread of the pool per write, each
        leading or waiting, cost twice as much CPU: docs/decisions.md, "Speed, round three").
        """
        lead = self.lead() if self.inline else None
        future = self.vault.state.write_detached(functools.partial(fn, *args, **kwargs), lead)
        result: T = await on_loop(future)
        return result

    def client_ip(self, request: Request) -> str:
        """The client address (trusted proxies honoured)."""
        return deps.client_ip(request.scope, self.settings.proxy_networks)

    async def caller(
        self, request: Request, dialect: Dialect = API, *, token: str | None = None
    ) -> Caller:
        """The authenticated caller of a request, for either API (`token`: the web console's
        session token, from its cookie, instead of the request's header). Found once per
        request and dialect: a handler that a dispatcher called after checking the token
        (`api_kv_mounts`) gets the same caller again.

        Raises:
            VaultLocked: the vault is locked and the dialect checks that first (`/v1`).
            AuthenticationFailed: no valid token (a recorded token revoked or expired: audited),
                or a built-in user's token whose user was since disabled, removed or given
                another role.
        """
        scope = request.scope
        from_header = token is None
        if from_header and (known := scope.get(_CALLER)) is not None and known[0] is dialect:
            found: Caller = known[1]
            return found
        unlocker = self.unlocker
        if dialect.locked_first and not self.vault.state.is_unlocked:
            # A lock-free read: an unlock in progress (Argon2, under the state lock) is
            # "locked" until it finishes, and a due auto-lock is applied by the operation.
            # An auto-locked vault that unlocks itself asks for the token first.
            if unlocker is None or not unlocker.is_needed():
                raise errors.VaultLocked()
        if token is None:
            token = deps.request_token(request, vault_header=dialect.vault_token)
        who: Principal | None
        if is_recorded(token):
            who = self.vault.tokens.verify_cached(token)
            if who is None:
                anyone = Actor(0, self.client_ip(request), deps.request_id(scope))
                who = await self.run(self.vault.tokens.verify, token, anyone)
        else:
            who = self.auth.verify(token)
            tokens = self.vault.tokens
            if not tokens.jwt_allowed_cached(who):  # None: stale cut-offs, False: revoked
                anyone = Actor(who.user_id, self.client_ip(request), deps.request_id(scope))
                await self.run(tokens.check_jwt, who, anyone)
        if who.builtin:
            await self.check_user(who)
        actor = new_actor(who.user_id, self.client_ip(request), deps.request_id(scope))
        if unlocker is not None:
            await unlocker.ensure(actor, self.run)
        caller = _new_caller(who, actor)
        if from_header:
            scope[_CALLER] = (dialect, caller)
        return caller

    async def unlock(self, caller: Caller, master_key: str) -> None:
        """Unlock the vault, then every sibling worker (an administrator's request).

        Raises:
            InvalidMasterKey, TooManyAttempts, InvalidInput: as `Vault.unlock` (audited there).
        """
        await self.run(self.vault.unlock, master_key, actor=caller.actor)
        await self.run(self.link.publish_unlock, master_key, caller.actor)

    async def lock(self, caller: Caller) -> None:
        """Lock the vault, then every sibling worker (an administrator's request)."""
        await self.run(self.vault.lock, actor=caller.actor)
        await self.run(self.link.publish_lock, caller.actor)

    async def read_json(
        self, request: Request, *, required: bool = True, any_type: bool = False
    ) -> dict[str, Any]:
        """The request's JSON object body, within the configured size limit (`deps.read_json`).

        Raises:
            PayloadTooLarge, InvalidInput, UnsupportedMediaType: as `deps.read_json`.
        """
        return await deps.read_json(
            request, self.settings.body_limit, required=required, any_type=any_type
        )

    async def check_user(self, who: Principal) -> None:
        """Refuse a built-in user's token once the user is disabled, removed or re-roled
        (re-read at most every USER_RECHECK_SECONDS).

        Raises:
            AuthenticationFailed: the token no longer matches the user's record.
        """
        state = self.users.get(who.user_id)
        if state is None or time.monotonic() - state[0] > USER_RECHECK_SECONDS:
            user = await self.run(self.vault.access.get_user, who.user_id)
            state = (time.monotonic(), user.role if user and not user.disabled else None)
            if len(self.users) > 100_000:
                self.users.clear()
            self.users[who.user_id] = state
        if state[1] != who.role:
            raise errors.AuthenticationFailed("token no longer valid: log in again")

    async def require_admin(
        self, caller: Caller, action: str, *, superadmin: bool = False, path: str | None = None
    ) -> None:
        """Allow only SuperAdmin/Admin (SuperAdmin alone when `superadmin`): the core's
        `Authorizer.require_admin`.

        Raises:
            PermissionDenied: any other role (audited by the Authorizer).
        """
        authorizer = self.vault.authorizer
        if authorizer.is_admin(caller.principal) and not superadmin:
            return
        await self.run(
            authorizer.require_admin,
            caller.principal,
            action,
            caller.actor,
            superadmin=superadmin,
            path=path,
        )

    async def require_manage(
        self, caller: Caller, roles: list[str], action: str, path: str
    ) -> None:
        """Allow managing users or tokens whose current or new `roles` are given: the core's
        `Authorizer.require_manage` (only a SuperAdmin manages Admin or SuperAdmin).

        Raises:
            PermissionDenied: refused (audited by the Authorizer).
        """
        await self.run(
            self.vault.authorizer.require_manage,
            caller.principal,
            roles,
            action,
            caller.actor,
            path=path,
        )

    async def require(
        self, caller: Caller, capability: str, action: str, path: str, mount: str = DEFAULT_MOUNT
    ) -> None:
        """Allow what the core's `Authorizer` allows: administrators, or a policy granting
        `capability` on `path` of `mount`. A cached "yes" costs no thread hop.

        Raises:
            PermissionDenied: nothing grants it (audited by the Authorizer).
        """
        authorizer = self.vault.authorizer
        if authorizer.allows_cached(caller.principal, capability, path, mount=mount):
            return
        await self.run(
            authorizer.require,
            caller.principal,
            capability,
            path,
            caller.actor,
            action=action,
            mount=mount,
        )

    async def list_filter(self, caller: Caller, prefix: str) -> Visible:
        """Which listed paths the caller sees (`Authorizer.list_filter`).

        Raises:
            PermissionDenied: no policy grants `list` anywhere (audited by the Authorizer).
        """
        return await self.run(
            self.vault.authorizer.list_filter, caller.principal, prefix, caller.actor
        )

    def close(self) -> None:
        """Stop the link and the thread pool, then close the vault (queued writes finish)."""
        self.link.close()
        self.executor.shutdown(wait=True)
        self.vault.close()
