"""The outbox is pruned on each backend: delivered rows go, failed ones after the retention,
pending ones never, in batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from strongroom import Vault
from strongroom.clock import ManualClock
from strongroom.core.webhook_sender import Sender, SendOptions
from tests.core.dbutil import raw_sql
from tests.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def statuses(dsn: str) -> dict[str, int]:
    rows = raw_sql(dsn, "SELECT status, COUNT(*) FROM vault_outbox GROUP BY status")
    return {status: int(n) for status, n in rows}


def test_prune_delivered_and_old_failed_in_batches(
    dsn: str, vault: Vault, receiver: Receiver, clock: ManualClock
) -> None:
    vault.events.add(receiver.url, events=["secret.created"])
    s = Sender(vault.state, SendOptions(retry_base=timedelta(hours=1), max_age=timedelta(0)))
    try:
        for n in range(5):
            vault.create_secret(f"ok/{n}", "v")
        assert s.run() == 5
        s.drain()
        receiver.fail_first = 1000  # from now on every attempt fails, and for good (max_age 0)
        for n in range(2):
            vault.create_secret(f"old/{n}", "v")
        assert s.run() == 2
        s.drain()
        clock.advance(timedelta(days=7, minutes=1))
        vault.create_secret("recent/0", "v")
        assert s.run() == 1
        s.drain()
    finally:
        s.close()
    vault.create_secret("waiting/0", "v")  # pending: never pruned
    assert statuses(dsn) == {"delivered": 5, "failed": 3, "pending": 1}
    assert vault.events.prune(timedelta(days=7), batch=2) == 7  # four transactions
    assert statuses(dsn) == {"failed": 1, "pending": 1}
    assert vault.events.prune(timedelta(days=7), batch=2) == 0
    (listed,) = vault.events.list()
    assert listed.failed == 1 and listed.pending == 1 and listed.last_error
