"""events: webhooks, the delivery outbox and expiry-reminder state

Revision ID: 0005
Revises: 0002

`vault_webhooks` (where to send which events), `vault_outbox` (one row per event and webhook,
written in the transaction of the change; the sender marks it delivered or failed) and
`vault_reminders` (which expiry reminders were sent, so a restart does not repeat them).
Branches adding 0003/0004 in parallel: the lead re-chains `down_revision` at merge.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import strongroom.storage.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_UTC = strongroom.storage.tables.UTCDateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vault_webhooks",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("path_prefix", sa.String(500), nullable=False),
        sa.Column("key_nonce", sa.String(64), nullable=False),
        sa.Column("allow_link_local", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "vault_outbox",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("next_attempt_at", _UTC, nullable=False),
        sa.Column("delivered_at", _UTC, nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("idx_vault_outbox_due", "vault_outbox", ["status", "next_attempt_at"])
    op.create_index("idx_vault_outbox_webhook", "vault_outbox", ["webhook_id", "status"])
    op.create_table(
        "vault_reminders",
        sa.Column("secret_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("expires_at", _UTC, nullable=False),
        sa.Column("lead_days", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sent_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("secret_id", "expires_at", "lead_days"),
    )


def downgrade() -> None:
    op.drop_table("vault_reminders")
    op.drop_index("idx_vault_outbox_webhook", "vault_outbox")
    op.drop_index("idx_vault_outbox_due", "vault_outbox")
    op.drop_table("vault_outbox")
    op.drop_table("vault_webhooks")
