"""`http.state.on_loop`: the event loop's view of a writer future (as `asyncio.wrap_future`),
copied at once when the future is set on the loop's own thread."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

import pytest

from strongroom import errors
from strongroom.http.state import on_loop


def test_set_on_the_loop_thread_is_seen_without_another_turn() -> None:
    async def main() -> None:
        future: Future[int] = Future()
        view = on_loop(future)
        future.set_result(7)  # (as `Writer._answer` does, through the loop's lead)
        assert view.done() and view.result() == 7

    asyncio.run(main())


def test_set_from_another_thread_reaches_the_loop() -> None:
    async def main() -> None:
        future: Future[int] = Future()
        view = on_loop(future)
        threading.Thread(target=future.set_result, args=(8,)).start()
        assert await asyncio.wait_for(view, 15) == 8

    asyncio.run(main())


def test_an_error_is_raised_by_the_view() -> None:
    async def main() -> None:
        future: Future[int] = Future()
        view = on_loop(future)
        threading.Thread(
            target=future.set_exception, args=(errors.StorageUnavailable("down"),)
        ).start()
        with pytest.raises(errors.StorageUnavailable):
            await asyncio.wait_for(view, 15)

    asyncio.run(main())


def test_a_done_future_and_a_cancelled_view() -> None:
    async def main() -> None:
        done: Future[int] = Future()
        done.set_result(1)
        assert await on_loop(done) == 1  # already done: copied at once
        future: Future[int] = Future()
        view = on_loop(future)
        view.cancel()  # the request went away
        future.set_result(2)  # nothing to copy into, no error
        assert view.cancelled() and future.result() == 2

    asyncio.run(main())


def test_views_of_one_future_raise_their_own_copy_of_its_error() -> None:
    """Joined reads share one future: each request raises its own copy of the batch's error
    (same class, message and cause), so no shared traceback grows with each of them."""

    async def main() -> None:
        future: Future[int] = Future()
        views = [on_loop(future) for _ in range(3)]
        shared = errors.StorageUnavailable(cause="disk full")
        future.set_exception(shared)
        raised = []
        for view in views:
            with pytest.raises(errors.StorageUnavailable) as caught:
                await view
            raised.append(caught.value)
        assert len({id(e) for e in raised}) == 3 and shared not in raised
        assert {(e.message, e.cause) for e in raised} == {(shared.message, "disk full")}
        assert shared.__traceback__ is None  # never raised itself

    asyncio.run(main())
