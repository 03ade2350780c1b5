"""The transactional outbox: durable jobs, scheduled in the database.

Every piece of work (process an event, send a survey, remind, expire, write back) is a row here,
written in the same transaction as the state that caused it. The relay publishes due rows to the
broker; a worker runs the job and marks the row done in the same transaction as its effects.
Rows that were published but never finished are published again, so a broker that loses a
message, or a worker killed mid-job, delays work but never loses it. Retries with backoff are
rows made due again later; permanent failures stay here as the dead-letter store.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, delete, or_, select, update

from service.persistence.sql import insert_if_absent
from service.persistence.tables import outbox

PENDING, PUBLISHED, DONE, DEAD, DROPPED = "pending", "published", "done", "dead", "dropped"


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    practice_id: str | None
    payload: dict
    status: str
    attempts: int
    created_at: datetime
    last_error: dict | None = None


def enqueue(
    conn: Connection,
    kind: str,
    payload: dict,
    *,
    now: datetime,
    practice_id: str | None = None,
    available_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> str | None:
    """Add a job; with a dedupe_key, a second job for the same key is silently not added."""
    job_id = str(uuid.uuid4())
    values = dict(
        id=job_id, kind=kind, practice_id=practice_id, payload=payload, status=PENDING,
        dedupe_key=dedupe_key, attempts=0, available_at=available_at or now, created_at=now,
    )
    if dedupe_key is None:
        conn.execute(outbox.insert(), values)
        return job_id
    return job_id if insert_if_absent(conn, outbox, values) else None


def claim_due(conn: Connection, *, now: datetime, redeliver_after: float,
              limit: int = 100) -> list[Job]:
    """Mark due jobs published and return them (SKIP LOCKED lets several relays run at once)."""
    stale = now - timedelta(seconds=redeliver_after)
    due = or_(
        and_(outbox.c.status == PENDING, outbox.c.available_at <= now),
        and_(outbox.c.status == PUBLISHED, outbox.c.published_at <= stale),
    )
    query = select(outbox).where(due).order_by(outbox.c.available_at).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).mappings().all()
    if rows:
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_([row["id"] for row in rows]))
            .values(status=PUBLISHED, published_at=now)
        )
    return [_job(row) for row in rows]


def release(conn: Connection, job_ids: list[str]) -> None:
    """Put claimed jobs back as pending (the broker refused them)."""
    if job_ids:
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(job_ids), outbox.c.status == PUBLISHED)
            .values(status=PENDING)
        )


def load(conn: Connection, job_id: str) -> Job | None:
    row = conn.execute(select(outbox).where(outbox.c.id == job_id)).mappings().first()
    return _job(row) if row else None


def finish(conn: Connection, job_id: str, *, now: datetime) -> bool:
    """Mark a job done; False if another worker finished it first (the caller rolls back)."""
    result = conn.execute(
        update(outbox)
        .where(outbox.c.id == job_id, outbox.c.status.in_([PENDING, PUBLISHED]))
        .values(status=DONE, finished_at=now)
    )
    return result.rowcount == 1


def retry_later(conn: Connection, job_id: str, *, now: datetime, delay: float, error: dict) -> None:
    conn.execute(
        update(outbox)
        .where(outbox.c.id == job_id, outbox.c.status.in_([PENDING, PUBLISHED]))
        .values(
            status=PENDING, attempts=outbox.c.attempts + 1, last_error=error,
            available_at=now + timedelta(seconds=delay), published_at=None,
        )
    )


def dead_letter(conn: Connection, job_id: str, *, now: datetime, error: dict) -> None:
    conn.execute(
        update(outbox)
        .where(outbox.c.id == job_id, outbox.c.status.in_([PENDING, PUBLISHED]))
        .values(status=DEAD, attempts=outbox.c.attempts + 1, last_error=error, finished_at=now)
    )


def dead_letters(conn: Connection) -> list[Job]:
    rows = conn.execute(
        select(outbox).where(outbox.c.status == DEAD).order_by(outbox.c.finished_at)
    ).mappings().all()
    return [_job(row) for row in rows]


def replay(conn: Connection, job_id: str | None, *, now: datetime) -> int:
    """Make dead jobs (one, or all with job_id None) due again with a fresh attempt budget."""
    where = [outbox.c.status == DEAD]
    if job_id is not None:
        where.append(outbox.c.id == job_id)
    result = conn.execute(
        update(outbox).where(*where).values(
            status=PENDING, attempts=0, available_at=now, published_at=None, finished_at=None,
            created_at=now,
        )
    )
    return result.rowcount


def drop(conn: Connection, job_id: str, *, now: datetime) -> bool:
    result = conn.execute(
        update(outbox)
        .where(outbox.c.id == job_id, outbox.c.status == DEAD)
        .values(status=DROPPED, finished_at=now)
    )
    return result.rowcount == 1


def delete_finished(conn: Connection, *, before: datetime) -> int:
    """Delete jobs done or dropped before `before` (retention); how many. Dead jobs stay: the
    dead-letter store is emptied by replaying or dropping them."""
    return conn.execute(delete(outbox).where(
        outbox.c.status.in_([DONE, DROPPED]), outbox.c.finished_at < before)).rowcount


def delete_for(conn: Connection, *, survey_ids: list[str], event_ids: list[str],
               episode_ids: list[str] = ()) -> int:
    """Delete every job, in any state, about these surveys, events or rupture episodes
    (erasing a client)."""
    about = []
    if episode_ids:
        about.append(outbox.c.payload["episode_id"].as_string().in_(list(episode_ids)))
    if survey_ids:
        about.append(outbox.c.payload["survey_id"].as_string().in_(survey_ids))
    if event_ids:
        about.append(outbox.c.payload["event_id"].as_string().in_(event_ids))
    return conn.execute(delete(outbox).where(or_(*about))).rowcount if about else 0


def _job(row) -> Job:
    return Job(
        id=row["id"], kind=row["kind"], practice_id=row["practice_id"], payload=row["payload"],
        status=row["status"], attempts=row["attempts"], created_at=row["created_at"],
        last_error=row["last_error"],
    )
