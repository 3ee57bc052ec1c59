"""Readiness for orchestrators: is this server ready to serve secret operations?

Liveness is `/api/vault/health` as the design document has it (the process answers; a locked
vault is alive). Readiness (`?ready=1` there and on `/v1/sys/health`) is 503 while the vault is
locked, unless it locked itself while idle and `--auto-unlock` will open it at the next request,
and while the database does not answer. The database check runs in the thread pool under a short
timeout, so it never blocks the event loop; one check at a time (probes arriving meanwhile
share it), so a hung database cannot pile up threads.
"""

from __future__ import annotations

import asyncio
from typing import Any

from strongroom import errors
from strongroom.core import Vault

__all__ = ["DB_CHECK_TIMEOUT", "STALE_AFTER", "ReadinessProbe"]

#: Seconds the database gets to answer a readiness check.
DB_CHECK_TIMEOUT = 2.0
#: Seconds after which a check that never finished is abandoned for a new one.
STALE_AFTER = 10 * DB_CHECK_TIMEOUT


def _database_answers(vault: Vault) -> None:
    with vault.state.storage.read() as tx:
        tx.keys.get_keys()


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve a finished check's outcome, so one nobody waited for is not reported."""
    if not future.cancelled():
        future.exception()


class ReadinessProbe:
    """The readiness answer of one server process."""

    def __init__(self, vault: Vault, *, auto_unlock: bool) -> None:
        self._vault = vault
        self._auto_unlock = auto_unlock
        self._pending: asyncio.Future[Any] | None = None
        self._started = 0.0

    def lock_state_ready(self) -> bool:
        """Unlocked, or auto-locked on a server that unlocks itself again (lock-free)."""
        state = self._vault.state
        return state.is_unlocked or (self._auto_unlock and state.is_auto_locked)

    async def check(self, executor: Any) -> str | None:
        """None when ready, else the reason (`locked`, `database unavailable`)."""
        if not self.lock_state_ready():
            return "locked"
        if not await self._database_ok(executor):
            return "database unavailable"
        return None

    async def _database_ok(self, executor: Any) -> bool:
        loop = asyncio.get_running_loop()
        future = self._pending
        # A check hung far beyond its timeout (a connection the network swallowed) is given
        # up, so a recovered database is seen: at most one abandoned thread per STALE_AFTER.
        if future is None or future.done() or loop.time() - self._started > STALE_AFTER:
            self._started = loop.time()
            future = self._pending = loop.run_in_executor(executor, _database_answers, self._vault)
            future.add_done_callback(_consume)
        try:
            await asyncio.wait_for(asyncio.shield(future), DB_CHECK_TIMEOUT)
        except (TimeoutError, errors.StrongroomError):
            return False
        return True
