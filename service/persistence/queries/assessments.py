"""The survey being assessed, its client's history, and the stored assessment (one per survey)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, and_, or_, select

from service.crypto import ClientVault
from service.persistence.queries.responses import opened
from service.persistence.tables import assessments, responses, surveys


def survey(conn: Connection, survey_id: str) -> dict | None:
    """The survey row, or None."""
    row = conn.execute(select(surveys).where(surveys.c.id == survey_id)).mappings().first()
    return dict(row) if row else None


def stored(conn: Connection, survey_id: str) -> dict | None:
    """The assessment made for a survey, or None before it is assessed."""
    row = conn.execute(
        select(assessments).where(assessments.c.survey_id == survey_id)
    ).mappings().first()
    return dict(row) if row else None


def insert(conn: Connection, assessment: Mapping) -> None:
    """Store a survey's assessment (survey_id, decision, reasons, flag_text, interpretation,
    episode_id, assessed_at)."""
    conn.execute(assessments.insert().values(**assessment))


# The surveys the rupture rules look at: answered, or reached the client and not returned
# (expired, or closed by the next session); never-sent surveys are not the client's silence.
ASSESSABLE = or_(surveys.c.status.in_(["answered", "expired"]),
                 and_(surveys.c.status == "closed", surveys.c.sent_at.is_not(None)))


def session_order(row: Mapping) -> tuple:
    """Where a survey falls in its client's history: its session's end, then its creation."""
    return (row["session_ended_at"] or row["created_at"], row["created_at"])


def client_history(conn: Connection, vault: ClientVault, survey: Mapping) -> list[dict]:
    """The client's assessable surveys up to this one, in session order, ending with this one.

    Each row: id, session_id, session_ended_at, and the stored response (answers, total,
    subscales, pomp), None for a survey that was not returned.
    """
    rows = conn.execute(
        select(surveys.c.id, surveys.c.session_id, surveys.c.session_ended_at,
               surveys.c.created_at, responses.c.sealed_answers, responses.c.total,
               responses.c.subscales, responses.c.pomp)
        .outerjoin(responses, responses.c.survey_id == surveys.c.id)
        .where(surveys.c.practice_id == survey["practice_id"],
               surveys.c.patient_id == survey["patient_id"],
               surveys.c.instrument_id == survey["instrument_id"], ASSESSABLE)
    ).mappings().all()
    cutoff = session_order(survey)
    earlier = sorted((r for r in rows if r["id"] != survey["id"] and session_order(r) <= cutoff),
                     key=session_order)
    current = [r for r in rows if r["id"] == survey["id"]]
    return [opened(vault, row) for row in [*earlier, *current]]
