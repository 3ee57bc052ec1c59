"""A vault written by the release before mounts (schema 0002, `tests/fixtures/vault_0002.db`,
made by `tests/fixtures/make_vault_0002.py` with that release's code) opens with this one, on
SQLite and (rows copied over) PostgreSQL: every version under `secret/` still decrypts, the
mount-wide KV settings became `secret/`'s, the old audit chain still verifies, and new mounts
work next to the old data."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from strongroom import errors, open_vault
from tests.conftest import fast_config

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures/vault_0002.db"
MIGRATIONS = Path(__file__).resolve().parents[2] / "src/strongroom/storage/migrations"
OLD_KEY = "previous-release-master-key-0123"
#: Tables of schema 0002, parents first.
OLD_TABLES = (
    "vault_keys",
    "vault_key_terms",
    "vault_secrets",
    "vault_secret_versions",
    "vault_audit_logs",
    "vault_kv_config",
)


def _value(column: sa.Column[object], raw: object) -> object:
    if raw is None:
        return None
    if isinstance(column.type, sa.Boolean):
        return bool(raw)
    if isinstance(column.type, sa.DateTime):
        return datetime.fromisoformat(str(raw)).replace(tzinfo=UTC)
    return raw


def _copy_to_postgres(dsn: str) -> None:
    """The fixture's rows in a PostgreSQL database at schema 0002 (as that release made it)."""
    engine = sa.create_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    source = sqlite3.connect(FIXTURE)
    try:
        with engine.connect() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002")
            meta = sa.MetaData()
            meta.reflect(conn, only=OLD_TABLES)
            for name in OLD_TABLES:
                table = meta.tables[name]
                cursor = source.execute(f"SELECT * FROM {name}")
                columns = [d[0] for d in cursor.description]
                rows = [
                    {c: _value(table.c[c], v) for c, v in zip(columns, row, strict=True)}
                    for row in cursor
                ]
                if rows:
                    conn.execute(sa.insert(table), rows)
                if "id" in table.c and name != "vault_keys" and name != "vault_kv_config":
                    conn.execute(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                            f"(SELECT MAX(id) FROM {name}))"
                        )
                    )
            conn.commit()
    finally:
        source.close()
        engine.dispose()


@pytest.fixture
def old_dsn(dsn: str) -> str:
    if dsn.startswith("sqlite"):
        shutil.copy(FIXTURE, dsn.removeprefix("sqlite:///"))
    else:
        _copy_to_postgres(dsn)
    return dsn


def test_a_vault_of_the_previous_release_keeps_opening(old_dsn: str) -> None:
    vault = open_vault(old_dsn, fast_config(auto_lock=False))
    try:
        vault.unlock(OLD_KEY)
        assert vault.get_secret("app/db/password") == "s3cret-v2"
        assert vault.get_secret_version("app/db/password", 1) == "s3cret-v1"
        assert vault.get_secret("app/api-key") == "key-1"
        assert vault.kv.read("team/config").data == {"user": "u2", "port": "6543"}
        assert vault.kv.read("team/config", 2).data == {"user": "u", "port": "6543"}
        with pytest.raises(errors.VersionDeleted):
            vault.kv.read("team/config", 1)
        vault.kv.undelete("team/config", [1])
        assert vault.kv.read("team/config", 1).data == {"user": "u", "port": "5432"}
        assert vault.kv.metadata.read("team/config").custom_metadata == {"owner": "ops"}
        assert vault.kv.metadata.read_config().max_versions == 5  # folded into secret/
        (mount,) = vault.mounts.list()
        assert (mount.path, mount.version, mount.kv.max_versions) == ("secret/", 2, 5)
        assert vault.verify_audit().ok  # the old entries' chain, and the new ones after it
        vault.mounts.enable("team", "kv-v2")
        vault.kv.write("team/config", {"other": "mount"}, mount="team")
        assert vault.kv.read("team/config").data == {"user": "u2", "port": "6543"}
        assert vault.kv.metadata.list("", mount="team") == ["team/"]
        assert [s.path for s in vault.list_secrets("")] == [
            "app/api-key",
            "app/db/password",
            "team/config",
        ]
        vault.rotate_all(OLD_KEY + "-rotated")
        assert vault.get_secret_version("app/db/password", 1) == "s3cret-v1"
        assert vault.kv.read("team/config", mount="team").data == {"other": "mount"}
        assert vault.verify_audit().ok
    finally:
        vault.close()
