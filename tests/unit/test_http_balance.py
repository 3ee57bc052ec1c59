"""`http.balance`: when a worker's next keep-alive connection is closed for balance."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from strongroom.http import balance as b
from strongroom.http.balance import SLACK, Balance, ConnectionTable


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    new = asyncio.new_event_loop()
    yield new
    new.close()


def _serving(
    table: ConnectionTable, index: int, held: int, loop: asyncio.AbstractEventLoop
) -> Balance:
    worker = Balance(table, index)
    worker.start(loop)
    for _ in range(held):
        worker.joined()
    return worker


def test_a_worker_is_crowded_only_beyond_the_slack(loop: asyncio.AbstractEventLoop) -> None:
    table = ConnectionTable(2)
    first, second = _serving(table, 0, 5, loop), _serving(table, 1, 5, loop)
    for _ in range(SLACK):
        first.joined()
    assert not first.crowded()
    first.joined()
    assert first.crowded()
    assert list(table.counts) == [6 + SLACK, 5]
    assert not second.crowded()  # the less loaded worker closes nothing


def test_connections_being_closed_no_longer_count(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(b, "GAP", 0.0)
    table = ConnectionTable(2)
    first, _ = _serving(table, 0, 4, loop), _serving(table, 1, 0, loop)
    closed = 0
    while first.crowded():  # one crowded moment closes only what the imbalance needs
        first.closing()
        closed += 1
    assert closed == 4 - SLACK
    assert table.counts[0] == SLACK


def test_at_most_one_close_per_gap(loop: asyncio.AbstractEventLoop) -> None:
    table = ConnectionTable(2)
    first, _ = _serving(table, 0, 8, loop), _serving(table, 1, 0, loop)
    assert first.crowded()
    first.closing()
    assert not first.crowded()  # within GAP of the last close
    deadline = time.monotonic() + 5
    while not first.crowded():
        assert time.monotonic() < deadline
        time.sleep(b.GAP / 2)


def test_absent_and_silent_workers_are_left_out(loop: asyncio.AbstractEventLoop) -> None:
    table = ConnectionTable(3)
    first = _serving(table, 0, 6, loop)
    assert not first.crowded()  # the others have not started serving
    second = _serving(table, 1, 0, loop)
    assert first.crowded()
    second.stop()
    assert table.counts[1] == -1
    assert not first.crowded()
    third = _serving(table, 2, 0, loop)
    table.seen[2] = time.monotonic() - b.STALE - 1  # its loop has been blocked
    assert not first.crowded()
    third.joined()  # a sign of life
    assert first.crowded()


def test_every_other_worker_is_compared(loop: asyncio.AbstractEventLoop) -> None:
    table = ConnectionTable(3)
    workers = [_serving(table, i, n, loop) for i, n in enumerate((4, 9, 2))]
    assert workers[0].crowded()  # worker 2 serves fewer
    assert not workers[2].crowded()
    assert workers[1].crowded()
