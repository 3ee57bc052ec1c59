"""`TxBase`: one transaction's connection and savepoints, shared by every part of `Tx`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from strongroom import errors

__all__ = ["TxBase"]


class TxBase:
    """The connection of one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Run a block whose changes are undone alone if it raises.

        A value the database refuses (out of range, too long) fails only this block, as
        InvalidInput, so one bad request cannot fail the other jobs of a group commit.
        """
        nested = self.conn.begin_nested()
        try:
            yield
        except sa_exc.DataError as exc:
            nested.rollback()
            raise errors.InvalidInput("a value is out of range for storage") from exc
        except BaseException:
            nested.rollback()
            raise
        nested.commit()
