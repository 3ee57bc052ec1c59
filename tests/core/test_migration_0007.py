"""Migration 0007: on PostgreSQL `idx_vault_secrets_mount_path` (mount_id, path COLLATE "C")
replaces `idx_vault_secrets_mount_id` (a new secret updates as many indexes as before), and a
downgrade puts the old index back; SQLite keeps its indexes as they were."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from strongroom.storage import open_storage

MIGRATIONS = Path(__file__).resolve().parents[2] / "src/strongroom/storage/migrations"


def _indexes(conn: sa.Connection) -> set[str]:
    return {i["name"] for i in sa.inspect(conn).get_indexes("vault_secrets") if i["name"]}


def test_the_path_index_replaces_the_mount_index_on_postgresql_only(dsn: str) -> None:
    storage = open_storage(dsn)  # (created at the newest revision)
    try:
        with storage.engine.connect() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            seen = [_indexes(conn)]
            command.downgrade(cfg, "0006")
            seen.append(_indexes(conn))
            command.upgrade(cfg, "head")
            seen.append(_indexes(conn))
            conn.commit()
    finally:
        storage.dispose()
    now, before, again = seen
    assert "idx_vault_secrets_mount_id" in before
    assert "idx_vault_secrets_mount_path" not in before
    assert again == now
    if dsn.startswith("postgresql"):
        assert now == (before - {"idx_vault_secrets_mount_id"}) | {"idx_vault_secrets_mount_path"}
    else:
        assert now == before
