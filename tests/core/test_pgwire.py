"""`storage.pgwire`: statements on libpq's connection under psycopg, on the real PostgreSQL
(docs/decisions.md, "Speed, round eight"). The same values, rows, error classes and
connection-loss signs as psycopg's own `execute`."""

from __future__ import annotations

import gc
import os
import resource
import select
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import errors as pg_errors

from strongroom.storage import pgwire
from strongroom.storage.postgres import create_postgres_engine
from strongroom.storage.txbase import fetch_columns, fetch_first, insert_one, run_statement

pytestmark = pytest.mark.postgres


def test_numbered_rewrites_both_parameter_styles() -> None:
    assert pgwire.numbered("SELECT a FROM t WHERE b = %(b)s AND c = %(c)s OR d = %(b)s") == (
        b"SELECT a FROM t WHERE b = $1 AND c = $2 OR d = $1",
        ["b", "c"],
    )
    assert pgwire.numbered("SELECT pg_advisory_xact_lock(%s), %s") == (
        b"SELECT pg_advisory_xact_lock($1), $2",
        None,
    )
    # psycopg's escaped percent is a percent in PostgreSQL's text
    assert pgwire.numbered("SELECT 'a%%' || %(x)s") == (b"SELECT 'a%' || $1", ["x"])
    assert pgwire.numbered("BEGIN; SELECT 1") == (b"BEGIN; SELECT 1", None)


def test_numbered_refuses_what_it_cannot_rewrite() -> None:
    assert pgwire.numbered("SELECT %(a)s, %s") is None  # both styles
    assert pgwire.numbered("SELECT 5 % 2") is None  # a lone percent: psycopg would refuse too


@pytest.fixture
def driver(pg_dsn: str) -> Iterator[Any]:
    conn = psycopg.connect(pg_dsn)
    conn.execute(
        "CREATE TABLE t (id bigint PRIMARY KEY, name text, at timestamptz, ok boolean,"
        " raw bytea, n integer)"
    )
    conn.commit()
    yield conn
    conn.close()


def test_usable_only_where_psycopg_would_send_the_statement_alone(driver: Any) -> None:
    assert not driver.autocommit
    # idle outside a transaction: psycopg would send a BEGIN first
    assert not pgwire.usable(driver)
    assert pgwire.usable(driver, begins=True)
    driver.execute("SELECT 1")  # psycopg begins
    assert pgwire.usable(driver)
    driver.rollback()
    driver.autocommit = True
    assert pgwire.usable(driver)


def test_values_round_trip_as_psycopg_loads_them(driver: Any) -> None:
    driver.autocommit = True
    at = datetime(2026, 12, 4, 21, 30, 1, 123456, tzinfo=UTC)
    insert = pgwire.numbered(
        "INSERT INTO t (id, name, at, ok, raw, n) VALUES (%(id)s, %(name)s, %(at)s, %(ok)s,"
        " %(raw)s, %(n)s)"
    )
    assert insert is not None
    values: list[Any] = [9_000_000_000, "näme 'quoted' %s", at, True, b"\x00\xff", None]
    pgwire.run(driver, insert[0], values)
    pgwire.run(
        driver, insert[0], [2, None, None, False, None, 40_000]
    )  # other types: prepared anew
    query = b"SELECT id, name, at, ok, raw, n FROM t ORDER BY id"
    ours = pgwire.rows(driver, pgwire.run(driver, query))
    theirs = driver.execute(query.decode()).fetchall()
    assert ours == theirs
    assert ours[1] == (9_000_000_000, "näme 'quoted' %s", at, True, b"\x00\xff", None)
    first = pgwire.first(
        driver, pgwire.run(driver, b"SELECT id FROM t WHERE id > $1 ORDER BY id", [1])
    )
    assert first == (2,)
    assert pgwire.first(driver, pgwire.run(driver, b"SELECT id FROM t WHERE id < $1", [0])) is None


