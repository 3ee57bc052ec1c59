"""Direct SQL access to a test database, as an attacker with database write access has it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def execute(dsn: str, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Run one statement outside Strongroom and return the rows (if any)."""
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql), params or {})
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()
