"""Raw SQL on a test database, bypassing strongroom (the attacker with database access, or a
test that needs to look at stored rows)."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg


def sqlite_path(dsn: str) -> str:
    return dsn.removeprefix("sqlite:///")


def raw_sql(dsn: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement in its own committed transaction; `?` placeholders on both backends."""
    if dsn.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path(dsn), timeout=30)
        try:
            cur = conn.execute(sql, params)
            rows = cur.fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg_cur = pg.execute(sql.replace("?", "%s"), params)
        return pg_cur.fetchall() if pg_cur.description else []


def raw_script(dsn: str, sqlite_sql: str, pg_sql: str) -> None:
    """Run a backend-specific script (triggers and the like)."""
    if dsn.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path(dsn), timeout=30)
        try:
            conn.executescript(sqlite_sql)
        finally:
            conn.close()
        return
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute(pg_sql)
