"""Driver-level reads of many rows (`txbase.fetch_all`/`fetch_columns`), the listing built on
them (`SecretQueries.secret_infos`) and the other statements moved onto them (a mount's KV
settings, the webhooks), held to SQLAlchemy's results on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from strongroom.core.versions import info_from_row
from strongroom.models import SecretInfo
from strongroom.storage import KVConfigRow, Storage, open_storage
from strongroom.storage import tables as t
from strongroom.storage import tables_events as te
from strongroom.storage.queries_secrets import _LIST, _LIST_RANGE, _LIST_UNDER
from strongroom.storage.tables import _sqlite_utc, _sqlite_utc_column
from strongroom.storage.txbase import _compiled, fetch_all, fetch_columns
from tests.contract.test_driver_statements import API_PATHS, PREFIXES, RAW_PATHS

NOW = datetime(2025, 11, 3, 10, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def storage(dsn: str) -> Iterator[Storage]:
    s = open_storage(dsn)
    yield s
    s.dispose()


def _fill(storage: Storage) -> None:
    """Secrets covering every column's cases: description and expiry set or not, metadata,
    max_versions and cas_required, times without microseconds, another mount's rows."""
    with storage.write() as tx:
        for i, path in enumerate(API_PATHS + RAW_PATHS):
            sid = tx.secrets.insert_secret(
                path,
                f"about {path}" if i % 2 else None,
                i + 1,
                NOW + timedelta(seconds=i),
                NOW + timedelta(days=i) if i % 3 == 0 else None,
                metadata={"team": "x", "é": "ü"} if i % 4 == 0 else None,
                version=i,
            )
            if i % 5 == 0:
                tx.secrets.update_secret(sid, cas_required=True, max_versions=7)
            if i % 6 == 0:  # a whole second: no microseconds in the stored text
                tx.secrets.update_secret(sid, updated_at=NOW.replace(microsecond=0))
        # (Other mounts' stored paths start with their id: `core.mounts`.)
        tx.secrets.insert_secret("2:a/other-mount", None, 1, NOW, None, mount_id=2)
        tx.secrets.insert_secret("2:team/x", None, 1, NOW, NOW, {"k": "v"}, mount_id=2)


def _same_infos(fast: list[SecretInfo], slow: list[SecretInfo]) -> None:
    """Equal, and field for field of the same types (a bool, not 1; aware UTC times)."""
    assert fast == slow
    for a, b in zip(fast, slow, strict=True):
        for f in fields(SecretInfo):
            x, y = getattr(a, f.name), getattr(b, f.name)
            assert type(x) is type(y), f.name
            if isinstance(x, datetime):
                assert x.tzinfo is UTC, f.name
        assert a.custom_metadata is not b.custom_metadata


def test_secret_infos_are_the_listing_through_sqlalchemy(storage: Storage) -> None:
    _fill(storage)
    with storage.read() as tx:
        for mount in (1, 2, 3):
            for prefix in [*PREFIXES, "2:", "2:a/"]:
                slow = [info_from_row(r) for r in tx.secrets.list_secrets(prefix, mount)]
                fast = tx.secrets.secret_infos(prefix, mount)
                _same_infos(fast, slow)
                # Twice: the second run uses the compiled (and on PostgreSQL prepared) statement.
                _same_infos(tx.secrets.secret_infos(prefix, mount), slow)
        everything = tx.secrets.secret_infos()
    assert any(i.expires_at is not None for i in everything)
    assert any(i.expires_at is None for i in everything)
    assert any(i.description is None for i in everything)
    assert any(i.custom_metadata == {"team": "x", "é": "ü"} for i in everything)
    assert any(i.cas_required and i.max_versions == 7 for i in everything)
    assert any(i.updated_at.microsecond == 0 for i in everything)
    # Each object has a metadata dict of its own (the caller may change it).
    assert len({id(i.custom_metadata) for i in everything}) == len(everything)


