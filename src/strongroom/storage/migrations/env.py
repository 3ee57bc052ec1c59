"""Alembic environment: runs on the connection Strongroom hands it (never reads a config file)."""

from __future__ import annotations

from alembic import context

from strongroom.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # only when a developer runs `alembic revision --autogenerate`
    from sqlalchemy import create_engine

    url = context.config.get_main_option("sqlalchemy.url") or "sqlite://"
    with create_engine(url).connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
