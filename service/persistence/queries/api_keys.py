"""SQL for practice API keys: store a digest, find a live one, revoke one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from service.persistence.tables import practice_api_keys as keys


def insert_key(conn: Connection, key_id: str, practice_id: str, digest: str, label: str | None,
               now: datetime) -> None:
    conn.execute(keys.insert().values(id=key_id, practice_id=practice_id, digest=digest,
                                      label=label, created_at=now))


def live_key(conn: Connection, key_id: str) -> tuple[str, str] | None:
    """(practice_id, digest) of a key that exists and is not revoked."""
    row = conn.execute(select(keys.c.practice_id, keys.c.digest).where(
        keys.c.id == key_id, keys.c.revoked_at.is_(None))).first()
    return (row.practice_id, row.digest) if row else None


def revoke_key(conn: Connection, practice_id: str, key_id: str, now: datetime) -> bool:
    """Revoke a live key of this practice; False if there is none by that id."""
    result = conn.execute(update(keys).where(
        keys.c.id == key_id, keys.c.practice_id == practice_id, keys.c.revoked_at.is_(None),
    ).values(revoked_at=now))
    return result.rowcount == 1


def practice_keys(conn: Connection, practice_id: str) -> list[dict]:
    """Every key of a practice (ids, labels, dates; never a digest), oldest first."""
    rows = conn.execute(select(keys.c.id, keys.c.label, keys.c.created_at, keys.c.revoked_at)
                        .where(keys.c.practice_id == practice_id)
                        .order_by(keys.c.created_at, keys.c.id)).mappings().all()
    return [dict(row) for row in rows]
