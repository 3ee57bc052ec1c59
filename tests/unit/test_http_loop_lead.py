"""`LoopLead`: the writer's lead callback on an event loop, no self-wake from the loop's thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from strongroom.http.state import LoopLead, ServerState


class _Loop:
    """Records which scheduling call a lead used."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Callable[[], None]]] = []

    def call_soon(self, call: Callable[[], None]) -> None:
        self.calls.append(("call_soon", call))

    def call_soon_threadsafe(self, call: Callable[[], None]) -> None:
        self.calls.append(("call_soon_threadsafe", call))


def _noop() -> None:
    pass


def test_on_the_loops_thread_the_lead_does_not_wake_the_loop() -> None:
    loop = _Loop()
    lead = LoopLead(loop)  # type: ignore[arg-type]  # (the two calls it uses)
    lead(_noop)
    assert loop.calls == [("call_soon", _noop)]


def test_from_another_thread_the_lead_wakes_the_loop() -> None:
    loop = _Loop()
    lead = LoopLead(loop)  # type: ignore[arg-type]
    other = threading.Thread(target=lead, args=(_noop,))
    other.start()
    other.join()
    assert loop.calls == [("call_soon_threadsafe", _noop)]


def test_a_real_loop_runs_calls_from_its_thread_and_from_others() -> None:
    async def main() -> list[str]:
        lead = LoopLead(asyncio.get_running_loop())
        ran: list[str] = []
        done = asyncio.Event()

        def from_thread() -> None:
            ran.append("thread")
            done.set()

        lead(lambda: ran.append("loop"))
        threading.Thread(target=lead, args=(from_thread,)).start()
        await asyncio.wait_for(done.wait(), 10)
        return ran

    assert sorted(asyncio.run(main())) == ["loop", "thread"]


def test_the_server_hands_out_one_lead_per_loop() -> None:
    """The writer batches a tick's jobs by their lead (`==`): every request on one loop must get
    the same lead, and a new loop (a restarted lifespan) its own."""
    state: Any = SimpleNamespace(_lead=None)

    async def leads() -> list[LoopLead]:
        return [ServerState.lead(state), ServerState.lead(state)]

    first, again = asyncio.run(leads())
    assert first is again
    (other, _) = asyncio.run(leads())
    assert other is not first and other.loop is not first.loop
