"""Everything stored encrypted, read and written back as a whole (for key rotation)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, select, update

from service.persistence.tables import practices, smart_launches

# (table, key column, encrypted column) of every value sealed with the service key.
SEALED_COLUMNS = ((practices, practices.c.id, practices.c.sealed_document),
                  (smart_launches, smart_launches.c.state_hash, smart_launches.c.sealed_verifier))


def reseal_all(conn: Connection, reseal: Callable[[str], str]) -> dict[str, int]:
    """Rewrite every sealed value through `reseal`; counts by table."""
    counts: dict[str, int] = {}
    for table, key, column in SEALED_COLUMNS:
        rows = conn.execute(select(key, column).where(column.is_not(None))).all()
        for row_key, sealed in rows:
            conn.execute(update(table).where(key == row_key).values({column.name: reseal(sealed)}))
        counts[table.name] = len(rows)
    return counts
