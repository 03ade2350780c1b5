"""Alembic environment: the URL comes from the caller (alliance db upgrade), never from a file."""

from __future__ import annotations

from alembic import context

from service.persistence.db import make_engine
from service.persistence.tables import metadata

config = context.config


def run_migrations_online() -> None:
    engine = (config.attributes.get("engine")
              or make_engine(config.get_main_option("sqlalchemy.url")))
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=metadata, render_as_batch=True,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
