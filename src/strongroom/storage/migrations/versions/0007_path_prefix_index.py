"""PostgreSQL: an index for listing paths under a prefix

Revision ID: 0007
Revises: 0006

A folder listing (`kv_paths`, `secret_infos`, `list_paths`) asks for the paths of a mount that
start with a prefix. SQLite compares text bytewise, so the unique index on path already holds
them as one range. A PostgreSQL index follows the database's collation, where the paths under
a prefix are not one range, so every listing read every secret of the mount (13 ms for a
folder of 1,000 among 100,000 secrets, growing with the vault). `idx_vault_secrets_mount_path`
orders a mount's paths bytewise (`COLLATE "C"`): the listings read their folder as one range
of it (0.6 ms there). It replaces `idx_vault_secrets_mount_id`, whose lookups by mount alone
it serves too, so a new secret updates as many indexes as before. The rows do not change (a
backup of 0006 restores as it is).
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX idx_vault_secrets_mount_path"
            ' ON vault_secrets (mount_id, path COLLATE "C")'
        )
        op.drop_index("idx_vault_secrets_mount_id", table_name="vault_secrets")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("idx_vault_secrets_mount_id", "vault_secrets", ["mount_id"])
        op.drop_index("idx_vault_secrets_mount_path", table_name="vault_secrets")
