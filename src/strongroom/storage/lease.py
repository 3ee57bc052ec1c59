"""Leadership leases: which one process across a server's workers and instances runs the
background jobs (TTL cleanup).

On PostgreSQL a lease is a session-level advisory lock held on a connection of its own: the
database grants it to one session at a time, and releases it when that session ends (a crashed
leader's lease frees itself). On SQLite there is one machine and the server designates one
process; `try_lead` always grants the lease there.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

__all__ = ["Lease", "try_lead"]

_KEY = (
    "SELECT ('x' || substr(md5('strongroom:lead:' || :name || ':' || current_schema()), 1, 15))"
    "::bit(60)::bigint"
)


class Lease:
    """Held leadership; `release()` gives it up (also on a lost connection)."""

    def __init__(self, conn: Connection | None = None, key: int | None = None) -> None:
        self._conn = conn
        self._key = key

    def is_held(self) -> bool:
        """True while the lease still holds (its database session answers)."""
        if self._conn is None:
            return True
        try:
            self._conn.execute(sa.text("SELECT 1"))
            self._conn.commit()
        except sa_exc.SQLAlchemyError:
            self.release()
            return False
        return True

    def release(self) -> None:
        """Give the lease up. Idempotent; never raises."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            conn.commit()
        except sa_exc.SQLAlchemyError:
            pass  # the session is gone, and the lock with it
        finally:
            try:
                conn.invalidate()  # never back to the pool with a lock or a broken state
                conn.close()
            except sa_exc.SQLAlchemyError:
                pass


def try_lead(engine: Engine, name: str) -> Lease | None:
    """The lease named `name` if no other session holds it, else None.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database cannot be reached (the caller translates).
    """
    if engine.dialect.name != "postgresql":
        return Lease()
    conn = engine.connect()
    try:
        key = int(conn.execute(sa.text(_KEY), {"name": name}).scalar_one())
        got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()
    except BaseException:
        conn.close()
        raise
    if not got:
        conn.close()
        return None
    return Lease(conn, key)
