"""`Queries`: the base of every query group (each shares its transaction's connection), and the
savepoint every part of a transaction uses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from strongroom import errors

__all__ = ["DATABASE_ERRORS", "Queries", "savepoint"]

#: What the database driver raises (the writer fails a whole batch on these: the transaction
#: may be unusable).
DATABASE_ERRORS: tuple[type[Exception], ...] = (sa_exc.SQLAlchemyError,)


@contextmanager
def savepoint(conn: Connection) -> Iterator[None]:
    """Run a block whose changes are undone alone if it raises.

    A value the database refuses (out of range, too long; an integer the driver cannot bind)
    fails only this block, as InvalidInput, so one bad request cannot fail the other jobs of a
    group commit.
    """
    nested = conn.begin_nested()
    try:
        yield
    except (sa_exc.DataError, OverflowError) as exc:
        nested.rollback()
        raise errors.InvalidInput("a value is out of range for storage") from exc
    except BaseException:
        nested.rollback()
        raise
    nested.commit()


class Queries:
    """A group of queries on the connection of one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def savepoint(self) -> AbstractContextManager[None]:
        """A savepoint on this transaction (see `savepoint`)."""
        return savepoint(self.conn)
