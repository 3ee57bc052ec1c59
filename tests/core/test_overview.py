"""`Secrets.overview`: the count of secrets and those expiring soon, for the console's dashboard."""

from __future__ import annotations

from datetime import timedelta

from strongroom import Vault
from strongroom.clock import ManualClock


def test_overview_counts_and_lists_the_soonest_first(vault: Vault, clock: ManualClock) -> None:
    vault.create_secret("a/never", "v")
    vault.create_secret("a/later", "v", expires_in=timedelta(days=20))
    vault.create_secret("a/soon", "v", expires_in=timedelta(days=2))
    vault.create_secret("a/far", "v", expires_in=timedelta(days=90))
    count, soon = vault.secrets.overview(timedelta(days=30))
    assert count == 4
    assert [i.path for i in soon] == ["a/soon", "a/later"]
    clock.advance(timedelta(days=3))
    assert [i.path for i in vault.secrets.overview(timedelta(days=30))[1]] == ["a/later"]
    assert len(vault.secrets.overview(timedelta(days=365), limit=1)[1]) == 1
