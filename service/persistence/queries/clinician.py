"""SQL for what clinicians see in their EHR: the per-client clinician state behind the CDS
cards, alert actions (acknowledgments, snoozes), CDS Hooks feedback and the JWT ids seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, delete, func, select

from service.domain.alert_actions import ACKNOWLEDGE, SNOOZE
from service.persistence.sql import insert_if_absent
from service.persistence.tables import (
    alert_actions,
    assessments,
    cds_feedback,
    cds_token_ids,
    clinician_states,
    responses,
    rupture_episodes,
    surveys,
)

_session_at = func.coalesce(surveys.c.session_ended_at, surveys.c.created_at)


def returned_totals(conn: Connection, practice_id: str, patient_id: str) -> list[dict]:
    """The client's returned surveys (total, instrument, session time), oldest session first."""
    rows = conn.execute(
        select(responses.c.total, surveys.c.instrument_id, surveys.c.session_ended_at,
               surveys.c.created_at)
        .join(responses, responses.c.survey_id == surveys.c.id)
        .where(surveys.c.practice_id == practice_id, surveys.c.patient_id == patient_id)
    ).mappings().all()
    found = [{"total": r["total"], "instrument_id": r["instrument_id"],
              "session_at": r["session_ended_at"] or r["created_at"]} for r in rows]
    return sorted(found, key=lambda r: r["session_at"])


def assessments_of(conn: Connection, practice_id: str, patient_id: str) -> list[dict]:
    """The client's assessments in the order they were made, with their episode's status."""
    rows = conn.execute(
        select(assessments.c.decision, assessments.c.reasons, assessments.c.episode_id,
               assessments.c.assessed_at, surveys.c.session_ended_at, surveys.c.created_at,
               rupture_episodes.c.status.label("episode_status"))
        .join(surveys, surveys.c.id == assessments.c.survey_id)
        .outerjoin(rupture_episodes, rupture_episodes.c.id == assessments.c.episode_id)
        .where(surveys.c.practice_id == practice_id, surveys.c.patient_id == patient_id)
    ).mappings().all()
    found = [{**r, "session_at": r["session_ended_at"] or r["created_at"]} for r in rows]
    return sorted(found, key=lambda r: (r["assessed_at"], r["session_at"]))


def save_clinician_state(conn: Connection, state: dict) -> None:
    key = and_(clinician_states.c.practice_id == state["practice_id"],
               clinician_states.c.patient_id == state["patient_id"])
    if conn.execute(select(clinician_states.c.practice_id).where(key)).first():
        conn.execute(clinician_states.update().where(key).values(**state))
    else:
        conn.execute(clinician_states.insert().values(**state))


def clients_with_assessments(conn: Connection, practice_id: str | None = None) -> list[tuple]:
    """(practice_id, patient_id) of every client with at least one assessment."""
    statement = (select(surveys.c.practice_id, surveys.c.patient_id).distinct()
                 .join(assessments, assessments.c.survey_id == surveys.c.id)
                 .order_by(surveys.c.practice_id, surveys.c.patient_id))
    if practice_id is not None:
        statement = statement.where(surveys.c.practice_id == practice_id)
    return [tuple(row) for row in conn.execute(statement).all()]


_acknowledgment = alert_actions.alias("acknowledgment")
_snooze = alert_actions.alias("snooze")
# The end of the latest snooze made in the current stage (a snooze covers its stage only).
_SNOOZED_UNTIL = (
    select(func.max(_snooze.c.until))
    .where(_snooze.c.practice_id == clinician_states.c.practice_id,
           _snooze.c.episode_id == clinician_states.c.episode_id,
           _snooze.c.action == SNOOZE, _snooze.c.at >= clinician_states.c.stage_since)
    .correlate(clinician_states).scalar_subquery()
)
_CARD_STATE = (
    select(clinician_states, _acknowledgment.c.actor.label("acknowledged_by"),
           _acknowledgment.c.at.label("acknowledged_at"), _SNOOZED_UNTIL.label("snoozed_until"))
    .outerjoin(_acknowledgment, and_(
        _acknowledgment.c.practice_id == clinician_states.c.practice_id,
        _acknowledgment.c.episode_id == clinician_states.c.episode_id,
        _acknowledgment.c.action == ACKNOWLEDGE,
        _acknowledgment.c.at >= clinician_states.c.stage_since))
    .where(clinician_states.c.practice_id == bindparam("practice_id"),
           clinician_states.c.patient_id == bindparam("patient_id"))
    .order_by(_acknowledgment.c.at)
    .limit(1)
)


def card_state(conn: Connection, practice_id: str, patient_id: str) -> dict | None:
    """One query on the request path: the client's state, its first acknowledgment made since
    the current stage of the open rupture began (none: acknowledged_at is None), and the end
    of the latest snooze of that stage (none: snoozed_until is None)."""
    row = conn.execute(_CARD_STATE, {"practice_id": practice_id, "patient_id": patient_id})
    found = row.mappings().first()
    return dict(found) if found else None


def state_for_card(conn: Connection, practice_id: str, card_uuid: str) -> dict | None:
    """The client state whose current rupture card has this uuid."""
    row = conn.execute(select(clinician_states).where(
        clinician_states.c.practice_id == practice_id,
        clinician_states.c.card_uuid == card_uuid)).mappings().first()
    return dict(row) if row else None


def add_feedback(conn: Connection, feedback: dict) -> bool:
    return insert_if_absent(conn, cds_feedback, feedback)


def remember_token_id(conn: Connection, key: str, expires_at: datetime) -> bool:
    """True the first time this (issuer, jti) key is seen; False for a replay."""
    return insert_if_absent(conn, cds_token_ids, {"key": key, "expires_at": expires_at})


def forget_expired_token_ids(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(cds_token_ids).where(cds_token_ids.c.expires_at < now)).rowcount
