"""KV v2 core semantics (Vault's), on SQLite and PostgreSQL, with an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom import Vault, errors, open_vault
from strongroom.clock import ManualClock
from strongroom.core.kv_types import KVVersionMeta
from strongroom.models import Actor
from tests.conftest import MASTER_KEY, fast_config


@pytest.fixture
def vault(dsn: str, clock: ManualClock) -> Iterator[Vault]:
    """An unlocked vault without auto-lock: these tests move the clock by hours."""
    v = open_vault(dsn, fast_config(clock=clock, auto_lock=False))
    v.unlock(MASTER_KEY)
    yield v
    v.close()


def test_write_read_and_version_metadata(vault: Vault, clock: ManualClock) -> None:
    meta = vault.kv.write("app/db", {"user": "u", "port": 5432})
    assert meta.version == 1 and meta.created_at == clock.now()
    assert meta.deletion_time is None and not meta.destroyed and meta.custom_metadata == {}
    clock.advance(timedelta(seconds=5))
    assert vault.kv.write("app/db", {"user": "v"}).version == 2
    latest = vault.kv.read("app/db")
    assert latest.data == {"user": "v"} and latest.metadata.version == 2
    assert vault.kv.read("app/db", 1).data == {"user": "u", "port": 5432}
    assert vault.kv.read("app/db", 0).metadata.version == 2
    with pytest.raises(errors.VersionNotFound):
        vault.kv.read("app/db", 3)
    with pytest.raises(errors.SecretNotFound):
        vault.kv.read("app/none")


def test_same_data_as_api_vault(vault: Vault) -> None:
    vault.create_secret("shared/a", "s3cret")
    assert vault.kv.read("shared/a").data == {"value": "s3cret"}
    vault.kv.write("shared/a", {"value": "next"})
    assert vault.get_secret("shared/a") == "next"
    vault.kv.write("shared/b", {"k": "v", "n": 1})
    assert vault.get_secret("shared/b") == '{"k":"v","n":1}'
    assert vault.update_secret("shared/b", "plain") == 2
    assert vault.kv.read("shared/b").data == {"value": "plain"}


def test_check_and_set(vault: Vault) -> None:
    vault.kv.write("c/a", {"x": 1}, cas=0)
    with pytest.raises(errors.VersionConflict, match="check-and-set parameter did not match"):
        vault.kv.write("c/a", {"x": 2}, cas=0)
    with pytest.raises(errors.VersionConflict):
        vault.kv.write("c/a", {"x": 2}, cas=2)
    assert vault.kv.write("c/a", {"x": 2}, cas=1).version == 2
    vault.kv.metadata.write("c/a", cas_required=True)
    with pytest.raises(errors.InvalidInput, match="check-and-set parameter required"):
        vault.kv.write("c/a", {"x": 3})
    with pytest.raises(errors.InvalidInput, match="check-and-set parameter required"):
        vault.kv.patch("c/a", {"y": 1})
    assert vault.kv.patch("c/a", {"y": 1}, cas=2).version == 3
    vault.kv.metadata.write_config(cas_required=True)
    with pytest.raises(errors.InvalidInput, match="required"):
        vault.kv.write("c/new", {"x": 1})
    vault.kv.write("c/new", {"x": 1}, cas=0)
    with pytest.raises(errors.InvalidInput):
        vault.kv.write("c/new", {"x": 1}, cas=-1)


def test_bad_data_is_refused_cleanly(vault: Vault) -> None:
    with pytest.raises(errors.InvalidInput, match="no data provided"):
        vault.kv.write("b/a", None)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidInput, match="JSON object"):
        vault.kv.write("b/a", "text")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidInput):
        vault.kv.write("b/a", {"x": object()})
    with pytest.raises(errors.PayloadTooLarge):
        vault.kv.write("b/a", {"x": "a" * (1024 * 1024)})
    with pytest.raises(errors.InvalidInput):
        vault.kv.write("../etc", {"x": 1})
    vault.kv.write("b/empty", {})
    assert vault.kv.read("b/empty").data == {}


def test_patch_is_a_json_merge_patch(vault: Vault) -> None:
    vault.kv.write("p/a", {"a": {"b": 1, "c": 2}, "s": "x", "keep": [1, 2]})
    meta = vault.kv.patch("p/a", {"a": {"b": None, "d": 3}, "s": None, "t": "y"})
    assert meta.version == 2
    assert vault.kv.read("p/a").data == {"a": {"c": 2, "d": 3}, "keep": [1, 2], "t": "y"}
    with pytest.raises(errors.SecretNotFound):
        vault.kv.patch("p/missing", {"a": 1})
    vault.kv.delete_latest("p/a")
    with pytest.raises(errors.VersionNotFound):
        vault.kv.patch("p/a", {"a": 1})


def test_soft_delete_undelete_destroy(vault: Vault, clock: ManualClock) -> None:
    for i in range(3):
        vault.kv.write("d/a", {"i": i})
    clock.advance(timedelta(seconds=1))
    vault.kv.delete_latest("d/a")
    with pytest.raises(errors.VersionDeleted) as info:
        vault.kv.read("d/a")
    details = info.value.details
    assert isinstance(details, KVVersionMeta)
    assert details.version == 3 and details.deletion_time == clock.now()
    with pytest.raises(errors.VersionNotFound):  # the design document's API agrees
        vault.get_secret("d/a")
    vault.kv.undelete("d/a", [3])
    assert vault.kv.read("d/a").data == {"i": 2}
    vault.kv.delete_versions("d/a", [1, 2, 99])
    with pytest.raises(errors.VersionDeleted):
        vault.kv.read("d/a", 1)
    vault.kv.destroy("d/a", [1, 3])
    with pytest.raises(errors.VersionDeleted) as info:
        vault.kv.read("d/a", 3)
    assert isinstance(info.value.details, KVVersionMeta) and info.value.details.destroyed
    vault.kv.undelete("d/a", [1, 2, 3])  # destroyed versions stay destroyed
    assert vault.kv.read("d/a", 2).data == {"i": 1}
    with pytest.raises(errors.VersionDeleted):
        vault.kv.read("d/a", 1)
    with vault.state.storage.read() as tx:  # the ciphertext is really gone
        row = tx.secrets.secret_by_path("d/a")
        assert row is not None
        by_number = {v.version: v for v in tx.secrets.versions(row.id)}
    assert by_number[1].value is None and by_number[1].destroyed
    assert by_number[3].value is None and by_number[2].value is not None
    states = vault.kv.metadata.read("d/a").versions
    assert states[1].destroyed and states[1].deletion_time is not None
    assert states[3].destroyed and not states[2].destroyed and states[2].deletion_time is None
    with pytest.raises(errors.InvalidInput, match="no version number provided"):
        vault.kv.delete_versions("d/a", [])
    with pytest.raises(errors.InvalidInput):
        vault.kv.destroy("d/a", [0])
    vault.kv.delete_latest("d/missing")  # nothing there: no error, as in Vault
    vault.kv.destroy("d/missing", [1])


def test_max_versions_prunes_on_write(vault: Vault) -> None:
    for i in range(4):
        vault.kv.write("m/a", {"i": i})
    vault.kv.metadata.write("m/a", max_versions=2)
    assert sorted(vault.kv.metadata.read("m/a").versions) == [1, 2, 3, 4]  # not yet
    vault.kv.write("m/a", {"i": 4})
    meta = vault.kv.metadata.read("m/a")
    assert sorted(meta.versions) == [4, 5] and meta.oldest_version == 4
    assert meta.current_version == 5 and meta.max_versions == 2
    with pytest.raises(errors.VersionNotFound):
        vault.kv.read("m/a", 3)
    # The larger of the key's and the mount's limit wins (current Vault/OpenBao code).
    vault.kv.metadata.write_config(max_versions=3)
    vault.kv.write("m/a", {"i": 5})
    assert sorted(vault.kv.metadata.read("m/a").versions) == [4, 5, 6]
    vault.kv.write("m/b", {"i": 0})
    assert vault.kv.metadata.read("m/b").oldest_version == 0


def test_delete_version_after(vault: Vault, clock: ManualClock) -> None:
    vault.kv.metadata.write("t/a", delete_version_after="1h")
    meta = vault.kv.write("t/a", {"x": 1})
    assert meta.deletion_time == clock.now() + timedelta(hours=1)
    assert vault.get_secret("t/a") == '{"x":1}'  # scheduled, not yet deleted
    clock.advance(timedelta(hours=1))
    with pytest.raises(errors.VersionDeleted):
        vault.kv.read("t/a")
    with pytest.raises(errors.VersionNotFound):
        vault.get_secret("t/a")
    vault.kv.undelete("t/a", [1])
    assert vault.kv.read("t/a").metadata.deletion_time == clock.now() + timedelta(hours=1)
    vault.kv.metadata.write_config(delete_version_after="2h")
    vault.kv.write("t/b", {"x": 1})
    assert vault.kv.read("t/b").metadata.deletion_time == clock.now() + timedelta(hours=2)
    assert vault.kv.write("t/a", {"x": 2}).deletion_time == clock.now() + timedelta(hours=1)
    assert vault.kv.metadata.read("t/a").delete_version_after == timedelta(hours=1)
    with pytest.raises(errors.InvalidInput):
        vault.kv.metadata.write("t/a", delete_version_after="-1s")
    with pytest.raises(errors.InvalidInput):
        vault.kv.metadata.write("t/a", delete_version_after="soon")


def test_metadata_without_versions(vault: Vault) -> None:
    vault.kv.metadata.write("meta/only", max_versions=3, custom_metadata={"owner": "ops"})
    meta = vault.kv.metadata.read("meta/only")
    assert meta.current_version == 0 and meta.versions == {} and meta.max_versions == 3
    with pytest.raises(errors.VersionNotFound):
        vault.kv.read("meta/only")
    with pytest.raises(errors.VersionNotFound):
        vault.get_secret("meta/only")
    assert vault.list_versions("meta/only") == []
    assert vault.kv.metadata.list("meta") == ["only"]
    with pytest.raises(errors.VersionConflict):
        vault.kv.write("meta/only", {"a": 1}, cas=1)
    assert vault.kv.write("meta/only", {"a": 1}, cas=0).custom_metadata == {"owner": "ops"}
    assert vault.update_secret("meta/only", "v2") == 2


def test_custom_metadata_write_and_patch(vault: Vault) -> None:
    vault.kv.write("cm/a", {"x": 1})
    vault.kv.metadata.write("cm/a", custom_metadata={"n": 1, "b": True, "f": 1.5, "s": "x"})
    assert vault.kv.metadata.read("cm/a").custom_metadata == {
        "n": "1",
        "b": "1",
        "f": "1.5",
        "s": "x",
    }
    vault.kv.metadata.patch("cm/a", custom_metadata={"s": None, "new": "y"}, max_versions=5)
    meta = vault.kv.metadata.read("cm/a")
    assert meta.custom_metadata == {"n": "1", "b": "1", "f": "1.5", "new": "y"}
    assert meta.max_versions == 5
    vault.kv.metadata.write("cm/a", cas_required=True)  # other settings keep their value
    meta = vault.kv.metadata.read("cm/a")
    assert meta.cas_required and meta.max_versions == 5 and meta.custom_metadata["new"] == "y"
    assert vault.kv.read("cm/a").metadata.custom_metadata["new"] == "y"
    for bad in ({"": "x"}, {"k": ""}, {"k": {"a": 1}}, {f"k{i}": "v" for i in range(65)}, "x"):
        with pytest.raises(errors.InvalidInput):
            vault.kv.metadata.write("cm/a", custom_metadata=bad)
    with pytest.raises(errors.SecretNotFound):
        vault.kv.metadata.patch("cm/missing", max_versions=1)
    with pytest.raises(errors.InvalidInput):
        vault.kv.metadata.write("cm/a", max_versions=-1)
    with pytest.raises(errors.InvalidInput):
        vault.kv.metadata.write("cm/a", cas_required="yes")


def test_delete_metadata_removes_everything(vault: Vault) -> None:
    vault.kv.write("x/a", {"v": 1})
    vault.kv.write("x/a", {"v": 2})
    vault.kv.metadata.delete("x/a")
    with pytest.raises(errors.SecretNotFound):
        vault.kv.metadata.read("x/a")
    with pytest.raises(errors.SecretNotFound):
        vault.get_secret("x/a")
    vault.kv.metadata.delete("x/a")  # idempotent, as in Vault
    assert vault.kv.write("x/a", {"v": 3}).version == 1


def test_list_folders(vault: Vault) -> None:
    for path in ("db", "cache/redis", "cache/memcached", "cache/deep/x", "app/a", "apple"):
        vault.kv.write(path, {"v": 1})
    assert vault.kv.metadata.list("") == ["app/", "apple", "cache/", "db"]
    assert vault.kv.metadata.list("cache") == ["deep/", "memcached", "redis"]
    assert vault.kv.metadata.list("cache/") == ["deep/", "memcached", "redis"]
    assert vault.kv.metadata.list("app") == ["a"]
    with pytest.raises(errors.SecretNotFound):
        vault.kv.metadata.list("db")
    with pytest.raises(errors.SecretNotFound):
        vault.kv.metadata.list("nothing/here")
    with pytest.raises(errors.InvalidInput):
        vault.kv.metadata.list("a//b")


def test_subkeys(vault: Vault) -> None:
    vault.kv.write("s/a", {"a": {"b": {"c": 1}}, "l": [1, 2], "n": None, "s": "x"})
    assert vault.kv.subkeys("s/a").data == {
        "a": {"b": {"c": None}},
        "l": None,
        "n": None,
        "s": None,
    }
    assert vault.kv.subkeys("s/a", depth=1).data == {"a": None, "l": None, "n": None, "s": None}
    assert vault.kv.subkeys("s/a", depth=2).data["a"] == {"b": None}
    assert vault.kv.subkeys("s/a", 1).metadata.version == 1
    vault.kv.delete_latest("s/a")
    with pytest.raises(errors.VersionDeleted):
        vault.kv.subkeys("s/a")
    with pytest.raises(errors.InvalidInput):
        vault.kv.subkeys("s/a", depth=-1)


def test_config_round_trip(vault: Vault) -> None:
    config = vault.kv.metadata.read_config()
    assert (config.max_versions, config.cas_required, config.delete_version_after) == (
        0,
        False,
        timedelta(0),
    )
    vault.kv.metadata.write_config(max_versions=7, delete_version_after=90)
    vault.kv.metadata.write_config(cas_required=True)
    config = vault.kv.metadata.read_config()
    assert (config.max_versions, config.cas_required, config.delete_version_after) == (
        7,
        True,
        timedelta(seconds=90),
    )


def test_expired_secret_reads_as_absent_and_is_replaced(
    vault: Vault,
    clock: ManualClock,
) -> None:
    vault.create_secret("e/a", "old", expires_in=timedelta(minutes=1))
    clock.advance(timedelta(minutes=2))
    with pytest.raises(errors.SecretNotFound):
        vault.kv.read("e/a")
    with pytest.raises(errors.SecretNotFound):
        vault.kv.metadata.list("e")
    assert vault.kv.write("e/a", {"v": "new"}, cas=0).version == 1
    assert vault.get_secret("e/a") == '{"v":"new"}'


def test_operations_are_audited(vault: Vault) -> None:
    vault.kv.write("au/a", {"v": 1})
    vault.kv.write("au/a", {"v": 2})
    vault.kv.read("au/a")
    vault.kv.delete_latest("au/a")
    with pytest.raises(errors.VersionDeleted):
        vault.kv.read("au/a")
    with pytest.raises(errors.VersionConflict):
        vault.kv.write("au/a", {"v": 3}, cas=1, actor=Actor(7, "10.0.0.1", "r-1"))
    entries = vault.audit_logs(path="au/a")
    actions = [(e.action, e.success, e.error) for e in reversed(entries)]
    assert actions == [
        ("create", True, None),
        ("update", True, None),
        ("read", True, None),
        ("soft_delete", True, None),
        ("read", False, "VersionDeleted"),
        ("write", False, "VersionConflict"),
    ]
    assert (entries[0].user_id, entries[0].ip_address, entries[0].request_id) == (
        7,
        "10.0.0.1",
        "r-1",
    )
    assert vault.verify_audit().ok


def test_locked_vault_refuses(vault: Vault) -> None:
    vault.kv.write("l/a", {"v": 1})
    vault.lock()
    with pytest.raises(errors.VaultLocked):
        vault.kv.read("l/a")
    with pytest.raises(errors.VaultLocked):
        vault.kv.write("l/a", {"v": 2})
    with pytest.raises(errors.VaultLocked):
        vault.kv.metadata.list("")


def test_import_keeps_numbers_times_and_states(vault: Vault, clock: ManualClock) -> None:
    from strongroom.core.kv_import import KVImportVersion

    t0 = clock.now() - timedelta(days=3)
    versions = [
        KVImportVersion(3, {"v": 3}, t0),
        KVImportVersion(4, None, t0 + timedelta(hours=1), t0 + timedelta(hours=2)),
        KVImportVersion(5, {"v": 5}, t0 + timedelta(hours=3), None, True),
        KVImportVersion(6, {"v": 6}, t0 + timedelta(hours=4)),
    ]
    copied = vault.kv.import_key(
        "imp/a",
        versions,
        custom_metadata={"team": "ops"},
        max_versions=4,
        delete_version_after="0s",
    )
    assert copied == 2
    assert vault.kv.read("imp/a").data == {"v": 6}
    assert vault.kv.read("imp/a", 3).metadata.created_at == t0
    for gone in (4, 5):
        with pytest.raises(errors.VersionDeleted):
            vault.kv.read("imp/a", gone)
    meta = vault.kv.metadata.read("imp/a")
    assert (meta.current_version, meta.oldest_version, meta.max_versions) == (6, 3, 4)
    assert meta.custom_metadata == {"team": "ops"} and meta.created_at == t0
    assert meta.versions[4].deletion_time == t0 + timedelta(hours=2)
    assert vault.get_secret("imp/a") == '{"v":6}'
    with pytest.raises(errors.SecretExists):
        vault.kv.import_key("imp/a", versions)
    assert vault.kv.import_key("imp/a", versions[:1], replace=True) == 1
    assert vault.kv.metadata.read("imp/a").current_version == 3
    assert vault.kv.write("imp/a", {"v": 7}).version == 4
    with pytest.raises(errors.InvalidInput):
        vault.kv.import_key("imp/b", [versions[0], versions[0]])
    vault.kv.import_key("imp/b", [], max_versions=2)  # metadata only, as Vault allows
    assert vault.kv.metadata.read("imp/b").current_version == 0
    assert vault.verify_audit().ok


def test_migration_0002_upgrades_an_existing_vault(dsn: str, clock: ManualClock) -> None:
    """A database at revision 0001 is brought to 0002 (the KV config table) when opened."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from strongroom.storage import HEAD_REVISION, open_storage

    migrations = Path(__file__).resolve().parents[2] / "src/strongroom/storage/migrations"
    engine = sa.create_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(migrations))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
            conn.commit()
            assert not sa.inspect(conn).has_table("vault_kv_config")
    finally:
        engine.dispose()
    open_storage(dsn).dispose()
    v = open_vault(dsn, fast_config(clock=clock, auto_lock=False))
    try:
        v.unlock(MASTER_KEY)
        v.create_secret("old/a", "kept")
        v.kv.metadata.write_config(max_versions=4)
        assert v.kv.metadata.read_config().max_versions == 4 and v.kv.read("old/a").data == {
            "value": "kept"
        }
    finally:
        v.close()
    assert HEAD_REVISION >= "0002"


def test_a_new_key_is_stored_as_its_write_reports_it(vault: Vault, clock: ManualClock) -> None:
    """A write of a new key stores its row at version 1 and that version without reading
    either back: what the write returns is what reads see, on a mount with a deletion delay
    too, and after an expired key at the same path."""
    vault.kv.metadata.write_config(delete_version_after="2h")
    vault.create_secret("n/expired", "old", expires_in=timedelta(minutes=1))
    clock.advance(timedelta(minutes=2))
    for path in ("n/fresh", "n/expired"):
        written = vault.kv.write(path, {"k": path})
        read = vault.kv.read(path)
        assert read.data == {"k": path}
        assert read.metadata == written
        assert written.version == 1 and written.created_at == clock.now()
        assert written.deletion_time == clock.now() + timedelta(hours=2)
        meta = vault.kv.metadata.read(path)
        assert meta.created_at == meta.updated_at == clock.now()
        assert meta.current_version == 1 and meta.oldest_version == 0
        assert list(meta.versions) == [1]
        clock.advance(timedelta(seconds=1))
        assert vault.kv.write(path, {"k": "2"}, cas=1).version == 2
        assert vault.kv.metadata.read(path).updated_at == clock.now()
