"""Shared set-up for the benchmarks: a throw-away database per backend."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


@contextmanager
def sqlite_dsn() -> Iterator[str]:
    """A DSN on a new SQLite file in a temporary directory (WAL, synchronous=FULL)."""
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


@contextmanager
def pg_dsn(base: str) -> Iterator[str]:
    """A DSN on a new PostgreSQL schema, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def backend(name: str, pg_base: str) -> Iterator[str]:
    """A fresh database of backend `name` (`sqlite` or `postgresql`)."""
    manager = sqlite_dsn() if name == "sqlite" else pg_dsn(pg_base)
    with manager as dsn:
        yield dsn
