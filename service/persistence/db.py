"""Engine creation and the pragmas SQLite needs to be a reliable embedded store."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def make_engine(database_url: str) -> Engine:
    """Create the engine; for SQLite, make the folder and turn on WAL and a busy timeout.

    Error text never carries the statement's parameters (`hide_parameters`): they hold phone
    numbers, e-mail addresses and answers, and a failed statement's error is logged.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10,
                             hide_parameters=True)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        private_sqlite_file(Path(url.database))
    engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        # Let pysqlite not manage transactions, so BEGIN IMMEDIATE below takes effect.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Deleted rows (erasure, retention) are overwritten with zeros, not just unlinked.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn):
        # Take the write lock at the start: avoids SQLITE_BUSY upgrades from read to write.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


# SQLite's companions of a database file: it creates them with the database file's mode.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_sqlite_file(path: Path) -> None:
    """Make an embedded SQLite file readable and writable by the service's user only (0600):
    created so if missing, and its mode (and that of its WAL, shared-memory and journal files)
    set to 0600 if it was created otherwise (before this check, or by hand)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError:
        return  # the folder is not ours to write: SQLite will say so, naming the file
    for candidate in (path, *(path.with_name(path.name + end) for end in SQLITE_COMPANIONS)):
        if candidate.exists() and candidate.stat().st_mode & 0o077:
            candidate.chmod(0o600)