def test_fetch_all_and_fetch_columns_match_sqlalchemy(storage: Storage) -> None:
    _fill(storage)
    cases: list[tuple[sa.Select[Any], dict[str, Any]]] = [
        (_LIST, {"mount": 1}),
        (_LIST_UNDER, {"mount": 1, "n": 2, "prefix": "a/"}),
        (_LIST_UNDER, {"mount": 1, "n": 1, "prefix": "é"}),
        (_LIST, {"mount": 99}),
        (sa.select(t.secret_versions), {}),
    ]
    with storage.read() as tx:
        cases.append((_LIST_RANGE[tx.conn.dialect.name], {"mount": 1, "low": "a", "high": "b"}))
        for statement, values in cases:
            slow = [tuple(r) for r in tx.conn.execute(statement, values).all()]
            fast = fetch_all(tx.conn, statement, values)
            assert fast == slow
            assert [[type(v) for v in r] for r in fast] == [[type(v) for v in r] for r in slow]
            columns = fetch_columns(tx.conn, statement, values)
            assert len(columns) == len(statement.selected_columns)
            assert [list(c) for c in columns] == [list(c) for c in zip(*slow, strict=True)] or (
                not slow and all(len(c) == 0 for c in columns)
            )


def test_kv_config_and_webhooks_read_as_stored(storage: Storage) -> None:
    with storage.write() as tx:
        assert tx.kv.kv_config(1) == KVConfigRow()
        assert tx.kv.kv_config(42) == KVConfigRow()  # no such mount
        tx.kv.put_kv_config(KVConfigRow(5, True, 60), NOW)
        assert tx.kv.kv_config(1) == KVConfigRow(5, True, 60)
        assert tx.events.webhooks() == []
        for n in range(2):
            tx.events.add_webhook(
                f"https://example.test/{n}", ("secret.created",), "a/", "nonce", bool(n), 3, NOW
            )
    with storage.read() as tx:
        assert tx.kv.kv_config(1) == KVConfigRow(5, True, 60)
        hooks = tx.events.webhooks()
        rows = tx.conn.execute(sa.select(te.webhooks).order_by(te.webhooks.c.id)).all()
    assert [(h.id, h.url, h.events, h.path_prefix, h.key_nonce) for h in hooks] == [
        (r.id, r.url, ("secret.created",), "a/", "nonce") for r in rows
    ]
    assert [(h.allow_link_local, h.created_by, h.created_at) for h in hooks] == [
        (False, 3, NOW),
        (True, 3, NOW),
    ]
    assert all(type(h.allow_link_local) is bool and type(h.id) is int for h in hooks)


def test_sqlite_listing_reads_a_range_of_the_path_index(sqlite_dsn: str) -> None:
    """Listing a prefix reads that prefix's rows in index order: not the whole mount through
    the index on mount_id, sorted afterwards."""
    storage = open_storage(sqlite_dsn)
    try:
        with storage.read() as tx:
            compiled = _compiled(tx.conn.dialect, _LIST_RANGE["sqlite"])
            values = {"mount": 1, "low": "a/", "high": "a0"}
            plan = tx.conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + compiled.sql, compiled.params(values)
            ).all()
    finally:
        storage.dispose()
    details = " ".join(str(row[-1]) for row in plan)
    assert "(path>? AND path<?)" in details, details
    assert "TEMP B-TREE" not in details, details


def test_sqlite_time_column_parses_as_each_value() -> None:
    """The column parser gives what `_sqlite_utc` gives value by value, fast path or not."""
    cases: list[list[Any]] = [
        ["2025-11-03 10:00:00.123456", "2025-11-03 10:00:00", None],
        [None, None],
        [],
        ["2025-11-03 10:00:00.5", "2025-11-03"],
        ["2025-11-03 10:00:00+02:00", "2025-11-03 10:00:00.123456"],
        [datetime(2025, 1, 1, 12), "2025-11-03 10:00:00"],
    ]
    for values in cases:
        expected = [_sqlite_utc(v) for v in values]
        assert _sqlite_utc_column(values) == expected
        for got in _sqlite_utc_column(values):
            assert got is None or got.tzinfo is UTC
