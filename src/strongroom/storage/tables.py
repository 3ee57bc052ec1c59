"""SQLAlchemy Core table definitions (DESIGN §4). Migrations create these; code queries them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

__all__ = [
    "approle_secrets",
    "approles",
    "audit_logs",
    "jwt_cutoffs",
    "key_terms",
    "keys",
    "metadata",
    "mounts",
    "policies",
    "secret_versions",
    "secrets",
    "token_epoch",
    "tokens",
    "users",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite stores naive text; we re-attach UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, straight to the text SQLAlchemy stores (`YYYY-MM-DD HH:MM:SS.ffffff`,
        UTC): its two steps cost ~3 us a value, several per audit row and KV write."""
        if dialect.name == "sqlite":
            return _sqlite_text
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        """On SQLite, the stored text straight to an aware UTC datetime with the C parser:
        SQLAlchemy's regex parse plus the `process_result_value` above cost ~3 % of a KV read
        (the same values: `tests/contract/test_driver_statements.py`)."""
        if dialect.name == "sqlite":
            return _sqlite_utc
        return super().result_processor(dialect, coltype)


def _sqlite_text(value: datetime | None) -> str | None:
    """An aware datetime as SQLite stores it (`_sqlite_utc` reads it back); a naive one is
    taken as local time, as `UTCDateTime.process_bind_param` does."""
    if value is None:
        return None
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    return utc.isoformat(" ", "microseconds")[:26]


