"""Everything the service holds on one client: read out (`alliance patients export`) or
deleted (`alliance patients erase`). What was written into the EHR stays there.

CDS Hooks feedback names a card, not a client: the caller gives the uuids of the client's cards
(made from `card_keys` by service/clinician/cards.py), and the feedback on those goes with them.

The audit log is kept: it records who read the client's data (ids only), which is itself a
safeguard the practice must keep (HIPAA §164.312(b), §164.316(b)(2): six years); the erasure
adds its own row.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, select

from service.crypto import ClientVault
from service.persistence import outbox
from service.persistence.queries import clients as stored_clients
from service.persistence.queries import escalations
from service.persistence.queries.responses import opened
from service.persistence.tables import (
    alert_actions,
    assessments,
    cds_feedback,
    clinician_states,
    responses,
    rupture_episodes,
    session_keys,
    smart_sessions,
    surveys,
    webhook_events,
)


def card_keys(conn: Connection, practice_id: str, patient_id: str) -> tuple[list, list]:
    """What the client's CDS card uuids are made from: (episode ids, session times of their
    surveys); service/clinician/cards.py makes the uuids."""
    episodes = list(conn.execute(select(rupture_episodes.c.id).where(
        *_client(rupture_episodes, practice_id, patient_id))).scalars())
    sessions = [row.session_ended_at or row.created_at for row in conn.execute(
        select(surveys.c.session_ended_at, surveys.c.created_at).where(
            *_client(surveys, practice_id, patient_id))).all()]
    return episodes, sessions


def erase_client(conn: Connection, practice_id: str, patient_id: str,
                 card_uuids: list[str]) -> dict[str, int]:
    """Delete every row about the client (the CDS feedback by the uuids of their cards);
    counts by table."""
    survey_ids = _survey_ids(conn, practice_id, patient_id)
    episode_ids, _sessions = card_keys(conn, practice_id, patient_id)
    event_ids = list(conn.execute(select(webhook_events.c.id).where(
        *_client(webhook_events, practice_id, patient_id))).scalars())
    counts = {"jobs": outbox.delete_for(conn, survey_ids=survey_ids, event_ids=event_ids,
                                        episode_ids=episode_ids)}
    counts["assessments"] = _delete(conn, assessments, assessments.c.survey_id.in_(survey_ids))
    counts["responses"] = _delete(conn, responses, responses.c.survey_id.in_(survey_ids))
    counts["surveys"] = _delete(conn, surveys, surveys.c.id.in_(survey_ids))
    counts["alert_actions"] = _delete(conn, alert_actions,
                                      alert_actions.c.practice_id == practice_id,
                                      alert_actions.c.episode_id.in_(episode_ids))
    counts["episode_tasks"] = escalations.delete_for_episodes(conn, practice_id, episode_ids)
    counts["cds_feedback"] = _delete(conn, cds_feedback, cds_feedback.c.practice_id == practice_id,
                                     cds_feedback.c.card_uuid.in_(card_uuids))
    counts["clinician_states"] = _delete(conn, clinician_states,
                                         *_client(clinician_states, practice_id, patient_id))
    counts["rupture_episodes"] = _delete(conn, rupture_episodes,
                                         rupture_episodes.c.id.in_(episode_ids))
    counts["session_keys"] = _delete(conn, session_keys, session_keys.c.practice_id == practice_id,
                                     session_keys.c.event_id.in_(event_ids))
    counts["webhook_events"] = _delete(conn, webhook_events, webhook_events.c.id.in_(event_ids))
    counts["smart_sessions"] = _delete(conn, smart_sessions,
                                       *_client(smart_sessions, practice_id, patient_id))
    counts["clients"] = stored_clients.erase(conn, practice_id, patient_id)
    return counts


def alerts_in_the_ehr(conn: Connection, practice_id: str, patient_id: str) -> list[str]:
    """References to the alert resources the client's rupture episodes wrote into the EHR
    (they stay there): each episode's Flag, its latest DocumentReference (earlier versions are
    linked from it by relatesTo) and its Tasks."""
    episodes = conn.execute(select(rupture_episodes.c.id, rupture_episodes.c.flag_id,
                                   rupture_episodes.c.document_id).where(
        *_client(rupture_episodes, practice_id, patient_id))).all()
    found = [f"Flag/{row.flag_id}" for row in episodes if row.flag_id]
    found += [f"DocumentReference/{row.document_id}" for row in episodes if row.document_id]
    found += [f"Task/{task['task_id']}" for task in escalations.for_episodes(
        conn, practice_id, [row.id for row in episodes])]
    return found


def export_client(conn: Connection, vault: ClientVault, practice_id: str, patient_id: str,
                  card_uuids: list[str]) -> dict | None:
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
    actions = [_opened_text(vault, row, "note") for row in conn.execute(
        select(alert_actions).where(alert_actions.c.practice_id == practice_id,
                                    alert_actions.c.episode_id.in_([e["id"] for e in episodes]))
        .order_by(alert_actions.c.at)).mappings()]
    tasks = escalations.for_episodes(conn, practice_id, [e["id"] for e in episodes])
    feedback = [_opened_text(vault, row, "comment") for row in conn.execute(
        select(cds_feedback).where(cds_feedback.c.practice_id == practice_id,
                                   cds_feedback.c.card_uuid.in_(card_uuids))
        .order_by(cds_feedback.c.received_at)).mappings()]
    state = conn.execute(select(clinician_states).where(
        *_client(clinician_states, practice_id, patient_id))).mappings().first()
    client = {k: v for k, v in (client or {}).items() if k != "phone_hash"} or None
    return {"practice_id": practice_id, "patient_id": patient_id, "client": client,
            "surveys": found_surveys, "rupture_episodes": episodes, "alert_actions": actions,
            "episode_tasks": tasks, "cds_feedback": feedback,
            "clinician_state": dict(state) if state else None}


def _opened_text(vault: ClientVault, row, column: str) -> dict:
    """A row whose `column` holds a sealed {"text": …}, with the text in the clear."""
    found = dict(row)
    found[column] = vault.open(row[column])["text"] if row[column] else None
    return found


def _survey_ids(conn: Connection, practice_id: str, patient_id: str) -> list[str]:
    return list(conn.execute(select(surveys.c.id).where(
        *_client(surveys, practice_id, patient_id))).scalars())


def _client(table, practice_id: str, patient_id: str) -> tuple:
    return table.c.practice_id == practice_id, table.c.patient_id == patient_id


def _delete(conn: Connection, table, *where) -> int:
    return conn.execute(delete(table).where(*where)).rowcount
