"""Alembic's environment: the app's settings give the database, the models give
the target schema. Written for MySQL/MariaDB and SQLite alike (batch mode, so
SQLite can alter tables)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from app.core.settings import load_settings
from app.extensions.database import create_database_engine
from app.models import Base

target_metadata = Base.metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    # Tests and the `flask db` commands hand over a connection; the alembic CLI does not.
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = create_database_engine(load_settings())  # the alembic CLI
    with engine.connect() as new_connection:
        run(new_connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported: run them against a database.")
run_online()
