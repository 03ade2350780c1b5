"""Everything the service holds on one client: read out (`alliance patients export`) or
deleted (`alliance patients erase`). What was written into the EHR stays there.

The audit log is kept: it records who read the client's data (ids only), which is itself a
safeguard the practice must keep (HIPAA §164.312(b), §164.316(b)(2): six years); the erasure
adds its own row.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, select

from service.crypto import ClientVault
from service.persistence import outbox
from service.persistence.queries import clients as stored_clients
from service.persistence.queries.responses import opened
from service.persistence.tables import (
    assessments,
    responses,
    rupture_episodes,
    session_keys,
    smart_sessions,
    surveys,
    webhook_events,
)

ERASED = ("jobs", "assessments", "responses", "surveys", "rupture_episodes", "session_keys",
          "webhook_events", "smart_sessions", "clients")


def erase_client(conn: Connection, practice_id: str, patient_id: str) -> dict[str, int]:
    """Delete every row about the client; counts by table (in ERASED order)."""
    survey_ids = _survey_ids(conn, practice_id, patient_id)
    event_ids = list(conn.execute(select(webhook_events.c.id).where(
        *_client(webhook_events, practice_id, patient_id))).scalars())
    counts = {"jobs": outbox.delete_for(conn, survey_ids=survey_ids, event_ids=event_ids)}
    counts["assessments"] = _delete(conn, assessments, assessments.c.survey_id.in_(survey_ids))
    counts["responses"] = _delete(conn, responses, responses.c.survey_id.in_(survey_ids))
    counts["surveys"] = _delete(conn, surveys, surveys.c.id.in_(survey_ids))
    counts["rupture_episodes"] = _delete(conn, rupture_episodes,
                                         *_client(rupture_episodes, practice_id, patient_id))
    counts["session_keys"] = _delete(conn, session_keys, session_keys.c.practice_id == practice_id,
                                     session_keys.c.event_id.in_(event_ids))
    counts["webhook_events"] = _delete(conn, webhook_events, webhook_events.c.id.in_(event_ids))
    counts["smart_sessions"] = _delete(conn, smart_sessions,
                                       *_client(smart_sessions, practice_id, patient_id))
    counts["clients"] = stored_clients.erase(conn, practice_id, patient_id)
    return counts


def flags_in_the_ehr(conn: Connection, practice_id: str, patient_id: str) -> list[str]:
    """Ids of the Flags the client's rupture episodes wrote into the EHR (they stay there)."""
    return [flag for flag in conn.execute(select(rupture_episodes.c.flag_id).where(
        *_client(rupture_episodes, practice_id, patient_id))).scalars() if flag]


def export_client(conn: Connection, vault: ClientVault, practice_id: str,
                  patient_id: str) -> dict | None:
    """Everything held on the client, opened (contact details, answers); None if nothing."""
    client = stored_clients.find(conn, vault, practice_id, patient_id)
    found_surveys = [dict(row) for row in conn.execute(select(surveys).where(
        *_client(surveys, practice_id, patient_id)).order_by(surveys.c.created_at)).mappings()]
    if client is None and not found_surveys:
        return None
    ids = [survey["id"] for survey in found_surveys]
    answered = {row["survey_id"]: opened(vault, row) for row in conn.execute(
        select(responses).where(responses.c.survey_id.in_(ids))).mappings()}
    assessed = {row["survey_id"]: dict(row) for row in conn.execute(
        select(assessments).where(assessments.c.survey_id.in_(ids))).mappings()}
    for survey in found_surveys:
        survey["response"] = answered.get(survey["id"])
        survey["assessment"] = assessed.get(survey["id"])
    episodes = [dict(row) for row in conn.execute(select(rupture_episodes).where(
        *_client(rupture_episodes, practice_id, patient_id))).mappings()]
    client = {k: v for k, v in (client or {}).items() if k != "phone_hash"} or None
    return {"practice_id": practice_id, "patient_id": patient_id, "client": client,
            "surveys": found_surveys, "rupture_episodes": episodes}


def _survey_ids(conn: Connection, practice_id: str, patient_id: str) -> list[str]:
    return list(conn.execute(select(surveys.c.id).where(
        *_client(surveys, practice_id, patient_id))).scalars())


def _client(table, practice_id: str, patient_id: str) -> tuple:
    return table.c.practice_id == practice_id, table.c.patient_id == patient_id


def _delete(conn: Connection, table, *where) -> int:
    return conn.execute(delete(table).where(*where)).rowcount
