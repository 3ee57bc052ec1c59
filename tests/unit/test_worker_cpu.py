"""`worker_cpu`: with a worker per CPU, the workers take the CPUs they may run on in turn."""

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
        (2, 3, {0, 1}, 0),  # more workers than CPUs: round robin
        (3, 4, {7}, 7),
        (0, 1, {0, 1}, None),  # one worker: the OS places it
        (1, 2, set(range(16)), None),  # fewer workers than CPUs (a CPU quota): unbound
    ],
)
def test_worker_cpu(index: int, workers: int, allowed: set[int], cpu: int | None) -> None:
    assert worker_cpu(index, workers, allowed) == cpu
