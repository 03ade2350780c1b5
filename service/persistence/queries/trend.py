"""Read-only: one client's surveys, scores, assessments and open rupture, for the trend view.

The rows are those the rupture rules look at (queries/assessments.py `client_history`):
answered surveys, and surveys that reached the client and were not returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, or_, select

from service.persistence.tables import assessments, responses, rupture_episodes, surveys


@dataclass(frozen=True)
class SurveyRow:
    survey_id: str
    session_id: str
    instrument_id: str
    status: str
    session_ended_at: datetime | None
    created_at: datetime
    total: float | None  # None: not returned
    subscales: dict | None
    decision: str | None  # None: not assessed yet
    reasons: tuple[str, ...]
    episode_id: str | None

    @property
    def returned(self) -> bool:
        return self.total is not None

    @property
    def when(self) -> datetime:
        return self.session_ended_at or self.created_at


@dataclass(frozen=True)
class EpisodeRow:
    id: str
    opened_at: datetime
    opened_by_survey_id: str


def client_surveys(conn: Connection, practice_id: str, patient_id: str) -> list[SurveyRow]:
    """The client's surveys in session order (as the rupture rules order them)."""
    rows = conn.execute(
        select(surveys.c.id, surveys.c.session_id, surveys.c.instrument_id, surveys.c.status,
               surveys.c.session_ended_at, surveys.c.created_at, responses.c.total,
               responses.c.subscales, assessments.c.decision, assessments.c.reasons,
               assessments.c.episode_id)
        .outerjoin(responses, responses.c.survey_id == surveys.c.id)
        .outerjoin(assessments, assessments.c.survey_id == surveys.c.id)
        .where(surveys.c.practice_id == practice_id, surveys.c.patient_id == patient_id,
               or_(surveys.c.status.in_(["answered", "expired"]),
                   and_(surveys.c.status == "closed", surveys.c.sent_at.is_not(None))))
    ).all()
    found = [
        SurveyRow(survey_id=r.id, session_id=r.session_id, instrument_id=r.instrument_id,
                  status=r.status, session_ended_at=r.session_ended_at, created_at=r.created_at,
                  total=r.total, subscales=r.subscales, decision=r.decision,
                  reasons=tuple(r.reasons or ()), episode_id=r.episode_id)
        for r in rows
    ]
    return sorted(found, key=lambda row: (row.when, row.created_at))


def open_episode(conn: Connection, practice_id: str, patient_id: str) -> EpisodeRow | None:
    """The client's open rupture episode, if any."""
    row = conn.execute(
        select(rupture_episodes.c.id, rupture_episodes.c.opened_at,
               rupture_episodes.c.opened_by_survey_id)
        .where(rupture_episodes.c.practice_id == practice_id,
               rupture_episodes.c.patient_id == patient_id,
               rupture_episodes.c.status == "open")
        .order_by(rupture_episodes.c.opened_at.desc())
    ).first()
    return EpisodeRow(row.id, row.opened_at, row.opened_by_survey_id) if row else None
