"""recorded tokens, the revocation epoch, AppRole

Revision ID: 0004
Revises: 0002

`vault_tokens`: one row per recorded token (issue 15): accessor, SHA-256 of the token (never the
token), subject, role, policies, kind, issuer, created/expires/max-expires, renewal period,
a coarse last use and the creating token's accessor (`parent`: revoked with it).
`vault_token_epoch`: one row (id 1) whose counter every revocation and
renewal bumps; each server process polls it (at most once a second) to drop cached tokens.
`vault_approles` and `vault_approle_secrets`: AppRole roles and their hashed secret ids.
`vault_jwt_cutoffs`: per subject, the instant before which its stateless JWTs are refused.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import strongroom.storage.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = strongroom.storage.tables.UTCDateTime(timezone=True)
    op.create_table(
        "vault_tokens",
        sa.Column("accessor", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("policies", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("issuer", sa.BigInteger(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("expires_at", when, nullable=False),
        sa.Column("max_expires_at", when, nullable=False),
        sa.Column("ttl", sa.Integer(), nullable=False),
        sa.Column("last_used_at", when, nullable=True),
        sa.Column("parent", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("accessor"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("idx_vault_tokens_user_id", "vault_tokens", ["user_id"])
    op.create_index("idx_vault_tokens_expires_at", "vault_tokens", ["expires_at"])
    op.create_index("idx_vault_tokens_parent", "vault_tokens", ["parent"])
    op.create_table(
        "vault_token_epoch",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )

    op.create_table(
        "vault_approles",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.Column("policies", sa.Text(), nullable=False),
        sa.Column("token_ttl", sa.Integer(), nullable=False),
        sa.Column("token_max_ttl", sa.Integer(), nullable=False),
        sa.Column("secret_id_ttl", sa.Integer(), nullable=False),
        sa.Column("secret_id_num_uses", sa.Integer(), nullable=False),
        sa.Column("bound_cidrs", sa.Text(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("role_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "vault_approle_secrets",
        sa.Column("accessor", sa.String(length=64), nullable=False),
        sa.Column("role_name", sa.String(length=128), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("expires_at", when, nullable=True),
        sa.Column("uses_left", sa.Integer(), nullable=False),
        sa.Column("bound_cidrs", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("accessor"),
        sa.UniqueConstraint("secret_hash"),
    )
    op.create_index("idx_vault_approle_secrets_role", "vault_approle_secrets", ["role_name"])
    op.create_table(
        "vault_jwt_cutoffs",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("issued_before", when, nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("vault_jwt_cutoffs")
    op.drop_index("idx_vault_approle_secrets_role", table_name="vault_approle_secrets")
    op.drop_table("vault_approle_secrets")
    op.drop_table("vault_approles")
    op.drop_table("vault_token_epoch")
    op.drop_index("idx_vault_tokens_parent", table_name="vault_tokens")
    op.drop_index("idx_vault_tokens_expires_at", table_name="vault_tokens")
    op.drop_index("idx_vault_tokens_user_id", table_name="vault_tokens")
    op.drop_table("vault_tokens")