def test_errors_are_psycopgs_classes(driver: Any) -> None:
    driver.autocommit = True
    insert = b"INSERT INTO t (id) VALUES ($1)"
    pgwire.run(driver, insert, [1])
    with pytest.raises(pg_errors.UniqueViolation):
        pgwire.run(driver, insert, [1])
    with pytest.raises(pg_errors.UndefinedTable):
        pgwire.run(driver, b"SELECT * FROM nowhere")
    assert not driver.closed  # a refused statement leaves the connection usable
    assert pgwire.rows(driver, pgwire.run(driver, b"SELECT count(*) FROM t")) == [(1,)]


def test_a_discarded_prepared_statement_is_prepared_again(driver: Any) -> None:
    driver.autocommit = True
    query = b"SELECT $1::int + 1"
    assert pgwire.rows(driver, pgwire.run(driver, query, [1])) == [(2,)]
    driver.execute("DEALLOCATE ALL")
    assert pgwire.rows(driver, pgwire.run(driver, query, [2])) == [(3,)]


def test_a_lost_connection_is_operational_and_closed(driver: Any, pg_dsn: str) -> None:
    driver.autocommit = True
    pid = pgwire.rows(driver, pgwire.run(driver, b"SELECT pg_backend_pid()"))[0][0]
    with psycopg.connect(pg_dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(psycopg.OperationalError) as raised:
        pgwire.run(driver, b"SELECT $1::int", [1])
    # libpq's blocking call ends with its own error (no SQLSTATE; the server's reason in the
    # message), and the connection shows what SQLAlchemy's psycopg dialect reads to tell a
    # lost connection (`is_disconnect`)
    assert "terminating connection" in str(raised.value)
    assert driver.closed and driver.broken


def test_txbase_statements_take_the_libpq_path_with_the_same_answers(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prebuilt statements (`fetch_first`, `fetch_columns`, `insert_one`, `run_statement`)
    run on libpq, in autocommit and inside a transaction, and outside one fall back to
    psycopg, which begins it."""
    calls: list[bytes] = []
    real_run = pgwire.run

    def counted(driver: Any, query: bytes, values: Any = ()) -> Any:
        calls.append(query)
        return real_run(driver, query, values)

    monkeypatch.setattr(pgwire, "run", counted)
    engine = create_postgres_engine(pg_dsn)
    meta = sa.MetaData()
    table = sa.Table(
        "rows",
        meta,
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True)),
    )
    meta.create_all(engine)
    insert = table.insert()
    by_path = sa.select(table.c.id, table.c.path, table.c.at).where(
        table.c.path == sa.bindparam("path")
    )
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    try:
        with engine.connect() as conn:
            driver: Any = conn.connection.driver_connection
            assert not pgwire.usable(driver)  # idle: psycopg's execute, which begins
            first = insert_one(conn, insert, ["path", "at"], {"path": "a", "at": at})
            assert calls == []
            assert pgwire.usable(driver)  # now inside psycopg's transaction: libpq
            second = insert_one(conn, insert, ["path", "at"], {"path": "b", "at": None})
            assert second == first + 1
            assert fetch_first(conn, by_path, {"path": "a"}) == (first, "a", at)
            assert fetch_first(conn, by_path, {"path": "nothing"}) is None
            run_statement(conn, "SAVEPOINT x; RELEASE SAVEPOINT x")
            assert len(calls) == 4  # the second insert, two reads, the savepoint
            driver.commit()  # (SQLAlchemy began nothing: the driver's transaction)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            driver = conn.connection.driver_connection
            assert pgwire.usable(driver)
            everything = sa.select(table.c.path, table.c.at).order_by(table.c.id)
            assert fetch_columns(conn, everything, {}) == [("a", "b"), (at, None)]
            assert len(calls) == 5
    finally:
        meta.drop_all(engine)
        engine.dispose()


def test_pipelined_statements_and_the_commit_in_one_round_trip(driver: Any) -> None:
    insert = b"INSERT INTO t (id, name) VALUES ($1, $2)"
    driver.execute("SELECT 1")  # inside psycopg's transaction
    assert pgwire.PIPELINE and pgwire.usable(driver)
    rows = [(1, "o'quote; DROP TABLE t; --"), (2, None), (3, "ünï")]
    pgwire.pipelined(driver, [(insert, list(row)) for row in rows], b"COMMIT")
    assert driver.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE  # committed
    with psycopg.connect(driver.info.dsn) as other:
        assert other.execute("SELECT id, name FROM t ORDER BY id").fetchall() == rows
    # the connection is usable afterwards, out of pipeline mode
    assert pgwire.rows(driver, pgwire.run(driver, b"SELECT count(*) FROM t")) == [(3,)]


def test_a_failing_pipelined_statement_raises_and_commits_nothing(driver: Any) -> None:
    insert = b"INSERT INTO t (id, name) VALUES ($1, $2)"
    driver.execute("SELECT 1")
    statements = [(insert, [10, "a"]), (insert, [10, "duplicate"]), (insert, [11, "b"])]
    with pytest.raises(pg_errors.UniqueViolation):
        pgwire.pipelined(driver, statements, b"COMMIT")
    assert driver.pgconn.transaction_status == psycopg.pq.TransactionStatus.INERROR
    driver.rollback()
    assert driver.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_lost_connection_through_txbase_invalidates_it(pg_dsn: str) -> None:
    """A prepared statement on a connection the server ended: SQLAlchemy's DBAPIError with the
    connection invalidated (what `Storage` turns into StorageUnavailable and a new pool)."""
    engine = create_postgres_engine(pg_dsn)
    query: sa.Select[Any] = sa.select(sa.literal_column("1").label("one")).where(
        sa.bindparam("x", type_=sa.Integer) == 1
    )
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            assert fetch_first(conn, query, {"x": 1}) == (1,)
            driver: Any = conn.connection.driver_connection
            pid = pgwire.rows(driver, pgwire.run(driver, b"SELECT pg_backend_pid()"))[0][0]
            with psycopg.connect(pg_dsn, autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(sa.exc.DBAPIError) as raised:
                fetch_first(conn, query, {"x": 1})
            assert raised.value.connection_invalidated
            assert conn.invalidated
    finally:
        engine.dispose()


def test_a_pipeline_broken_off_closes_the_connection(
    driver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver.execute("SELECT 1")

    class Broken:
        def register(self, *args: Any) -> None:
            raise ValueError("no polling today")

    monkeypatch.setattr(select, "poll", Broken)
    with pytest.raises(psycopg.OperationalError, match="broke off"):
        pgwire.pipelined(driver, [(b"INSERT INTO t (id) VALUES ($1)", [1])], b"COMMIT")
    assert driver.closed  # never reused half-way through a pipeline


def test_a_pipeline_waits_on_any_descriptor_number(pg_dsn: str) -> None:
    """`select.select` refuses descriptors from 1024 on; a busy server gets such sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1200
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        with psycopg.connect(pg_dsn) as conn:
            assert conn.pgconn.socket >= 1024
            conn.execute("CREATE TABLE t (id bigint PRIMARY KEY)")
            pgwire.pipelined(conn, [(b"INSERT INTO t (id) VALUES ($1)", [7])], b"COMMIT")
            assert conn.execute("SELECT id FROM t").fetchall() == [(7,)]
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_connections_state_goes_with_it(pg_dsn: str) -> None:
    conn = psycopg.connect(pg_dsn, autocommit=True)
    pgwire.rows(conn, pgwire.run(conn, b"SELECT $1::int", [1]))
    gone = weakref.ref(conn)
    conn.close()
    del conn
    gc.collect()
    assert gone() is None
