"""Where each practice's FHIR polling resumes (table poll_cursors)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from service.persistence.sql import insert_if_absent
from service.persistence.tables import poll_cursors


@dataclass(frozen=True)
class Cursor:
    cursor: datetime | None
    polled_at: datetime | None
    failures: int
    last_error: str | None


def get(conn: Connection, practice_id: str, resource: str) -> Cursor | None:
    row = (
        conn.execute(
            select(poll_cursors).where(
                poll_cursors.c.practice_id == practice_id, poll_cursors.c.resource == resource
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Cursor(row["cursor"], row["polled_at"], row["failures"], row["last_error"])


def start_at(conn: Connection, practice_id: str, resource: str, when: datetime) -> bool:
    """Create the cursor at `when` unless the practice already polls this resource."""
    return insert_if_absent(
        conn,
        poll_cursors,
        dict(
            practice_id=practice_id,
            resource=resource,
            cursor=when,
            polled_at=None,
            failures=0,
            last_error=None,
        ),
    )


def advance(
    conn: Connection, practice_id: str, resource: str, newest: datetime | None, now: datetime
) -> None:
    """A search finished: move the cursor forward (never back) and clear the failures."""
    start_at(conn, practice_id, resource, newest or now)
    current = get(conn, practice_id, resource)
    cursor = max(filter(None, (current.cursor, newest)), default=None)
    conn.execute(
        _where(practice_id, resource).values(
            cursor=cursor, polled_at=now, failures=0, last_error=None
        )
    )


def failed(conn: Connection, practice_id: str, resource: str, reason: str, now: datetime) -> int:
    """A search failed (the EHR is busy or down): count it; returns the failures in a row."""
    start_at(conn, practice_id, resource, now)
    conn.execute(
        _where(practice_id, resource).values(
            failures=poll_cursors.c.failures + 1, last_error=reason[:300]
        )
    )
    return get(conn, practice_id, resource).failures


def _where(practice_id: str, resource: str):
    return update(poll_cursors).where(
        poll_cursors.c.practice_id == practice_id, poll_cursors.c.resource == resource
    )
