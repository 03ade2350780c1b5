"""Survey messages in flight: marked (and committed) before the provider is called, cleared
with the job's completion. A mark found on a rerun means an earlier attempt may have reached
the provider: the handler asks the provider before it sends again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, select

from service.persistence.sql import insert_if_absent
from service.persistence.tables import sends_in_flight

_KEY = (sends_in_flight.c.survey_id, sends_in_flight.c.kind, sends_in_flight.c.channel)


def in_flight_since(conn: Connection, survey_id: str, kind: str, channel: str) -> datetime | None:
    """When the first attempt still unaccounted for began, or None."""
    return conn.execute(select(sends_in_flight.c.started_at).where(
        *(column == value for column, value in zip(_KEY, (survey_id, kind, channel))))).scalar()


def mark(conn: Connection, survey_id: str, kind: str, channel: str, now: datetime) -> None:
    """Mark the message in flight (the earliest mark stays)."""
    insert_if_absent(conn, sends_in_flight, dict(survey_id=survey_id, kind=kind, channel=channel,
                                                 started_at=now))


def clear(conn: Connection, survey_id: str, kind: str) -> None:
    """The job is done: the survey's messages of this kind are accounted for."""
    conn.execute(delete(sends_in_flight).where(sends_in_flight.c.survey_id == survey_id,
                                               sends_in_flight.c.kind == kind))
