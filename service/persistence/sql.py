"""Small dialect-aware statements shared by the handlers."""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def insert_if_absent(conn: Connection, table: Table, values: dict) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True if the row was added (no exception on duplicates)."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    # RETURNING, because psycopg reports no rowcount for ON CONFLICT DO NOTHING.
    statement = insert(table).values(**values).on_conflict_do_nothing()
    statement = statement.returning(*table.primary_key.columns)
    return conn.execute(statement).first() is not None
