"""Alembic environment: runs migrations on the connection `open_store` hands in, or on a URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

import childguard.store.models  # noqa: F401  (registers the tables on Base.metadata)
from childguard.store.base import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = context.config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    from childguard.config import database_url

    url = context.config.get_main_option("sqlalchemy.url") or database_url()
    engine = create_engine(url)
    with engine.begin() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
