"""Storage: untrusted persistence on SQLite (default) or PostgreSQL; never sees plaintext or keys.

`open_storage(dsn)` builds the engine and brings the schema to the newest Alembic revision
(under a PostgreSQL advisory lock, so several instances starting at once do not race).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from strongroom import errors
from strongroom.storage.base import (
    AppRoleRow,
    AppSecretRow,
    AuditRow,
    KeysRow,
    KVConfigRow,
    MountRow,
    NewAudit,
    PolicyRow,
    SecretRow,
    TermRow,
    TokenRow,
    UserRow,
    VersionRow,
    new_audit_entry,
    new_secret_row,
    new_version_row,
)
from strongroom.storage.engine import Storage, Tx
from strongroom.storage.probe import DatabaseState, database_state
from strongroom.storage.queries_events import OutboxRow, WebhookRow
from strongroom.storage.txbase import DATABASE_ERRORS, WriterBusy

__all__ = [
    "DATABASE_ERRORS",
    "HEAD_REVISION",
    "SAME_ROWS_AS_HEAD",
    "AppRoleRow",
    "AppSecretRow",
    "AuditRow",
    "DatabaseState",
    "KVConfigRow",
    "KeysRow",
    "MountRow",
    "NewAudit",
    "OutboxRow",
    "PolicyRow",
    "SecretRow",
    "Storage",
    "TermRow",
    "TokenRow",
    "Tx",
    "UserRow",
    "VersionRow",
    "WebhookRow",
    "WriterBusy",
    "database_state",
    "new_audit_entry",
    "new_secret_row",
    "new_version_row",
    "open_storage",
    "redact_dsn",
]

#: The newest migration; when the database is already there, Alembic is not even imported.
HEAD_REVISION = "0007"
#: Revisions whose tables hold the same rows as HEAD_REVISION's (a later one added an index
#: only): a backup written at any of them restores into the current schema.
SAME_ROWS_AS_HEAD = frozenset({"0006", HEAD_REVISION})
_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x5354524F4E47  # "STRONG"


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        return sa.engine.make_url(dsn).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "<invalid DSN>"


def _engine_for(dsn: str) -> Engine:
    scheme = dsn.split(":", 1)[0].lower() if ":" in dsn else ""
    try:
        if scheme.startswith("sqlite"):
            from strongroom.storage.sqlite import create_sqlite_engine

            return create_sqlite_engine(dsn)
        if scheme.startswith(("postgresql", "postgres")):
            from strongroom.storage.postgres import create_postgres_engine

            return create_postgres_engine(dsn)
    except sa_exc.ArgumentError as exc:
        raise errors.InvalidInput(f"invalid DSN {redact_dsn(dsn)!r}") from exc
    raise errors.InvalidInput(
        "unsupported DSN: use sqlite:///file.db, postgresql://user@host/db or postgres://..."
    )


def _current_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _migrate(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def _upgrade(engine: Engine) -> None:
    with engine.connect() as conn:
        if _current_revision(conn) == HEAD_REVISION:
            return
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            conn.commit()
        try:
            _migrate(conn)
            conn.commit()
        finally:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                conn.commit()


def open_storage(dsn: str) -> Storage:
    """Open (and create or upgrade) the database at `dsn`.

    Raises:
        InvalidInput: the DSN is malformed or names an unsupported database.
        StorageUnavailable: the database cannot be reached.
    """
    engine = _engine_for(dsn)
    try:
        _upgrade(engine)
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DatabaseError) as exc:
        engine.dispose()
        raise errors.StorageUnavailable(
            f"cannot open database {redact_dsn(dsn)!r}: {type(exc.orig or exc).__name__}"
        ) from exc
    return Storage(engine, redact_dsn(dsn))
