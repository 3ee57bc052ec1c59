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

import itertools
import re
import select
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer

__all__ = [
    "PIPELINE",
    "begin_with_lock",
    "first",
    "numbered",
    "pipelined",
    "rows",
    "run",
    "usable",
]

_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
_IDLE = pq.TransactionStatus.IDLE
_BAD = pq.ConnStatus.BAD
_NAMES = itertools.count()
#: libpq has a pipeline mode (14 and later; psycopg's binary package ships a recent one).
PIPELINE = psycopg.Pipeline.is_supported()
#: A parameter in psycopg's styles: `%(name)s`, `%s`, or an escaped `%%`.
_PARAM = re.compile(r"%\((\w+)\)s|%s|%%|%")


#: Prepared statements one connection keeps at most (psycopg's own manager keeps 100): past
#: it the oldest is deallocated (a value's type follows the value, so one statement can be
#: prepared for several combinations of integer sizes and NULLs).
MAX_PREPARED = 256
#: The attribute of a psycopg connection that holds its `_State` (freed with the connection:
#: psycopg's Transformer refers to its connection, so a weak mapping would keep both alive).
_ATTRIBUTE = "_strongroom_pgwire"


class _State:
    """What one connection keeps: its Transformer and its prepared statements by (SQL, the
    parameters' types), as psycopg's prepare manager keys them."""

    __slots__ = ("prepared", "transformer")

    def __init__(self, driver: psycopg.Connection[Any]) -> None:
        self.transformer = Transformer(driver)
        self.prepared: dict[tuple[bytes, tuple[int, ...]], bytes] = {}


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


def begin_with_lock(driver: Any) -> bool:
    """Whether a plain `BEGIN` of ours may begin a transaction on `driver`: psycopg would send
    just that (idle, not in autocommit, no isolation level, read-only or deferrable mode set
    on the connection, which psycopg's own BEGIN would carry)."""
    return (
        not driver.autocommit
        and driver.pgconn.transaction_status == _IDLE
        and driver.isolation_level is None
        and driver.read_only is None
        and driver.deferrable is None
    )


def run(driver: Any, query: bytes, values: Sequence[Any] = ()) -> pq.abc.PGresult:
    """Run `query` ($-numbered; several statements only without `values`) on `driver`, prepared
    once per connection when it has values; its result. The caller checked `usable`. Holds
    the connection's lock, as psycopg's own execute does.

    Raises:
        psycopg.Error: what psycopg raises for the same failure (the class of the server's
            SQLSTATE; OperationalError when the connection is lost without one).
    """
    with driver.lock:
        pgconn = driver.pgconn
        if not values:
            return _checked(driver, pgconn.exec_(query))
        state = _state(driver)
        name, params, formats = _prepared(driver, state, query, values)
        result = pgconn.exec_prepared(name, params, param_formats=formats)
        if result.status not in _OK and _sqlstate(result) == b"26000":
            # The statement is gone (a DEALLOCATE ALL or DISCARD ALL on this connection): the
            # next call prepares it anew; in autocommit, this one at once (inside a
            # transaction the error has aborted the transaction).
            state.prepared.clear()
            if driver.autocommit:
                name, params, formats = _prepared(driver, state, query, values)
                result = pgconn.exec_prepared(name, params, param_formats=formats)
        return _checked(driver, result)


def pipelined(driver: Any, statements: Sequence[tuple[bytes, Sequence[Any]]], last: bytes) -> None:
    """Run `statements` (each a $-numbered query with its values, prepared as by `run`), then
    `last` (no values: a COMMIT), in one round trip (libpq's pipeline mode), inside the
    transaction of `driver` (the caller checked `usable`). The values go as parameters, never
    in the query's text. Anything that interrupts the exchange half-way closes the connection
    (whether `last` ran is unknown; the caller's error handling drops the connection).

    Raises:
        psycopg.Error: as `run`, for the first statement that failed (those after it are not
            run; the transaction is aborted); OperationalError when the exchange broke off.
    """
    with driver.lock:
        state = _state(driver)
        sends = [_prepared(driver, state, query, values) for query, values in statements]
        pgconn = driver.pgconn
        pgconn.enter_pipeline_mode()
        try:
            failed = _exchange(pgconn, sends, last)
            pgconn.exit_pipeline_mode()
        except BaseException as exc:
            driver.close()  # never reused half-way through a pipeline (libpq's state unknown)
            if isinstance(exc, Exception) and not isinstance(exc, psycopg.Error):
                raise psycopg.OperationalError(
                    f"the pipeline to the server broke off ({type(exc).__name__})"
                ) from exc
            raise
        if failed is not None:
            if _sqlstate(failed) == b"26000":
                state.prepared.clear()
            _checked(driver, failed)


