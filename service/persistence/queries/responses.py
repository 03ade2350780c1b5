"""Survey responses: the validated answers and the scores computed once, when they arrived."""

from __future__ import annotations

from sqlalchemy import Connection, select

from service.persistence.tables import responses


def for_survey(conn: Connection, survey_id: str) -> dict | None:
    """The response to a survey (id, answers, total, subscales, pomp, submitted_at), or None."""
    row = conn.execute(
        select(responses).where(responses.c.survey_id == survey_id)
    ).mappings().first()
    return dict(row) if row else None
