"""Tables of outgoing events (migration 0005): webhooks, the delivery outbox, reminder state.

Kept apart from `tables.py` so that the event tables stay one concept; they share its metadata.
No secret value is ever stored here: a webhook's signing secret is derived from the vault's
audit key and the row's `key_nonce` (`core.events`), so the database alone cannot sign.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from strongroom.storage.tables import ID, UTCDateTime, metadata

__all__ = ["outbox", "reminders", "webhooks"]

webhooks = Table(
    "vault_webhooks",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("url", String(2000), nullable=False),
    Column("events", Text, nullable=False),  # JSON list of event names; [] = every event
    Column("path_prefix", String(500), nullable=False, default=""),
    Column("key_nonce", String(64), nullable=False),
    Column("allow_link_local", Boolean, nullable=False, default=False),
    Column("created_by", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)

outbox = Table(
    "vault_outbox",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("webhook_id", BigInteger, nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("event", String(50), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("last_error", String(200), nullable=True),
    Index("idx_vault_outbox_due", "status", "next_attempt_at"),
    Index("idx_vault_outbox_webhook", "webhook_id", "status"),
    sqlite_autoincrement=True,
)

reminders = Table(
    "vault_reminders",
    metadata,
    Column("secret_id", BigInteger, primary_key=True, autoincrement=False),
    Column("expires_at", UTCDateTime, primary_key=True),
    Column("lead_days", Integer, primary_key=True, autoincrement=False),  # 0: expired
    Column("sent_at", UTCDateTime, nullable=False),
)
