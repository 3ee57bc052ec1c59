"""Keeping the keep-alive connections of a `--workers N` server spread over its workers.

The workers share one listening socket: the kernel wakes every worker for a new connection and
the first to call `accept()` takes it, and uvloop then accepts every connection waiting. That
spreads short connections well (an idle worker is the quickest to accept), but a client that
opens its pool of keep-alive connections at once (an application's HTTP pool, a load generator)
often had most or all of them land on one worker, which then served them all while the other
idled: 16 of 16, 15 of 16 and 11 of 16 in measurements here (docs/decisions.md, "Speed, round
five").

So each worker publishes how many connections it serves in a table shared by all workers
(`ConnectionTable`, created by the supervisor), and a worker serving more than `SLACK` more
than another answers its next complete request with `Connection: close` (`Balance.crowded`):
the response is whole, the client opens a new connection for its next request (every HTTP/1.1
client does), and whichever worker accepts first takes it, usually the idle one; a crowded
worker may take it back, and closes again later. A connection counts once it has sent a request
(one that never does is no load), and one being closed this way no longer counts, so one
crowded moment closes only as many as the imbalance needs. A worker that is not serving yet, has
stopped, or has not shown a sign of life for `STALE` seconds (a blocked event loop) is left out,
and a worker closes at most one connection per `GAP` seconds: a peer that cannot accept never
turns into a stream of reconnections. Nothing is refused and no request is cut short; a
balanced server closes nothing, and accepting stays in uvloop's C code (a Python accept loop
with the same rule cost a third more CPU per one-request connection and 42 % of their
throughput).
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import socket
import time
from collections.abc import Sequence
from typing import Any

import uvicorn

from strongroom.http.uvserver import Server

__all__ = ["GAP", "HEARTBEAT", "SLACK", "STALE", "Balance", "BalancedServer", "ConnectionTable"]

#: How many more connections than another worker a worker may serve before it closes one.
SLACK = 1
#: How often a serving worker shows it is alive (seconds).
HEARTBEAT = 1.0
#: A worker silent for longer is left out of the comparison (its loop is blocked, or gone).
STALE = 3 * HEARTBEAT
#: The least time between two connections a worker closes for balance (seconds).
GAP = 0.01
#: A worker's count while it is not serving (starting, stopped).
_ABSENT = -1


class ConnectionTable:
    """How many connections each worker serves, and when each last showed it was alive, in
    memory shared by the workers (created by the supervisor before it spawns them, passed to
    each as a process argument). `time.monotonic` is one clock for every process on Linux."""

    def __init__(self, workers: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.counts: Any = ctx.RawArray(ctypes.c_int, [_ABSENT] * workers)
        self.seen: Any = ctx.RawArray(ctypes.c_double, workers)

    def __len__(self) -> int:
        return len(self.counts)


class Balance:
    """One worker's side of the table. Used from the worker's event loop only."""

    def __init__(self, table: ConnectionTable, index: int) -> None:
        self._counts, self._seen = table.counts, table.seen
        self._index = index
        self._others = [i for i in range(len(table)) if i != index]
        #: Connections that sent a request and are not being closed for balance.
        self.held = 0
        self._last_close = float("-inf")
        self._heartbeat: asyncio.TimerHandle | None = None
        self._serving = False

    # -- the worker's state ----------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """The worker serves: publish its count, and show it is alive every `HEARTBEAT`."""
        self._serving = True
        self._beat(loop)

    def stop(self) -> None:
        """The worker stops serving: the others stop comparing with it."""
        self._serving = False
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        self._counts[self._index] = _ABSENT

    def _beat(self, loop: asyncio.AbstractEventLoop) -> None:
        self._publish()
        self._heartbeat = loop.call_later(HEARTBEAT, self._beat, loop)

    def _publish(self) -> None:
        if self._serving:
            self._seen[self._index] = time.monotonic()
            self._counts[self._index] = self.held

    # -- connections -----------------------------------------------------------------------
    def joined(self) -> None:
        """A connection sent its first request."""
        self.held += 1
        self._publish()

    def left(self) -> None:
        """A counted connection closed (or stopped being HTTP: an upgrade)."""
        self.held -= 1
        self._publish()

    def crowded(self) -> bool:
        """Whether this worker serves more than `SLACK` more connections than a live worker,
        and has not closed one for balance in the last `GAP` seconds: its next keep-alive
        connection should be closed after its answer (`closing`)."""
        now = time.monotonic()
        if now - self._last_close < GAP:
            return False
        counts, seen, mine = self._counts, self._seen, self.held
        return any(0 <= counts[i] < mine - SLACK and now - seen[i] <= STALE for i in self._others)

    def closing(self) -> None:
        """A counted connection will be closed after its answer: it no longer counts."""
        self._last_close = time.monotonic()
        self.left()


class BalancedServer(Server):
    """The server of a worker of several: its `Balance` starts once the worker serves and
    stops when it stops."""

    def __init__(self, config: uvicorn.Config, balance: Balance) -> None:
        super().__init__(config)
        self._balance = balance

    async def startup(self, sockets: Sequence[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._balance.start(asyncio.get_running_loop())

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._balance.stop()
        await super().shutdown(sockets=sockets)
