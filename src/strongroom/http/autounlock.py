"""Unattended unlock (`vaultctl server --auto-unlock`): after an auto-lock, the first
authenticated request (or the cleanup job) unlocks the vault again from the server's key
source, and every sibling worker with it.

The unlock is the core's, audited as `auto_unlock` with the actor that triggered it. Argon2 is
paid once: concurrent requests wait on one asyncio lock (no pool thread held while waiting),
and whoever gets it second finds the vault unlocked. An explicit lock (an administrator's
`/lock` or `sys/seal`) is not undone: only an auto-lock is. This module must never log or put
into an error the master key.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from strongroom.config import Secret
from strongroom.core import Vault
from strongroom.http.control import PeerLink
from strongroom.models import Actor

__all__ = ["AutoUnlocker"]


class AutoUnlocker:
    """Unlocks `vault` again from `master_key` after an auto-lock."""

    def __init__(self, vault: Vault, link: PeerLink, master_key: Secret) -> None:
        self._vault = vault
        self._link = link
        self._key = master_key
        self._async_lock = asyncio.Lock()
        self._thread_lock = threading.Lock()

    def is_needed(self) -> bool:
        """True when the vault is auto-locked, or due for its auto-lock (lock-free check)."""
        state = self._vault.state
        if not state.is_unlocked:
            return state.is_auto_locked
        config = state.config
        last = state.last_access
        return (
            config.auto_lock
            and last is not None
            and state.clock.now() - last >= config.auto_lock_timeout
        )

    async def ensure(self, actor: Actor, run: Callable[..., Awaitable[Any]]) -> None:
        """Unlock if needed before a request of `actor` runs (`run` hands the blocking part
        to the thread pool).

        Raises:
            StrongroomError: the unlock failed (the key source no longer opens the vault).
        """
        if not self.is_needed():
            return
        async with self._async_lock:
            await run(self.unlock_now, actor)

    def unlock_now(self, actor: Actor) -> bool:
        """Unlock (and tell the siblings) if the vault is auto-locked; say whether it did.

        Raises:
            StrongroomError: the unlock failed.
        """
        with self._thread_lock:
            state = self._vault.state
            state.check_idle()  # apply a due auto-lock first, so the unlock follows it
            if state.is_unlocked or not state.is_auto_locked:
                return False
            key = self._key.reveal()
            self._vault.auto_unlock(key, actor=actor)
            self._link.publish_auto_unlock(key, actor)
            return True
