"""Run the Alembic migrations shipped inside the package."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine, secret_keys: Sequence[str] | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    # Migrations that encrypt existing rows (0005) take the keys from here, else from the
    # environment; a database without such rows needs none.
    config.attributes["secret_keys"] = tuple(secret_keys or ())
    return config


def upgrade(engine: Engine, secret_keys: Sequence[str] | None = None) -> None:
    """Bring the database schema to the newest revision."""
    command.upgrade(alembic_config(engine, secret_keys), "head")
