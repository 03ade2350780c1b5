"""Survey responses: the validated answers and the scores computed once, when they arrived."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from service.persistence.tables import responses


def add(conn: Connection, response_id: str, survey_id: str, answers: dict, scores,
        now: datetime) -> None:
    """Store validated answers with their scores (service.domain.scoring.Scores)."""
    conn.execute(responses.insert().values(
        id=response_id, survey_id=survey_id, answers=answers, total=scores.total,
        subscales=dict(scores.subscales), pomp=scores.pomp, submitted_at=now))


def for_survey(conn: Connection, survey_id: str) -> dict | None:
    """The response to a survey (id, answers, total, subscales, pomp, submitted_at), or None."""
    row = conn.execute(
        select(responses).where(responses.c.survey_id == survey_id)
    ).mappings().first()
    return dict(row) if row else None