def _sqlite_utc(value: Any) -> datetime | None:
    """SQLite's stored `YYYY-MM-DD HH:MM:SS[.ffffff]` as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) > 10:  # (a time of day: the offset parsed with it, no `replace`, 6x faster)
            try:
                return datetime.fromisoformat(value + "+00:00")
            except ValueError:  # text with an offset of its own (not written by this type)
                pass
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)  # type: ignore[no-any-return]


def _sqlite_utc_column(values: Sequence[Any]) -> list[datetime | None]:
    """`_sqlite_utc` of every value of a column (`txbase.fetch_columns`): one comprehension
    over text this type wrote, about twice as fast as a call per value (a listing of 1,000
    secrets parses 2,000 of them); anything else, value by value as `_sqlite_utc` (a date
    alone too: `fromisoformat` ignores an offset after it)."""
    parse = datetime.fromisoformat
    try:
        return [
            None if v is None else parse(v + "+00:00") if len(v) > 10 else _sqlite_utc(v)
            for v in values
        ]
    except (TypeError, ValueError):  # not text, or text with an offset of its own
        return [_sqlite_utc(v) for v in values]


#: Converters of a whole result column, by the per-value converter they stand for.
COLUMN_CONVERTERS: dict[Callable[[Any], Any], Callable[[Sequence[Any]], list[Any]]] = {
    _sqlite_utc: _sqlite_utc_column
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; BIGINT elsewhere.
ID = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

keys = Table(
    "vault_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("vault_id", String(64), nullable=False),
    Column("salt", LargeBinary, nullable=False),
    Column("kdf_params", Text, nullable=False),
    Column("wrapped_root", Text, nullable=False),
    Column("rotation", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

key_terms = Table(
    "vault_key_terms",
    metadata,
    Column("term", Integer, primary_key=True, autoincrement=False),
    Column("wrapped_key", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("encryptions", BigInteger, nullable=False, default=0),
)

secrets = Table(
    "vault_secrets",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("path", String(500), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("created_by", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("metadata", Text, nullable=True),
    Column("max_versions", Integer, nullable=False, default=0),
    Column("cas_required", Boolean, nullable=False, default=False),
    Column("delete_version_after", Integer, nullable=False, default=0),
    # Last: added by migration 0003 (row converters unpack columns in table order).
    Column("mount_id", Integer, nullable=False, default=1, server_default="1"),
    Index("idx_vault_secrets_created_by", "created_by"),
    # SQLite only since migration 0007: PostgreSQL's idx_vault_secrets_mount_path (below)
    # serves lookups by mount alone too.
    Index("idx_vault_secrets_mount_id", "mount_id").ddl_if(dialect="sqlite"),
    Index("idx_vault_secrets_expires_at", "expires_at"),
    sqlite_autoincrement=True,
)
# PostgreSQL only (migration 0007): a mount's paths in bytewise order, where the paths under a
# prefix are one range (`txbase.prefix_range`). SQLite's unique index on path already is one.
Index("idx_vault_secrets_mount_path", secrets.c.mount_id, secrets.c.path.collate("C")).ddl_if(
    dialect="postgresql"
)

secret_versions = Table(
    "vault_secret_versions",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("secret_id", ID, ForeignKey("vault_secrets.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("value", Text, nullable=True),
    Column("key_term", Integer, nullable=True),
    Column("updated_by", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True),
    Column("destroyed", Boolean, nullable=False, default=False),
    UniqueConstraint("secret_id", "version", name="uq_vault_secret_versions_secret_version"),
    Index("idx_vault_secret_versions_key_term", "key_term"),
    sqlite_autoincrement=True,
)

audit_logs = Table(
    "vault_audit_logs",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("timestamp", UTCDateTime, nullable=False),
    Column("secret_id", BigInteger, nullable=True),
    Column("path", String(500), nullable=True),
    Column("user_id", BigInteger, nullable=False),
    Column("action", String(50), nullable=False),
    Column("ip_address", String(64), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("error", String(64), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("mac", String(80), nullable=True),
    Index("idx_vault_audit_logs_secret_id", "secret_id"),
    Index("idx_vault_audit_logs_user_id", "user_id"),
    Index("idx_vault_audit_logs_timestamp", "timestamp"),
    Index("idx_vault_audit_logs_path", "path"),
    sqlite_autoincrement=True,
)

users = Table(
    "vault_users",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("username", String(128), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(64), nullable=False),
    Column("policies", Text, nullable=False, default="[]"),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    # TOTP second factor (0006): the seed sealed under the server's TOTP key, and the last
    # time step a code was accepted for (a code is never accepted twice).
    Column("totp_seed", Text, nullable=True),
    Column("totp_last_step", BigInteger, nullable=True),
    sqlite_autoincrement=True,
)

policies = Table(
    "vault_policies",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("rules", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

mounts = Table(
    "vault_mounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("path", String(200), nullable=False),
    Column("type", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("description", Text, nullable=False),
    Column("config", Text, nullable=False),
    Column("uuid", String(36), nullable=False),
    Column("accessor", String(64), nullable=False),
    Column("max_versions", Integer, nullable=False, default=0),
    Column("cas_required", Boolean, nullable=False, default=False),
    Column("delete_version_after", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("path", name="uq_vault_mounts_path"),
    sqlite_autoincrement=True,
)

#: Recorded tokens (issue 15): a hash of the token, never the token itself.
tokens = Table(
    "vault_tokens",
    metadata,
    Column("accessor", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", BigInteger, nullable=False),
    Column("role", String(64), nullable=False),
    Column("policies", Text, nullable=False, default="[]"),
    Column("kind", String(32), nullable=False),
    Column("issuer", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("max_expires_at", UTCDateTime, nullable=False),
    Column("ttl", Integer, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("parent", String(64), nullable=True),
    Index("idx_vault_tokens_user_id", "user_id"),
    Index("idx_vault_tokens_parent", "parent"),
    Index("idx_vault_tokens_expires_at", "expires_at"),
)

#: One row (id 1): a counter bumped by every revocation or renewal, polled by every process.
token_epoch = Table(
    "vault_token_epoch",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("epoch", BigInteger, nullable=False),
)

#: AppRole roles (issue 15): machine logins; `id` is the token subject's base (never reused).
approles = Table(
    "vault_approles",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("role_id", String(64), nullable=False, unique=True),
    Column("policies", Text, nullable=False, default="[]"),
    Column("token_ttl", Integer, nullable=False),
    Column("token_max_ttl", Integer, nullable=False),
    Column("secret_id_ttl", Integer, nullable=False),
    Column("secret_id_num_uses", Integer, nullable=False),
    Column("bound_cidrs", Text, nullable=False, default="[]"),
    Column("created_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)

#: An AppRole's secret ids: a SHA-256 of each, never the secret id itself.
approle_secrets = Table(
    "vault_approle_secrets",
    metadata,
    Column("accessor", String(64), primary_key=True),
    Column("role_name", String(128), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("uses_left", Integer, nullable=False),
    Column("bound_cidrs", Text, nullable=False, default="[]"),
    Index("idx_vault_approle_secrets_role", "role_name"),
)

#: "Refuse subject N's JWTs issued before T" (issue 15): one row per subject.
jwt_cutoffs = Table(
    "vault_jwt_cutoffs",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("issued_before", UTCDateTime, nullable=False),
)
