"""Deleting clients' data that is kept no longer: old surveys with their responses and
assessments, closed rupture episodes, old events (CONTRACT §11, docs/security.md).

A client with an open rupture episode keeps their whole history: the rules judge its repair
against the level before it, and its Flag in the EHR is closed only by a later survey.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, delete, exists, func, or_, select

from service.persistence.queries import escalations
from service.persistence.tables import (
    alert_actions,
    assessments,
    cds_feedback,
    responses,
    rupture_episodes,
    surveys,
    webhook_events,
)


def delete_old_history(conn: Connection, practice_id: str,
                       before: datetime) -> tuple[dict[str, int], set[str]]:
    """Delete the practice's surveys created before `before` (and answered before it, if they
    were), with their responses and assessments, and the episodes closed before it with their
    alert actions; (counts, the patients whose history changed)."""
    old = select(surveys.c.id).outerjoin(responses, responses.c.survey_id == surveys.c.id).where(
        surveys.c.practice_id == practice_id, surveys.c.created_at < before,
        surveys.c.status.not_in(["scheduled", "sent"]),
        or_(responses.c.submitted_at.is_(None), responses.c.submitted_at < before))
    open_clients = select(rupture_episodes.c.patient_id).where(
        rupture_episodes.c.practice_id == practice_id, rupture_episodes.c.status == "open")
    kept = conn.execute(select(func.count(func.distinct(surveys.c.patient_id))).where(
        surveys.c.id.in_(old), surveys.c.patient_id.in_(open_clients))).scalar_one()
    doomed_rows = conn.execute(select(surveys.c.id, surveys.c.patient_id).where(
        surveys.c.id.in_(old), surveys.c.patient_id.not_in(open_clients))).all()
    doomed = [survey_id for survey_id, _patient in doomed_rows]
    counts = {"kept_for_open_rupture": kept, "surveys": 0, "responses": 0, "assessments": 0}
    for start in range(0, len(doomed), 500):
        ids = doomed[start:start + 500]
        counts["assessments"] += _delete(conn, assessments, assessments.c.survey_id.in_(ids))
        counts["responses"] += _delete(conn, responses, responses.c.survey_id.in_(ids))
        counts["surveys"] += _delete(conn, surveys, surveys.c.id.in_(ids))
    closed = list(conn.execute(select(rupture_episodes.c.id).where(
        rupture_episodes.c.practice_id == practice_id, rupture_episodes.c.status != "open",
        rupture_episodes.c.closed_at < before,
        ~exists().where(assessments.c.episode_id == rupture_episodes.c.id))).scalars())
    counts["alert_actions"] = _delete(conn, alert_actions, alert_actions.c.episode_id.in_(closed))
    counts["episode_tasks"] = escalations.delete_for_episodes(conn, practice_id, closed)
    counts["episodes"] = _delete(conn, rupture_episodes, rupture_episodes.c.id.in_(closed))
    return counts, {patient for _survey, patient in doomed_rows}


def delete_old_feedback(conn: Connection, practice_id: str, before: datetime) -> int:
    """Delete the practice's CDS Hooks feedback received before `before`."""
    return _delete(conn, cds_feedback, and_(cds_feedback.c.practice_id == practice_id,
                                            cds_feedback.c.received_at < before))


def delete_old_events(conn: Connection, practice_id: str, before: datetime) -> int:
    """Delete the practice's events received before `before`, except those still waiting for
    the worker; their session keys stay (ids only), so an old session sent again is still a
    duplicate."""
    return _delete(conn, webhook_events, and_(
        webhook_events.c.practice_id == practice_id, webhook_events.c.received_at < before,
        webhook_events.c.outcome != "accepted"))


def _delete(conn: Connection, table, where) -> int:
    return conn.execute(delete(table).where(where)).rowcount
