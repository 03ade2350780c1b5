"""What a clinician is shown for one client, kept ready for the CDS hooks.

`refresh` runs inside the transaction that stores an assessment (one call from the write-back
handler), so a hook needs one indexed lookup and never recomputes history or calls the EHR.
It reads only stored rows (surveys, responses, assessments, rupture episodes), so it can be run
again at any time with the same result: `alliance clinician refresh` rebuilds every client.

Why not compute the cards from the assessments at request time: the open rupture, its stage,
the first session of the episode and the two last totals need the client's whole history
(several rows of three tables); once per assessment is cheaper than once per chart opened.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from service.clinician.cards import rupture_card_uuid
from service.persistence.queries import clinician as queries

OPEN_STAGES = ("rupture", "unresolved")


def refresh(conn: Connection, practice_id: str, patient_id: str, now: datetime) -> dict:
    """Recompute and store the client's clinician state from the stored assessments."""
    state = summarise(practice_id, patient_id,
                      queries.returned_totals(conn, practice_id, patient_id),
                      queries.assessments_of(conn, practice_id, patient_id), now)
    queries.save_clinician_state(conn, state)
    return state


def refresh_all(conn: Connection, now: datetime, practice_id: str | None = None) -> int:
    clients = queries.clients_with_assessments(conn, practice_id)
    for practice, patient in clients:
        refresh(conn, practice, patient, now)
    return len(clients)


def summarise(practice_id: str, patient_id: str, returned: list[dict], assessed: list[dict],
              now: datetime) -> dict:
    """The state row from the returned totals (session order) and assessments (made order)."""
    last = returned[-1] if returned else None
    previous = [r for r in returned[:-1] if last and r["instrument_id"] == last["instrument_id"]]
    latest = assessed[-1] if assessed else None
    state = {
        "practice_id": practice_id, "patient_id": patient_id,
        "instrument_id": last["instrument_id"] if last else None,
        "returned_count": len(returned),
        "last_total": last["total"] if last else None,
        "last_session_at": last["session_at"] if last else None,
        "previous_total": previous[-1]["total"] if previous else None,
        "last_decision": latest["decision"] if latest else None,
        "last_reasons": list(latest["reasons"]) if latest else [],
        "updated_at": now,
    }
    return {**state, **_open_rupture(practice_id, assessed)}


def _open_rupture(practice_id: str, assessed: list[dict]) -> dict:
    """The open episode as of the latest assessment that speaks of an episode, if still open."""
    closed = dict(episode_id=None, stage=None, card_uuid=None, stage_since=None,
                  stage_session_at=None, stage_reasons=None, opened_session_at=None)
    with_episode = [a for a in assessed if a["episode_id"]]
    if not with_episode:
        return closed
    stage = with_episode[-1]
    if stage["decision"] not in OPEN_STAGES or stage["episode_status"] != "open":
        return closed  # repaired (the episode is closed after the Flag is updated)
    episode_id = stage["episode_id"]
    opened = next(a for a in with_episode if a["episode_id"] == episode_id)
    return dict(episode_id=episode_id, stage=stage["decision"],
                card_uuid=rupture_card_uuid(practice_id, episode_id, stage["decision"]),
                stage_since=stage["assessed_at"], stage_session_at=stage["session_at"],
                stage_reasons=list(stage["reasons"]), opened_session_at=opened["session_at"])
