"""Deleting clients' data that is kept no longer: old surveys with their responses and
assessments, closed rupture episodes, old events (CONTRACT §11, docs/security.md).

A client with an open rupture episode keeps their whole history: the rules judge its repair
against the level before it, and its Flag in the EHR is closed only by a later survey.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, delete, exists, func, or_, select

from service.persistence.tables import (
    assessments,
    responses,
    rupture_episodes,
    surveys,
    webhook_events,
)

HISTORY_COUNTS = ("surveys", "responses", "assessments", "episodes", "kept_for_open_rupture")


def delete_old_history(conn: Connection, practice_id: str, before: datetime) -> dict[str, int]:
    """Delete the practice's surveys created before `before` (and answered before it, if they
    were), with their responses and assessments, and the episodes closed before it; counts."""
    old = select(surveys.c.id).outerjoin(responses, responses.c.survey_id == surveys.c.id).where(
        surveys.c.practice_id == practice_id, surveys.c.created_at < before,
        surveys.c.status.not_in(["scheduled", "sent"]),
        or_(responses.c.submitted_at.is_(None), responses.c.submitted_at < before))
    open_clients = select(rupture_episodes.c.patient_id).where(
        rupture_episodes.c.practice_id == practice_id, rupture_episodes.c.status == "open")
    kept = conn.execute(select(func.count(func.distinct(surveys.c.patient_id))).where(
        surveys.c.id.in_(old), surveys.c.patient_id.in_(open_clients))).scalar_one()
    doomed = [row[0] for row in conn.execute(
        old.where(surveys.c.patient_id.not_in(open_clients))).all()]
    counts = {"kept_for_open_rupture": kept, "surveys": 0, "responses": 0, "assessments": 0}
    for start in range(0, len(doomed), 500):
        ids = doomed[start:start + 500]
        counts["assessments"] += _delete(conn, assessments, assessments.c.survey_id.in_(ids))
        counts["responses"] += _delete(conn, responses, responses.c.survey_id.in_(ids))
        counts["surveys"] += _delete(conn, surveys, surveys.c.id.in_(ids))
    counts["episodes"] = _delete(conn, rupture_episodes, and_(
        rupture_episodes.c.practice_id == practice_id, rupture_episodes.c.status != "open",
        rupture_episodes.c.closed_at < before,
        ~exists().where(assessments.c.episode_id == rupture_episodes.c.id)))
    return counts


def delete_old_events(conn: Connection, practice_id: str, before: datetime) -> int:
    """Delete the practice's events received before `before`, except those still waiting for
    the worker; their session keys stay (ids only), so an old session sent again is still a
    duplicate."""
    return _delete(conn, webhook_events, and_(
        webhook_events.c.practice_id == practice_id, webhook_events.c.received_at < before,
        webhook_events.c.outcome != "accepted"))


def _delete(conn: Connection, table, where) -> int:
    return conn.execute(delete(table).where(where)).rowcount