def _exchange(
    pgconn: Any, sends: Sequence[tuple[bytes, Sequence[Any], list[Any]]], last: bytes
) -> pq.abc.PGresult | None:
    """Send a pipeline and read its results up to its sync; the first failed result, if any.
    Waits in `poll` with the GIL released (libpq's blocking PQgetResult would hold it)."""
    for name, params, formats in sends:
        pgconn.send_query_prepared(name, params, param_formats=formats)
    pgconn.send_query_params(last, None)
    pgconn.pipeline_sync()
    poller = select.poll()  # (any descriptor number, unlike select)
    poller.register(pgconn.socket, select.POLLIN | select.POLLOUT)
    while pgconn.flush():  # a nonblocking connection: the rest once writable
        poller.poll()
        pgconn.consume_input()  # (the server may answer before it has read everything)
    poller.modify(pgconn.socket, select.POLLIN)
    failed: pq.abc.PGresult | None = None
    ended = False  # the previous result ended a statement's results (a None)
    while True:
        while pgconn.is_busy():
            poller.poll()
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            if ended or pgconn.status == _BAD:
                # two ends in a row with nothing to wait for: libpq has given up on the
                # connection (it will never deliver the sync)
                raise psycopg.OperationalError("the connection to the server was lost")
            ended = True
            continue
        ended = False
        if result.status == pq.ExecStatus.PIPELINE_SYNC:
            return failed
        if failed is None and result.status not in _OK:
            failed = result


def _state(driver: Any) -> _State:
    state: _State | None = getattr(driver, _ATTRIBUTE, None)
    if state is None:
        state = _State(driver)
        setattr(driver, _ATTRIBUTE, state)
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
        if len(state.prepared) >= MAX_PREPARED:
            oldest = next(iter(state.prepared))
            # (a failure leaves the old statement on the server until the connection ends)
            driver.pgconn.exec_(b"DEALLOCATE " + state.prepared.pop(oldest))
        name = f"strongroom_{next(_NAMES)}".encode()
        _checked(driver, driver.pgconn.prepare(name, query, param_types=key[1]))
        state.prepared[key] = name
    return name, params, list(transformer.formats or ())


def rows(driver: Any, result: pq.abc.PGresult) -> list[tuple[Any, ...]]:
    """The rows of `result` (from `run` on `driver`) as tuples of Python values, loaded as a
    psycopg cursor loads them."""
    transformer = _state(driver).transformer
    transformer.set_pgresult(result)
    try:
        loaded: list[tuple[Any, ...]] = transformer.load_rows(0, result.ntuples, tuple)
    finally:
        transformer.set_pgresult(None)  # (a result is not kept beyond its call)
    return loaded


def first(driver: Any, result: pq.abc.PGresult) -> tuple[Any, ...] | None:
    """The first row of `result` (as `rows`), None when it has none."""
    if not result.ntuples:
        return None
    transformer = _state(driver).transformer
    transformer.set_pgresult(result)
    try:
        row: tuple[Any, ...] = transformer.load_row(0, tuple)
    finally:
        transformer.set_pgresult(None)
    return row


def _sqlstate(result: pq.abc.PGresult) -> bytes | None:
    state: bytes | None = result.error_field(pq.DiagnosticField.SQLSTATE)
    return state


def _checked(driver: Any, result: pq.abc.PGresult) -> pq.abc.PGresult:
    """`result`, or the error psycopg raises for it: the class of its SQLSTATE, or
    OperationalError for a connection lost without one (libpq's blocking calls end with their
    own error then, the server's reason in its message, where psycopg's nonblocking execute
    would have read the server's error first: AdminShutdown and the like, which SQLAlchemy
    and `storage.health` count as a lost connection all the same)."""
    if result.status in _OK:
        return result
    if _sqlstate(result) is None and driver.pgconn.status == _BAD:
        message = pq.error_message(driver.pgconn, encoding=driver.info.encoding)
        raise psycopg.OperationalError(f"the connection to the server was lost: {message}")
    raise pg_errors.error_from_result(result, encoding=driver.info.encoding)
