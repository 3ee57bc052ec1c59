"""`Queries`: the base of every query group (each shares its transaction's connection), and the
savepoint every part of a transaction uses."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect

from strongroom import errors
from strongroom.storage.tables import COLUMN_CONVERTERS

__all__ = [
    "DATABASE_ERRORS",
    "Queries",
    "WithCommit",
    "WriterBusy",
    "bytewise",
    "execute_many",
    "fetch_all",
    "fetch_column",
    "fetch_columns",
    "fetch_first",
    "insert_one",
    "on_driver",
    "prefix_range",
    "run_statement",
    "savepoint",
]

T = TypeVar("T")

#: `strongroom.storage.pgwire` once a statement was compiled for PostgreSQL (it imports psycopg,
#: which a vault on SQLite never loads).
_pg: Any = None

#: What the database driver raises (the writer fails a whole batch on these: the transaction
#: may be unusable).
DATABASE_ERRORS: tuple[type[Exception], ...] = (sa_exc.SQLAlchemyError,)


class WriterBusy(Exception):
    """`Storage.write(nowait=True)`: another connection holds the write lock right now
    (nothing was done; try again, waiting)."""


#: The savepoint's name: SQLite and PostgreSQL both let a name repeat, and RELEASE and
#: ROLLBACK TO then name the innermost, so nested savepoints need no names of their own.
_SAVEPOINT = "strongroom_job"
_BEGIN = f"SAVEPOINT {_SAVEPOINT}"
_RELEASE = f"RELEASE SAVEPOINT {_SAVEPOINT}"
_ROLLBACK = f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}"


@contextmanager
def savepoint(conn: Connection, chain: WithCommit | None = None) -> Iterator[None]:
    """Run a block whose changes are undone alone if it raises.

    A value the database refuses (out of range, too long; an integer the driver cannot bind)
    fails only this block, as InvalidInput, so one bad request cannot fail the other jobs of a
    group commit.

    The SAVEPOINT statements go to the driver directly: through SQLAlchemy's nested
    transactions they cost a tenth of a KV write (docs/decisions.md, "Speed, round two").

    With `chain` (the writer's kept PostgreSQL transaction, `Tx.with_commit`), a block's
    RELEASE is not sent on its own: it goes with the transaction's next savepoint statement,
    in one query, or is left to the COMMIT, which ends every savepoint (a round trip fewer
    per job of a batch, docs/decisions.md, "Speed, round six"). Statements run meanwhile run
    inside the finished savepoint, which changes nothing they do.
    """
    due = 0
    if chain is not None:
        chain.check_open()
        due = chain.take_releases()
    run_statement(conn, "; ".join([_RELEASE] * due + [_BEGIN]))
    try:
        yield
    except (sa_exc.DataError, OverflowError) as exc:
        _undo(conn, chain)
        raise errors.InvalidInput("a value is out of range for storage") from exc
    except BaseException:
        _undo(conn, chain)
        raise
    if chain is None:
        run_statement(conn, _RELEASE)
    else:
        chain.release_later()


def _undo(conn: Connection, chain: WithCommit | None) -> None:
    """Roll the innermost savepoint back and release it. With `chain`, the savepoints that
    ended inside it and still wait for their RELEASE are newer: each is rolled back to and
    released first, newest first (ROLLBACK TO is what an aborted transaction accepts), then
    the block's own, in one query."""
    if conn.invalidated:
        return  # the connection was lost: the transaction is gone, the error says so
    if chain is None:
        run_statement(conn, _ROLLBACK)
        run_statement(conn, _RELEASE)
        return
    run_statement(conn, "; ".join([_ROLLBACK, _RELEASE] * (chain.take_releases() + 1)))


def run_statement(
    conn: Connection, sql: str, params: tuple[Any, ...] = (), *, begins: bool = False
) -> None:
    """Run a statement that returns no rows on the driver's connection, in the driver's own
    parameter style (prepared on PostgreSQL when it has parameters), its errors raised as
    SQLAlchemy's. `begins`: the SQL begins the transaction itself (PostgreSQL: psycopg would
    send a BEGIN of its own first, outside a transaction)."""
    fairy = conn.connection
    driver: Any = fairy.driver_connection
    try:
        if conn.dialect.name == "postgresql":
            _pg_statement(driver, sql, params, begins=begins)
        else:
            driver.execute(sql, params).close()
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy(conn, fairy, sql, params, exc) from exc


#: Raw SQL of `run_statement` rewritten for libpq (`pgwire.numbered`), by its text.
_PG_SQL: dict[str, tuple[bytes, list[str] | None] | None] = {}


def _pg_statement(driver: Any, sql: str, params: tuple[Any, ...], *, begins: bool) -> None:
    pg = _load_pg()
    if sql not in _PG_SQL:
        _PG_SQL[sql] = pg.numbered(sql)
    query = _PG_SQL[sql]
    if query is not None and query[1] is None and pg.usable(driver, begins=begins):
        pg.run(driver, query[0], params)
    elif params:
        driver.execute(sql, params, prepare=True).close()
    else:
        driver.execute(sql).close()


def on_driver(conn: Connection, what: str, call: Callable[[Any], T]) -> T:
    """`call` the driver's connection of `conn` (a BEGIN, COMMIT or ROLLBACK of its own), its
    errors raised as SQLAlchemy's (as `run_statement`); `what` names it in an error."""
    fairy = conn.connection
    try:
        return call(fairy.driver_connection)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy(conn, fairy, what, (), exc) from exc


class Queries:
    """A group of queries on the connection of one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def savepoint(self) -> AbstractContextManager[None]:
        """A savepoint on this transaction (see `savepoint`)."""
        return savepoint(self.conn)


def _load_pg() -> Any:
    global _pg  # (imported once, on the first PostgreSQL statement)
    if _pg is None:
        from strongroom.storage import pgwire

        _pg = pgwire
    return _pg


#: A prebuilt statement `_Compiled` runs.
Statement = sa.Select[Any] | sa.Insert | sa.Update


class _Compiled:
    """A statement compiled once for one dialect: its SQL text, how to order its parameters,
    and the converters its result columns need (the work SQLAlchemy repeats on every execute).
    Both are planned here so that a call does only what its statement needs (most parameters
    and columns need no conversion)."""

    def __init__(
        self,
        statement: Statement,
        dialect: Dialect,
        column_keys: Sequence[str] | None = None,
    ) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql = compiled.string
        #: PostgreSQL: the SQL with `$n` parameters and the order of their names, for libpq
        #: (`pgwire`); None elsewhere, or when it cannot be rewritten (psycopg runs it).
        self.pg: tuple[bytes, list[str] | None] | None = None
        if dialect.name == "postgresql":
            self.pg = _load_pg().numbered(self.sql)
        order = compiled.positiontup  # None: named parameters (psycopg's pyformat)
        self.positional = order is not None
        binds = compiled.binds
        #: (name, bind processor or None, the statement's own value, whether the caller must
        #: give one) per parameter, in the driver's order: a literal in the statement
        #: (`substr(path, 1, ...)`) is a parameter of its own, used when the caller gives none.
        self.plan: list[tuple[str, Callable[[Any], Any] | None, Any, bool]] = [
            (
                name,
                binds[name].type._cached_bind_processor(dialect),
                binds[name].value,
                binds[name].required,
            )
            for name in (order if order is not None else binds)
        ]
        converters = [
            column[3]._cached_result_processor(dialect, None) for column in compiled._result_columns
        ]
        self.width = len(converters)
        #: (column index, converter) of the columns that need one.
        self.converters: list[tuple[int, Callable[[Any], Any]]] = [
            (i, convert) for i, convert in enumerate(converters) if convert is not None
        ]
        #: The same, each as a converter of a whole column (`columns`).
        self.column_converters: list[tuple[int, Callable[[Sequence[Any]], list[Any]]]] = [
            (i, COLUMN_CONVERTERS.get(convert) or functools.partial(_convert_column, convert))
            for i, convert in self.converters
        ]

    def params(self, values: Mapping[str, Any]) -> Any:
        bound = []
        for name, processor, literal, required in self.plan:
            if name in values:
                value = values[name]
            elif required:  # a column of an INSERT, a `bindparam()` with no value of its own
                raise KeyError(f"no value for parameter {name!r}")
            else:
                value = literal
            bound.append(value if processor is None else processor(value))
        if self.positional:
            return tuple(bound)
        return {name: value for (name, *_), value in zip(self.plan, bound, strict=True)}

    def pg_values(self, params: Any) -> Sequence[Any]:
        """`params(...)` in the order of `pg`'s `$n` parameters."""
        assert self.pg is not None  # noqa: S101 - only called when it is set
        names = self.pg[1]
        return params if names is None else [params[name] for name in names]

    def row(self, raw: tuple[Any, ...]) -> tuple[Any, ...]:
        if len(raw) != self.width:
            raise ValueError(f"expected {self.width} columns, got {len(raw)}")
        if not self.converters:
            return tuple(raw)
        row = list(raw)
        for i, convert in self.converters:
            value = row[i]
            if value is not None:
                row[i] = convert(value)
        return tuple(row)

    def columns(self, raw: Sequence[tuple[Any, ...]]) -> list[Sequence[Any]]:
        """Rows as converted columns (one sequence per result column, in order)."""
        if not raw:
            return [() for _ in range(self.width)]
        if len(raw[0]) != self.width:
            raise ValueError(f"expected {self.width} columns, got {len(raw[0])}")
        columns: list[Sequence[Any]] = list(zip(*raw, strict=True))
        for i, convert in self.column_converters:
            columns[i] = convert(columns[i])
        return columns


def _convert_column(convert: Callable[[Any], Any], values: Sequence[Any]) -> list[Any]:
    return [None if value is None else convert(value) for value in values]


_COMPILED: dict[tuple[int, str, tuple[str, ...] | None], _Compiled] = {}
#: Insert statements with their primary key returned (PostgreSQL), by the plain one's id.
_RETURNING: dict[int, sa.Insert] = {}


def _compiled(
    dialect: Dialect,
    statement: Statement,
    column_keys: Sequence[str] | None = None,
) -> _Compiled:
    key = (id(statement), dialect.name, None if column_keys is None else tuple(column_keys))
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = _COMPILED[key] = _Compiled(statement, dialect, column_keys)
    return compiled


def _execute(
    conn: Connection, statement: sa.Select[Any], values: Mapping[str, Any], *, one: bool = False
) -> tuple[Sequence[tuple[Any, ...]], _Compiled]:
    """Run a prebuilt SELECT on the driver's connection; return its rows, unconverted (`one`:
    at most the first), and the compiled statement."""
    dialect = conn.dialect
    compiled = _compiled(dialect, statement)
    fairy = conn.connection
    driver: Any = fairy.driver_connection
    params = compiled.params(values)
    try:
        if compiled.pg is not None and _pg.usable(driver):
            result = _pg.run(driver, compiled.pg[0], compiled.pg_values(params))
            if one:
                row = _pg.first(driver, result)
                return ([] if row is None else [row]), compiled
            return _pg.rows(driver, result), compiled
        if dialect.name == "postgresql":
            cursor = driver.execute(compiled.sql, params, prepare=True)
        else:
            cursor = driver.execute(compiled.sql, params)
        try:
            if one:
                raw = cursor.fetchone()
                return ([] if raw is None else [raw]), compiled
            return cursor.fetchall(), compiled
        finally:
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy(conn, fairy, compiled.sql, params, exc) from exc


def _as_sqlalchemy(conn: Connection, fairy: Any, sql: str, params: Any, exc: Any) -> Exception:
    """A driver's error (`exc`, raised by a statement run on `fairy`, the pool's wrapper the
    statement ran on) as SQLAlchemy raises it, which `Storage.translated_errors` turns into
    StorageUnavailable like any other statement's: a `DBAPIError` subclass without the
    parameters in its message (`hide_parameters`, as the engines are configured: values are
    envelopes, paths, addresses), a lost connection invalidated so that it does not go back
    to the pool.

    The callers catch the driver's errors (`dialect.loaded_dbapi.Error`) with a plain
    try/except: a context manager around each driver call cost about 2 us, several times per
    request."""
    dialect = conn.dialect
    base = dialect.loaded_dbapi.Error
    lost = dialect.is_disconnect(exc, fairy.dbapi_connection, None)
    if lost:
        # As SQLAlchemy's own execute does on a disconnect (`Connection.
        # _handle_dbapi_exception`): every pooled connection opened before now is replaced on
        # its next checkout (a restarted server ended them all), then this one is dropped.
        conn.engine.pool._invalidate(fairy, exc)
        conn.invalidate(exc)
    error: Exception = sa_exc.DBAPIError.instance(
        sql,
        params,
        exc,
        base,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=dialect,
    )
    return error


def fetch_first(
    conn: Connection, statement: sa.Select[Any], values: Mapping[str, Any]
) -> tuple[Any, ...] | None:
    """The first row of a prebuilt SELECT (a module constant), run on the driver's own
    connection in `conn`'s transaction: the SQL is compiled once per dialect, and the driver
    prepares it once per connection (sqlite3's statement cache; psycopg `prepare=True`). Rows
    are plain tuples in the statement's column order, converted as SQLAlchemy would.

    On a hot read this costs a fraction of `conn.execute` (measured in docs/decisions.md,
    "Speed, round one"); anything else uses SQLAlchemy as usual.
    """
    raw, compiled = _execute(conn, statement, values, one=True)
    return compiled.row(raw[0]) if raw else None


def fetch_all(
    conn: Connection, statement: sa.Select[Any], values: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Every row of a prebuilt SELECT (as `fetch_first`): plain tuples, converted as
    SQLAlchemy would."""
    return list(zip(*fetch_columns(conn, statement, values), strict=True))


def prefix_range(dialect: str, prefix: str) -> tuple[str, str] | None:
    """The bounds `[low, high)` of exactly the text values that start with `prefix`, compared
    bytewise (`bytewise`), for a non-empty ASCII prefix: the values from `prefix` up to
    `prefix` with its last character + 1. An index in bytewise order holds them as one range,
    so no substr test is needed beside it: on SQLite the unique index on path (SQLite compares
    text bytewise, UTF-8), on PostgreSQL `idx_vault_secrets_mount_path` (`COLLATE "C"`,
    migration 0007). None for another prefix (its callers test substr), and for one ending in
    DEL, whose bound past it (U+0080) a database in a single-byte encoding cannot hold."""
    if dialect not in ("sqlite", "postgresql") or not prefix or not prefix.isascii():
        return None
    if prefix[-1] == "\x7f":
        return None
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def bytewise(column: sa.ColumnElement[str], dialect: str) -> sa.ColumnElement[str]:
    """`column` compared bytewise, as `prefix_range`'s bounds are: as it is on SQLite, in the
    "C" collation on PostgreSQL (whose default collation orders text otherwise)."""
    return column.collate("C") if dialect == "postgresql" else column


def fetch_columns(
    conn: Connection, statement: sa.Select[Any], values: Mapping[str, Any]
) -> list[Sequence[Any]]:
    """Every row of a prebuilt SELECT (as `fetch_first`) as columns: one sequence of values
    per result column, converted as SQLAlchemy would, a column at a time (for thousands of
    rows: converting row by row, then reading each row's fields, cost more than the query)."""
    raw, compiled = _execute(conn, statement, values)
    columns: list[Sequence[Any]] = compiled.columns(raw)
    return columns


def fetch_column(
    conn: Connection, statement: sa.Select[Any], values: Mapping[str, Any]
) -> list[Any]:
    """The first column of every row of a prebuilt SELECT (as `fetch_first`), unconverted:
    for text and integer columns, which need no conversion."""
    raw, _ = _execute(conn, statement, values)
    return [row[0] for row in raw]


class WithCommit:
    """Statements of the writer's kept PostgreSQL transaction (`Storage._kept_transaction`)
    held back to be sent with later ones, in one round trip: the batch's audit rows, its last
    statement, go with the COMMIT; each job's savepoint RELEASE with the next job's SAVEPOINT
    (`savepoint`). These round trips were spent holding the vault-wide lock
    (docs/decisions.md, "Speed, round six").

    The rows go as parameters of their prepared INSERT, with the COMMIT, in one round trip
    of libpq's pipeline mode (`pgwire.pipelined`). Without a pipeline (a libpq before 14) they
    are bound on the client (psycopg's `ClientCursor`, which quotes each value for the
    connection) into one simple-protocol query with the COMMIT: their values are then in the
    query's text, which PostgreSQL logs when it refuses the query (docs/security.md, "What is
    stored in plaintext"): audit metadata, never a secret value."""

    __slots__ = ("_inserts", "_releases")

    def __init__(self) -> None:
        self._inserts: list[tuple[_Compiled, list[dict[str, Any]]]] = []
        self._releases = 0

    def check_open(self) -> None:
        """Refuse a statement after rows were held back for the COMMIT: it would run before
        them (a chain head read would miss them; a savepoint rolled back would not undo
        them).

        Raises:
            RuntimeError: rows are held back (a bug in the caller).
        """
        if self._inserts:
            raise RuntimeError("rows are held for the COMMIT: nothing may run after them")

    def release_later(self) -> None:
        """A savepoint ended: its RELEASE goes with the next savepoint statement."""
        self._releases += 1

    def take_releases(self) -> int:
        """How many RELEASEs are due (the caller sends them); none are due afterwards."""
        due, self._releases = self._releases, 0
        return due

    def insert(
        self,
        conn: Connection,
        statement: sa.Insert,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str],
    ) -> None:
        """Hold back `execute_many(conn, statement, rows, columns)` until `commit`: nothing
        may run on the transaction after it (`check_open`). Bound on the client, the smallest
        BIGINT would be refused (`-9223372036854775808::BIGINT` reads as a negated cast that
        overflows): audit rows hold ids and user ids, never negative."""
        if rows:
            compiled = _compiled(conn.dialect, statement, columns)
            self._inserts.append((compiled, [compiled.params(row) for row in rows]))

    def commit(self, conn: Connection) -> None:
        """Send what was held back and the COMMIT, in one round trip (nothing when nothing
        was held back: the caller commits)."""
        if not self._inserts:
            return
        fairy = conn.connection
        driver: Any = fairy.driver_connection
        inserts, self._inserts = self._inserts, []
        self._releases = 0  # (the COMMIT ends every savepoint)
        pg = _load_pg()
        if pg.PIPELINE and pg.usable(driver) and all(c.pg is not None for c, _ in inserts):
            # Each row by its prepared INSERT, and the COMMIT, in one round trip (libpq's
            # pipeline): the values as parameters, adapted in C, where quoting each into the
            # query's text cost more than the rest of the batch (docs/decisions.md, "Speed,
            # round eight").
            rows = [(c.pg[0], c.pg_values(p)) for c, params in inserts for p in params]  # type: ignore[index]
            try:
                pg.pipelined(driver, rows, b"COMMIT")
            except conn.dialect.loaded_dbapi.Error as exc:
                raise _as_sqlalchemy(conn, fairy, "INSERT ...; COMMIT", (), exc) from exc
            return
        from psycopg import ClientCursor  # (PostgreSQL only)

        cursor = ClientCursor(driver)
        try:
            statements = []
            for compiled, params in inserts:
                head, _, row = compiled.sql.partition(" VALUES ")
                values = ", ".join(cursor.mogrify(row, one) for one in params)
                statements.append(f"{head} VALUES {values}")
            statements.append("COMMIT")
            query = "; ".join(statements)  # (no parameters: sent as it is)
            if pg.usable(driver):
                pg.run(driver, query.encode(driver.info.encoding))
            else:
                cursor.execute(query)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _as_sqlalchemy(conn, fairy, "INSERT ...; COMMIT", (), exc) from exc
        finally:
            cursor.close()


def execute_many(
    conn: Connection,
    statement: sa.Insert | sa.Update,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
) -> None:
    """Run a prebuilt INSERT or UPDATE (a module constant) once per row of `rows`, in one
    driver call on `conn`'s transaction (the driver's executemany; psycopg pipelines it), with
    values converted as SQLAlchemy would. An INSERT names its `columns` (always the same ones
    for one statement); an UPDATE's parameters are its own bind parameters.

    A SQLAlchemy execute costs several times the statement itself: for the audit batch and a
    KV write's rows it was the larger part of their cost (docs/decisions.md, "Speed, round
    two")."""
    if not rows:
        return
    dialect = conn.dialect
    compiled = _compiled(dialect, statement, columns)
    params = [compiled.params(row) for row in rows]
    fairy = conn.connection
    driver: Any = fairy.driver_connection
    try:
        if dialect.name == "postgresql":
            if len(params) == 1 and compiled.pg is not None and _pg.usable(driver):
                _pg.run(driver, compiled.pg[0], compiled.pg_values(params[0]))
                return
            with driver.cursor() as cursor:
                cursor.executemany(compiled.sql, params)
        else:
            driver.executemany(compiled.sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy(conn, fairy, compiled.sql, params, exc) from exc


def insert_one(
    conn: Connection, statement: sa.Insert, columns: Sequence[str], values: Mapping[str, Any]
) -> int:
    """Run a prebuilt INSERT of one row (as `execute_many`) and return its integer primary
    key (SQLite: the row id; PostgreSQL: the statement's RETURNING)."""
    dialect = conn.dialect
    if dialect.name == "postgresql":
        returning = _RETURNING.get(id(statement))
        if returning is None:
            table = statement.table
            returning = _RETURNING[id(statement)] = statement.returning(*table.primary_key)
        statement = returning
    compiled = _compiled(dialect, statement, columns)
    params = compiled.params(values)
    fairy = conn.connection
    driver: Any = fairy.driver_connection
    try:
        if dialect.name == "postgresql":
            if compiled.pg is not None and _pg.usable(driver):
                row = _pg.first(driver, _pg.run(driver, compiled.pg[0], compiled.pg_values(params)))
                assert row is not None  # noqa: S101 - INSERT ... RETURNING returns its row
                return int(row[0])
            with driver.execute(compiled.sql, params, prepare=True) as cursor:
                return int(cursor.fetchone()[0])
        cursor = driver.execute(compiled.sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy(conn, fairy, compiled.sql, params, exc) from exc
    try:
        return int(cursor.lastrowid)
    finally:
        cursor.close()
