"""Small dialect-aware statements shared by the handlers."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Connection, Insert, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def insert_if_absent(conn: Connection, table: Table, values: dict) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True if the row was added (no exception on duplicates)."""
    statement = _insert_ignoring_conflicts(conn.dialect.name, table)
    return conn.execute(statement, values).first() is not None


def insert_all_if_absent(conn: Connection, table: Table, rows: list[dict]) -> int:
    """The same for several rows in one statement; returns how many were added."""
    return len(conn.execute(_insert_ignoring_conflicts(conn.dialect.name, table), rows).all())


@lru_cache(maxsize=64)
def _insert_ignoring_conflicts(dialect: str, table: Table) -> Insert:
    # Built once and executed with the values as parameters: building `insert().values(...)`
    # on every call cost more CPU than the round trip to the database (profiled at intake).
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # RETURNING, because psycopg reports no rowcount for ON CONFLICT DO NOTHING.
    return insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)
