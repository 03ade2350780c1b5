"""Run the Alembic migrations shipped inside the package."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")
log = structlog.get_logger(__name__)


def alembic_config(engine: Engine, secret_keys: Sequence[str] | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    # Migrations that encrypt existing rows (0007) take the keys from here, else from the
    # environment; a database without such rows needs none.
    config.attributes["secret_keys"] = tuple(secret_keys or ())
    return config


def upgrade(engine: Engine, secret_keys: Sequence[str] | None = None) -> int:
    """Bring the database schema to the newest revision; returns how many rows stored in
    plaintext a migration encrypted (0007). SQLite is then vacuumed, so the plaintext does not
    linger in freed pages or the WAL; PostgreSQL needs `VACUUM FULL` (docs/security.md)."""
    config = alembic_config(engine, secret_keys)
    command.upgrade(config, "head")
    sealed = config.attributes.get("rows_sealed", 0)
    if sealed and engine.dialect.name == "sqlite":
        vacuum_sqlite(engine)
    return sealed


def vacuum_sqlite(engine: Engine) -> None:
    """Rewrite a SQLite file without its freed pages, and empty its WAL. The migration is done
    either way: a database busy in another process is left as it is, and the log says so."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("VACUUM")  # the connection is in autocommit mode (db.make_engine)
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    except sqlite3.OperationalError as error:
        log.warning("database not vacuumed after encrypting plaintext rows: stop the service "
                    "and run `sqlite3 FILE VACUUM` so freed pages keep no plaintext",
                    error=str(error))
    finally:
        raw.close()
