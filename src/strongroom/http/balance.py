"""Keeping the keep-alive connections of a `--workers N` server spread over its workers.

The workers share one listening socket: the kernel wakes every worker for a new connection and
the first to call `accept()` takes it, and uvloop then accepts every connection waiting. That
spreads short connections well (an idle worker is the quickest to accept), but a client that
opens its pool of keep-alive connections at once (an application's HTTP pool, a load generator)
often had most or all of them land on one worker, which then served them all while the other
idled: 16 of 16, 15 of 16 and 11 of 16 in measurements here (docs/decisions.md, "Speed, round
five").

So each worker publishes how many connections it holds in a table shared by all workers
(`ConnectionTable`, created by the supervisor), and a worker holding more than `SLACK` more than
another answers its next request with `Connection: close` (`Balance.crowded`): the response is
complete, the client opens a new connection for its next request (every HTTP/1.1 client does),
and the least busy worker is the one that accepts it. A connection being closed this way no
longer counts, so one crowded moment closes only as many as the imbalance needs. Nothing is
refused and no request is cut short; a balanced server closes nothing, and accepting stays in
uvloop's C code (a Python accept loop with the same rule cost a third more CPU per one-request
connection and 42 % of their throughput).
"""

from __future__ import annotations

import ctypes
import multiprocessing
from typing import Any

__all__ = ["SLACK", "Balance", "ConnectionTable"]

#: How many more connections than another worker a worker may hold before it closes one.
SLACK = 1


class ConnectionTable:
    """How many connections each worker holds, in memory shared by the workers (created by the
    supervisor before it spawns them and passed to each as a process argument)."""

    def __init__(self, workers: int) -> None:
        self.counts: Any = multiprocessing.get_context("spawn").RawArray(ctypes.c_int, workers)

    def __len__(self) -> int:
        return len(self.counts)


class Balance:
    """One worker's side of the table: it publishes its own count and compares with the
    others'. Used from the worker's event loop only."""

    def __init__(self, table: ConnectionTable, index: int) -> None:
        self._counts = table.counts
        self._index = index
        self._others = [i for i in range(len(table)) if i != index]
        #: Connections answered with `Connection: close` and not closed yet.
        self.leaving = 0

    def publish(self, held: int) -> None:
        """Record that this worker holds `held` open connections (those leaving aside)."""
        self._counts[self._index] = held - self.leaving

    def crowded(self, held: int) -> bool:
        """Whether this worker, holding `held` connections, holds more than `SLACK` more than
        another worker: its next keep-alive connection should be closed after its answer."""
        mine = held - self.leaving
        counts = self._counts
        return any(counts[i] + SLACK < mine for i in self._others)
