"""One lock state for all worker processes of a server (DESIGN §9, threats B6).

The supervisor (`http.serve`) holds one pipe per worker. A worker that unlocks or locks its vault
publishes that to the supervisor, which applies it to every sibling and answers once all of them
have; only then does the worker answer its client, so the next request succeeds (or is refused)
on every worker. Auto-lock is decided by the supervisor from the activity the workers report
(each worker's own timer is off), so a busy worker keeps its idle siblings unlocked and an idle
server locks everywhere. The master key crosses the pipes in memory only: it is never written
to disk or to the database, and the supervisor does not keep it.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import threading
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any, Protocol

from strongroom import errors
from strongroom.core import Vault
from strongroom.models import Actor

__all__ = ["LocalLink", "PeerLink", "WorkerLink"]

log = logging.getLogger("strongroom.http")

BROADCAST_TIMEOUT = 120.0


class PeerLink(Protocol):
    """How a worker tells its siblings that the lock state changed."""

    def publish_unlock(self, master_key: str, actor: Actor) -> None:
        """Unlock every sibling with the key this worker has just verified."""
        ...

    def publish_lock(self, actor: Actor) -> None:
        """Lock every sibling."""
        ...

    def publish_auto_unlock(self, master_key: str, actor: Actor) -> None:
        """Unlock every auto-locked sibling again (`--auto-unlock`), audited as `auto_unlock`."""
        ...

    def close(self) -> None:
        """Stop background work."""
        ...


class LocalLink:
    """A server with a single process: nothing to tell anyone."""

    def publish_unlock(self, master_key: str, actor: Actor) -> None:
        """Nothing to do."""

    def publish_lock(self, actor: Actor) -> None:
        """Nothing to do."""

    def publish_auto_unlock(self, master_key: str, actor: Actor) -> None:
        """Nothing to do."""

    def close(self) -> None:
        """Nothing to do."""


class WorkerLink:
    """A worker's end of its pipe to the supervisor."""

    def __init__(self, conn: Connection, vault: Vault, report_interval: float) -> None:
        self._conn = conn
        self._vault = vault
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, Future[None]] = {}
        self._stop = threading.Event()
        self._interval = report_interval
        self._last_reported: float | None = None
        threading.Thread(target=self._receive, name="strongroom-peer", daemon=True).start()
        threading.Thread(target=self._report, name="strongroom-activity", daemon=True).start()
        self._send(("ready",))

    def publish_unlock(self, master_key: str, actor: Actor) -> None:
        """Unlock every sibling; returns once all have applied it."""
        self._broadcast("unlock", (master_key, actor))

    def publish_lock(self, actor: Actor) -> None:
        """Lock every sibling; returns once all have applied it."""
        self._broadcast("lock", (actor,))

    def publish_auto_unlock(self, master_key: str, actor: Actor) -> None:
        """Unlock every sibling again after an auto-lock; returns once all have applied it."""
        self._broadcast("auto_unlock", (master_key, actor))

    def close(self) -> None:
        """Stop the reporter; the receiver ends when the pipe closes."""
        self._stop.set()

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self._conn.send(message)

    def _broadcast(self, op: str, payload: tuple[Any, ...]) -> None:
        bid = next(self._ids)
        done: Future[None] = Future()
        self._waiting[bid] = done
        try:
            self._send(("bcast", bid, op, payload))
            done.result(timeout=BROADCAST_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise errors.StorageUnavailable("could not reach the other worker processes") from exc
        finally:
            self._waiting.pop(bid, None)

    def _receive(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                self._orphaned()
                return
            kind = message[0]
            if kind == "done":
                waiter = self._waiting.get(message[1])
                if waiter is not None:
                    waiter.set_result(None)
            elif kind == "apply":
                self._apply(message[2], message[3])
                if message[1] is not None:
                    self._send(("ack", message[1]))

    def _orphaned(self) -> None:
        """The supervisor is gone (killed, crashed): fail waiters and shut this worker down
        gracefully, so no worker keeps serving with a lock state nobody coordinates."""
        for pending in list(self._waiting.values()):
            if not pending.done():
                pending.set_exception(OSError("supervisor gone"))
        if not self._stop.is_set():
            log.error("the supervisor is gone; this worker shuts down")
            os.kill(os.getpid(), signal.SIGTERM)

    def _apply(self, op: str, payload: Any) -> None:
        """Apply a sibling's change. The sibling audited it, so this worker does not (one
        operation, one audit entry); of an auto-lock, the supervisor asks one worker to audit
        it (`auto_lock`) and the others only to drop their keys (`drop_keys`)."""
        try:
            if op == "unlock":
                key, _actor = payload
                self._vault.state.unlock_relayed(key)
            elif op == "auto_unlock":
                key, _actor = payload
                self._vault.state.unlock_relayed(key)
            elif op == "lock":
                self._vault.state.drop_keys()
            elif op == "drop_keys":
                self._vault.state.drop_keys(auto=True)
            elif op == "auto_lock":
                self._vault.state.auto_lock()
        except errors.StrongroomError as exc:
            log.error("worker could not apply %s from a sibling: %s", op, exc.code)

    def _report(self) -> None:
        while not self._stop.wait(self._interval):
            last = self._vault.health().last_access
            stamp = last.timestamp() if last is not None else None
            if stamp is not None and stamp != self._last_reported:
                self._last_reported = stamp
                try:
                    self._send(("activity", stamp))
                except OSError:
                    return
