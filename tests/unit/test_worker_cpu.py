"""`worker_cpu`: workers sharing the CPUs evenly take them in turn; otherwise none is bound."""

from __future__ import annotations

import pytest

from strongroom.http.serve import worker_cpu


@pytest.mark.parametrize(
    ("index", "workers", "allowed", "cpu"),
    [
        (0, 2, {0, 1}, 0),
        (1, 2, {0, 1}, 1),
        (0, 2, {5, 2}, 2),  # a cpuset (`taskset -c 2,5`): its CPUs in order
        (1, 2, {5, 2}, 5),
        (2, 4, {0, 1}, 0),  # twice as many workers as CPUs: in turn
        (3, 4, {0, 1}, 1),
        (3, 4, {7}, 7),
        (2, 3, {0, 1}, None),  # 3 workers on 2 CPUs: one CPU would carry two for good
        (0, 1, {0, 1}, None),  # one worker: the OS places it
        (1, 2, set(range(16)), None),  # fewer workers than CPUs (a CPU quota): unbound
    ],
)
def test_worker_cpu(index: int, workers: int, allowed: set[int], cpu: int | None) -> None:
    assert worker_cpu(index, workers, allowed) == cpu
