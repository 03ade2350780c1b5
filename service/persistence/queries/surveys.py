"""Surveys: one per completed session, and the states it moves through.

scheduled → sent → answered | expired | closed ; or skipped | failed
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from service.persistence.sql import insert_if_absent
from service.persistence.tables import clients, practices, surveys

SCHEDULED, SENT, ANSWERED, EXPIRED, CLOSED, SKIPPED, FAILED = (
    "scheduled", "sent", "answered", "expired", "closed", "skipped", "failed")
OPEN = (SCHEDULED, SENT)
LIST_COLUMNS = ("created_at", "id", "practice_id", "session_id", "status", "channel",
                "status_reason")
_CLIENT = ((clients.c.practice_id == surveys.c.practice_id)
           & (clients.c.patient_id == surveys.c.patient_id))


def create(conn: Connection, values: dict) -> bool:
    """A new survey; False when the session already has one."""
    return insert_if_absent(conn, surveys, values)


def find(conn: Connection, survey_id: str) -> dict | None:
    row = conn.execute(select(surveys).where(surveys.c.id == survey_id)).mappings().first()
    return dict(row) if row else None


def find_with_locale(conn: Connection, survey_id: str) -> dict | None:
    """The survey and its client's locale, for the page that asks the questions."""
    row = conn.execute(select(surveys, clients.c.locale).outerjoin(clients, _CLIENT)
                       .where(surveys.c.id == survey_id)).mappings().first()
    return dict(row) if row else None


def client_of(conn: Connection, survey_id: str) -> dict | None:
    """practice_id, patient_id, practice name, the client's locale, opt-out time and way, and
    the survey's status, expiry and creation time."""
    row = conn.execute(
        select(surveys.c.practice_id, surveys.c.patient_id, practices.c.name,
               clients.c.locale, clients.c.opted_out_at, clients.c.opted_out_by,
               surveys.c.status, surveys.c.expires_at, surveys.c.created_at)
        .join(practices, practices.c.id == surveys.c.practice_id)
        .outerjoin(clients, _CLIENT)
        .where(surveys.c.id == survey_id)
    ).mappings().first()
    return dict(row) if row else None


def newer_exists(conn: Connection, practice_id: str, patient_id: str, created_at: datetime,
                 survey_id: str) -> bool:
    """Whether the client has a survey created after this one (its link is then not the
    client's latest)."""
    return conn.execute(select(surveys.c.id).where(
        surveys.c.practice_id == practice_id, surveys.c.patient_id == patient_id,
        surveys.c.created_at > created_at, surveys.c.id != survey_id).limit(1)).first() is not None


def close_open(conn: Connection, practice_id: str, patient_id: str,
               reason: str) -> list[tuple[str, datetime | None]]:
    """Close the client's open surveys; (id, sent_at) of each one closed."""
    return [tuple(row) for row in conn.execute(update(surveys).where(
        surveys.c.practice_id == practice_id, surveys.c.patient_id == patient_id,
        surveys.c.status.in_(OPEN)).values(status=CLOSED, status_reason=reason)
        .returning(surveys.c.id, surveys.c.sent_at)).all()]


def set_status(conn: Connection, survey_id: str, **values) -> None:
    conn.execute(update(surveys).where(surveys.c.id == survey_id).values(**values))


def move(conn: Connection, survey_id: str, from_status: str | tuple[str, ...], **values) -> bool:
    """Change the survey only if it is (still) in `from_status`; True if it was."""
    allowed = (from_status,) if isinstance(from_status, str) else from_status
    return bool(conn.execute(update(surveys).where(
        surveys.c.id == survey_id, surveys.c.status.in_(allowed)).values(**values)).rowcount)


def recent(conn: Connection, practice_id: str | None, status: str | None,
           limit: int) -> list[dict]:
    """The newest surveys, LIST_COLUMNS only: ids and states, no personal data."""
    query = (select(*(surveys.c[name] for name in LIST_COLUMNS))
             .order_by(surveys.c.created_at.desc()).limit(limit))
    if practice_id:
        query = query.where(surveys.c.practice_id == practice_id)
    if status:
        query = query.where(surveys.c.status == status)
    return [dict(row) for row in conn.execute(query).mappings()]
