"""`http.balance`: when a worker's next keep-alive connection is closed for balance."""

from __future__ import annotations

from strongroom.http.balance import SLACK, Balance, ConnectionTable


def test_a_worker_is_crowded_only_beyond_the_slack() -> None:
    table = ConnectionTable(2)
    first, second = Balance(table, 0), Balance(table, 1)
    second.publish(5)
    assert not first.crowded(5)
    assert not first.crowded(5 + SLACK)
    assert first.crowded(6 + SLACK)
    first.publish(16)
    assert list(table.counts) == [16, 5]
    assert not second.crowded(5)  # the less loaded worker closes nothing


def test_connections_leaving_no_longer_count() -> None:
    table = ConnectionTable(2)
    first, second = Balance(table, 0), Balance(table, 1)
    second.publish(0)
    held = 4
    closed = 0
    while first.crowded(held):  # one crowded moment closes only what the imbalance needs
        first.leaving += 1
        first.publish(held)
        closed += 1
    assert closed == held - SLACK
    assert table.counts[0] == SLACK
    assert not second.crowded(0)


def test_every_other_worker_is_compared() -> None:
    table = ConnectionTable(3)
    workers = [Balance(table, i) for i in range(3)]
    workers[0].publish(4)
    workers[1].publish(9)
    workers[2].publish(2)
    assert workers[0].crowded(4)  # worker 2 holds fewer
    assert not workers[2].crowded(2)
    assert workers[1].crowded(9)
