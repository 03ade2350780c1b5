"""Practices: each stored as its validated document, sealed (encrypted) as a whole."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from service.persistence.tables import practices


def save(conn: Connection, practice_id: str, name: str, timezone: str, sealed_document: str, *,
         now: datetime) -> bool:
    """Create or update; True when the practice is new."""
    values = dict(name=name, timezone=timezone, sealed_document=sealed_document, updated_at=now)
    exists = conn.execute(select(practices.c.id).where(practices.c.id == practice_id)).first()
    if exists:
        conn.execute(practices.update().where(practices.c.id == practice_id).values(**values))
        return False
    conn.execute(practices.insert().values(id=practice_id, created_at=now, **values))
    return True


def sealed_document(conn: Connection, practice_id: str) -> str | None:
    return conn.execute(select(practices.c.sealed_document)
                        .where(practices.c.id == practice_id)).scalar()


def all_ids(conn: Connection) -> list[str]:
    return list(conn.execute(select(practices.c.id).order_by(practices.c.id)).scalars())
