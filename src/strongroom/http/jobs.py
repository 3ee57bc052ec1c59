"""The server's background jobs, on the core's `Scheduler`: TTL cleanup and the expiry gauges.

- `cleanup` (every `--cleanup-interval`, default 1 h; 0 turns it off) runs in ONE process across
  every worker and instance on the database: the leader (a PostgreSQL advisory lock; on SQLite
  the single worker, or worker 0 of a supervisor). It calls the core's batched, audited
  `cleanup_expired` as the system actor, when anything has expired. A locked vault is skipped,
  except that with `--auto-unlock` an auto-locked vault is unlocked again first (audited
  `auto_unlock`).
- `expiry-reminders` (every `STRONGROOM_REMINDER_INTERVAL`, default 5 min) and `webhook-sender`
  (every `STRONGROOM_WEBHOOK_INTERVAL`, default 1 s) run in the leader too: reminders become
  outbox rows (`core.events`), the sender delivers the outbox (`core.webhook_sender`).
  `outbox-prune` (every minute, leader) deletes delivered outbox rows and failed ones older
  than `STRONGROOM_OUTBOX_RETENTION` (default 7 days), 1,000 per transaction.
- `expiry-gauges` runs in every process on the same period (hourly when cleanup is off), and
  after each cleanup: it refreshes `strongroom_secrets_nearing_expiry` and
  `strongroom_secrets_expired` (metadata only, no key needed).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from strongroom.config import Settings
from strongroom.core import Vault
from strongroom.core.scheduler import Job, Scheduler
from strongroom.core.webhook_sender import Sender
from strongroom.http.autounlock import AutoUnlocker
from strongroom.http.metrics import ExpiryCounts
from strongroom.models import SYSTEM_ACTOR

__all__ = ["LEADER_LEASE", "server_scheduler"]

log = logging.getLogger("strongroom.jobs")

#: The name of the leadership lease the cleanup job runs under.
LEADER_LEASE = "jobs"
_GAUGE_PERIOD_WHEN_OFF = timedelta(hours=1)
TOKEN_EPOCH_PERIOD = 0.5
_PRUNE_PERIOD = timedelta(minutes=1)


def _refresh(vault: Vault, counts: ExpiryCounts) -> None:
    counts.nearing_expiry = vault.secrets.count_expiring(counts.window)
    counts.expired = vault.secrets.count_expired()


def _cleanup(vault: Vault, counts: ExpiryCounts, unlocker: AutoUnlocker | None) -> None:
    if vault.secrets.count_expired() == 0:  # nothing to do: no unlock, no audit entry
        _refresh(vault, counts)
        return
    if unlocker is not None:
        unlocker.unlock_now(SYSTEM_ACTOR)
    if vault.is_locked:
        log.warning("cleanup skipped: the vault is locked")
    else:
        removed = vault.cleanup_expired(actor=SYSTEM_ACTOR)
        if removed:
            log.warning("cleanup removed %d expired secret(s)", removed)
    _refresh(vault, counts)


def server_scheduler(
    settings: Settings,
    vault: Vault,
    counts: ExpiryCounts,
    *,
    may_lead: bool,
    unlocker: AutoUnlocker | None = None,
    sender: Sender | None = None,
) -> Scheduler:
    """The scheduler of one server process (not started). `may_lead` is False for the workers
    of a supervisor other than worker 0 (on SQLite they would all win the lease)."""
    interval = settings.cleanup_interval.total_seconds()
    gauge_every = interval or _GAUGE_PERIOD_WHEN_OFF.total_seconds()
    jobs = [
        Job("expiry-gauges", gauge_every, lambda: _refresh(vault, counts), at_start=True),
        Job("cleanup", interval, lambda: _cleanup(vault, counts, unlocker), leader_only=True),
        # Recorded tokens: the revocation epoch twice a second, so requests rarely wait for it
        # (`Tokens.verify` re-reads it itself when it is older than a second); last use once
        # a minute; expired records hourly, in one process.
        Job("token-epoch", TOKEN_EPOCH_PERIOD, vault.tokens.refresh, at_start=True),
        Job("token-last-used", 60.0, vault.tokens.flush_last_used),
        Job("token-cleanup", 3600.0, vault.tokens.cleanup_expired, leader_only=True),
        Job(
            "expiry-reminders",
            settings.reminder_interval,
            lambda: vault.events.remind(settings.reminder_lead_days),
            leader_only=True,
            at_start=True,
        ),
        Job(
            "outbox-prune",
            _PRUNE_PERIOD.total_seconds(),
            lambda: vault.events.prune(settings.outbox_retention),
            leader_only=True,
        ),
    ]
    if sender is not None:
        jobs.append(Job("webhook-sender", settings.webhook_interval, sender.run, leader_only=True))
    lead = (lambda: vault.state.storage.try_lead(LEADER_LEASE)) if may_lead else None
    return Scheduler(jobs, lead=lead)
