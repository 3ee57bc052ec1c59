"""PostgreSQL statements sent on libpq's connection under psycopg: the hot path's statements.

psycopg's `Connection.execute` costs ~85 us of Python on this project's VMs per statement (a
cursor, its adapters map, the nonblocking send-and-wait generators, the prepare manager), where
libpq's own `PQexecPrepared` through psycopg's `pgconn` costs ~20 (docs/decisions.md, "Speed,
round eight"). A server read made 2-3 such statements and a batch of the writer 3-4 more, so
the prebuilt statements of `txbase` (module constants: the KV read, the chain head, the
writer's lock and rows) go through here: psycopg's own `Transformer` still adapts every value
(the same types both ways as a cursor), psycopg's error classes are raised, and its
`Connection` stays the owner of the connection (its `closed`/`broken`, which SQLAlchemy reads
to tell a lost connection, are libpq's status).

Only where psycopg would send the statement alone: the connection is in autocommit, or inside
a transaction, or the statement begins one itself (`begins`). On a connection idle outside a
transaction psycopg first sends a BEGIN of its own; `usable` says no there, and the caller
uses psycopg.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import select
import weakref
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer

__all__ = ["PIPELINE", "first", "numbered", "pipelined", "rows", "run", "usable"]

_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
_IDLE = pq.TransactionStatus.IDLE
_BAD = pq.ConnStatus.BAD
_NAMES = itertools.count()
#: libpq has a pipeline mode (14 and later; psycopg's binary package ships a recent one).
PIPELINE = psycopg.Pipeline.is_supported()
#: A parameter in psycopg's styles: `%(name)s`, `%s`, or an escaped `%%`.
_PARAM = re.compile(r"%\((\w+)\)s|%s|%%|%")


class _State:
    """What one connection keeps: its Transformer and its prepared statements by (SQL, the
    parameters' types), as psycopg's prepare manager keys them."""

    __slots__ = ("__weakref__", "prepared", "transformer")

    def __init__(self, driver: psycopg.Connection[Any]) -> None:
        self.transformer = Transformer(driver)
        self.prepared: dict[tuple[bytes, tuple[int, ...]], bytes] = {}


_STATES: weakref.WeakKeyDictionary[Any, _State] = weakref.WeakKeyDictionary()


def numbered(sql: str) -> tuple[bytes, list[str] | None] | None:
    """`sql` in psycopg's parameter style rewritten in PostgreSQL's (`$1`, `$2`, ...): the
    query and the order of its named parameters (None: positional `%s`). None when it cannot
    be rewritten (both styles, or a lone `%`): psycopg runs it."""
    names: list[str] = []
    positional = 0
    failed = False

    def replace(found: re.Match[str]) -> str:
        nonlocal positional, failed
        text, name = found.group(0), found.group(1)
        if text == "%%":
            return "%"
        if text == "%":
            failed = True
            return text
        if name is None:
            positional += 1
            return f"${positional}"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    query = _PARAM.sub(replace, sql)
    if failed or (positional and names):
        return None
    return query.encode(), (names if names else None)


def usable(driver: Any, *, begins: bool = False) -> bool:
    """Whether a statement may go on `driver` (a psycopg connection) here: psycopg would send
    it alone (autocommit, or inside a transaction), or it begins the transaction itself."""
    return (
        begins
        or driver.autocommit
        or (
            driver.pgconn.transaction_status != _IDLE and getattr(driver, "_pipeline", None) is None
        )
    )


def run(driver: Any, query: bytes, values: Sequence[Any] = ()) -> pq.abc.PGresult:
    """Run `query` ($-numbered; several statements only without `values`) on `driver`, prepared
    once per connection when it has values; its result. The caller checked `usable`.

    Raises:
        psycopg.Error: what psycopg raises for the same failure (the class of the server's
            SQLSTATE; OperationalError when the connection is lost).
    """
    pgconn = driver.pgconn
    if not values:
        return _checked(driver, pgconn.exec_(query))
    state = _state(driver)
    name, params, formats = _prepared(driver, state, query, values)
    result = pgconn.exec_prepared(name, params, param_formats=formats)
    if result.status not in _OK and result.error_field(pq.DiagnosticField.SQLSTATE) == b"26000":
        # The statement is gone (a DEALLOCATE ALL or DISCARD ALL on this connection): the
        # next call prepares it anew; in autocommit, this one at once (inside a transaction
        # the error has aborted it).
        state.prepared.clear()
        if driver.autocommit:
            return run(driver, query, values)
    return _checked(driver, result)


def pipelined(driver: Any, statements: Sequence[tuple[bytes, Sequence[Any]]], last: bytes) -> None:
    """Run `statements` (each a $-numbered query with its values, prepared as by `run`), then
    `last` (no values: a COMMIT), in one round trip (libpq's pipeline mode), inside the
    transaction of `driver` (the caller checked `usable`). The values go as parameters, never
    in the query's text.

    Raises:
        psycopg.Error: as `run`, for the first statement that failed (those after it are not
            run; the transaction is aborted).
    """
    state = _state(driver)
    sends = [_prepared(driver, state, query, values) for query, values in statements]
    pgconn = driver.pgconn
    pgconn.enter_pipeline_mode()
    try:
        for name, params, formats in sends:
            pgconn.send_query_prepared(name, params, param_formats=formats)
        pgconn.send_query_params(last, None)
        pgconn.pipeline_sync()
        while pgconn.flush():  # (a nonblocking connection: the rest once writable)
            select.select([], [pgconn.socket], [])
        failed: pq.abc.PGresult | None = None
        while True:
            while pgconn.is_busy():
                # waits with the GIL released (libpq's PQgetResult would wait holding it)
                select.select([pgconn.socket], [], [])
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:
                continue  # the end of one statement's results
            if result.status == pq.ExecStatus.PIPELINE_SYNC:
                break
            if failed is None and result.status not in _OK:
                failed = result
    finally:
        # (after a failure half-way the caller drops the connection: nothing to add to it)
        with contextlib.suppress(psycopg.Error):
            pgconn.exit_pipeline_mode()
    if failed is not None:
        if failed.error_field(pq.DiagnosticField.SQLSTATE) == b"26000":
            state.prepared.clear()
        _checked(driver, failed)


def _state(driver: Any) -> _State:
    state = _STATES.get(driver)
    if state is None:
        state = _STATES[driver] = _State(driver)
    return state


def _prepared(
    driver: Any, state: _State, query: bytes, values: Sequence[Any]
) -> tuple[bytes, Sequence[Any], list[Any]]:
    """The prepared statement of `query` for these values' types (prepared now if new), the
    values adapted, and their formats."""
    transformer = state.transformer
    params = transformer.dump_sequence(values, [PyFormat.AUTO] * len(values))
    key = (query, tuple(transformer.types or ()))
    name = state.prepared.get(key)
    if name is None:
        name = f"strongroom_{next(_NAMES)}".encode()
        _checked(driver, driver.pgconn.prepare(name, query, param_types=key[1]))
        state.prepared[key] = name
    return name, params, list(transformer.formats or ())


def rows(driver: Any, result: pq.abc.PGresult) -> list[tuple[Any, ...]]:
    """The rows of `result` (from `run` on `driver`) as tuples of Python values, loaded as a
    psycopg cursor loads them."""
    transformer = _state(driver).transformer
    transformer.set_pgresult(result)
    loaded: list[tuple[Any, ...]] = transformer.load_rows(0, result.ntuples, tuple)
    return loaded


def first(driver: Any, result: pq.abc.PGresult) -> tuple[Any, ...] | None:
    """The first row of `result` (as `rows`), None when it has none."""
    if not result.ntuples:
        return None
    transformer = _state(driver).transformer
    transformer.set_pgresult(result)
    row: tuple[Any, ...] = transformer.load_row(0, tuple)
    return row


def _checked(driver: Any, result: pq.abc.PGresult) -> pq.abc.PGresult:
    if result.status in _OK:
        return result
    if driver.pgconn.status == _BAD:
        message = pq.error_message(driver.pgconn, encoding=driver.info.encoding)
        raise psycopg.OperationalError(f"the connection to the server was lost: {message}")
    raise pg_errors.error_from_result(result, encoding=driver.info.encoding)
