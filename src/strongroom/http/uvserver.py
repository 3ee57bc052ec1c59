"""`Server`: uvicorn's server as `vaultctl server` runs it (`http.serve`, `http.balance`).

Once a worker serves, the objects built so far (modules, the app, the vault's services and
SQLAlchemy's metadata: nearly every object the process will ever hold) are moved out of the
garbage collector's sight (`gc.freeze`). They live as long as the worker; a full collection
walked all of them, every few seconds under load, and each such pause fell on the requests
in flight: p99 of reads at c=64 34 -> 12 ms, mixed 19 -> 8 ms, throughput +3-4 %
(docs/decisions.md, "Speed, round six"). Only the servers started here freeze: an app built
in a test's process does not.
"""

from __future__ import annotations

import gc
import socket
from collections.abc import Sequence

import uvicorn

__all__ = ["Server"]


class Server(uvicorn.Server):
    """uvicorn's server; freezes the heap built before it serves (see the module)."""

    async def startup(self, sockets: Sequence[socket.socket] | None = None) -> None:
        await super().startup(sockets=list(sockets) if sockets is not None else None)
        if self.started:
            gc.collect()  # (what is garbage already is not frozen)
            gc.freeze()
