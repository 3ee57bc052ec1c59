"""secrets engine mounts

Revision ID: 0003
Revises: 0002

`vault_mounts`: one row per KV secrets engine (path, type, options version, description, config,
uuid, accessor, and the KV v2 settings that 0002 kept in `vault_kv_config`, folded in here).
`secret/` (KV v2, id 1) is seeded with the old mount-wide settings; `vault_kv_config` is dropped.
`vault_secrets.mount_id` names a secret's mount (1, `secret/`, for every existing row). A key of
another mount is stored with the path `<mount id>:<key>` (":" never occurs in a key), so the
unique path index keeps keys of different mounts apart and the path bound into the AAD names
the mount; existing rows keep their paths, so every existing ciphertext still decrypts.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import strongroom.storage.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SECRET_UUID = "00000000-0000-4000-8000-000000000002"  # noqa: S105 - an id, not a secret
SECRET_ACCESSOR = "kv_strongroom"  # noqa: S105 - an id, not a secret


def upgrade() -> None:
    mounts = op.create_table(
        "vault_mounts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("path", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("accessor", sa.String(length=64), nullable=False),
        sa.Column("max_versions", sa.Integer(), nullable=False),
        sa.Column("cas_required", sa.Boolean(), nullable=False),
        sa.Column("delete_version_after", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", strongroom.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", strongroom.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("path", name="uq_vault_mounts_path"),
        sqlite_autoincrement=True,
    )
    conn = op.get_bind()
    old = conn.execute(
        sa.text(
            "SELECT max_versions, cas_required, delete_version_after FROM vault_kv_config"
            " WHERE id = 1"
        )
    ).first()
    now = datetime.now(UTC)
    op.bulk_insert(
        mounts,
        [
            {
                "id": 1,
                "path": "secret/",
                "type": "kv",
                "version": 2,
                "description": "key/value secret storage",
                "config": "{}",
                "uuid": SECRET_UUID,
                "accessor": SECRET_ACCESSOR,
                "max_versions": old[0] if old else 0,
                "cas_required": bool(old[1]) if old else False,
                "delete_version_after": old[2] if old else 0,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    if conn.dialect.name == "postgresql":
        # The explicit id 1 above does not advance the sequence.
        conn.execute(sa.text("SELECT setval('vault_mounts_id_seq', 1)"))
    op.drop_table("vault_kv_config")
    with op.batch_alter_table("vault_secrets", recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("mount_id", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        batch_op.create_index("idx_vault_secrets_mount_id", ["mount_id"], unique=False)


def downgrade() -> None:
    kv_config = op.create_table(
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
    conn = op.get_bind()
    row = conn.execute(
        sa.text(
            "SELECT max_versions, cas_required, delete_version_after, updated_at"
            " FROM vault_mounts WHERE id = 1"
        )
    ).first()
    if row is not None:
        op.bulk_insert(
            kv_config,
            [
                {
                    "id": 1,
                    "max_versions": row[0],
                    "cas_required": bool(row[1]),
                    "delete_version_after": row[2],
                    "updated_at": datetime.now(UTC),
                }
            ],
        )
    # Keys of other mounts cannot live in the single-mount schema.
    conn.execute(
        sa.text(
            "DELETE FROM vault_secret_versions WHERE secret_id IN"
            " (SELECT id FROM vault_secrets WHERE mount_id <> 1)"
        )
    )
    conn.execute(sa.text("DELETE FROM vault_secrets WHERE mount_id <> 1"))
    op.drop_index("idx_vault_secrets_mount_id", table_name="vault_secrets")
    if conn.dialect.name == "postgresql":
        # SQLite would rebuild the table, and with foreign keys on the rebuild's DROP TABLE
        # cascades to every version: the (then unused) column stays there.
        op.drop_column("vault_secrets", "mount_id")
    op.drop_table("vault_mounts")
