"""kv v2 mount configuration

Revision ID: 0002
Revises: 0001

One row (id 1) holding the mount-wide KV v2 settings of `/v1/secret/config`: max_versions,
cas_required and delete_version_after (seconds). No row means all zeros (Vault's defaults).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import strongroom.storage.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vault_kv_config",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("max_versions", sa.Integer(), nullable=False),
        sa.Column("cas_required", sa.Boolean(), nullable=False),
        sa.Column("delete_version_after", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at", strongroom.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("vault_kv_config")
