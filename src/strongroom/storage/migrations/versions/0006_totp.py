"""TOTP second factor of built-in users

Revision ID: 0006
Revises: 0005

`vault_users.totp_seed`: the user's TOTP seed sealed under the server's TOTP key (never the
seed in clear; NULL: no second factor). `vault_users.totp_last_step`: the last 30-second time
step a code was accepted for, so a code cannot be used twice (across workers and instances).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vault_users") as batch:
        batch.add_column(sa.Column("totp_seed", sa.Text(), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vault_users") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_seed")
