"""SQL for the actions on one rupture episode (acknowledge, snooze, and what other paths add):
the episode an action names, its history, and the stage the clinician state says it is at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from service.persistence.sql import insert_if_absent
from service.persistence.tables import alert_actions, clinician_states, rupture_episodes


@dataclass(frozen=True)
class Episode:
    id: str
    patient_id: str
    status: str  # open | resolved


def episode_for_update(conn: Connection, practice_id: str, episode_id: str) -> Episode | None:
    """The practice's episode of this id, locked for the transaction (PostgreSQL: FOR UPDATE;
    SQLite serialises writers), so two actions on one episode are checked one after the other."""
    row = conn.execute(
        select(rupture_episodes.c.id, rupture_episodes.c.patient_id, rupture_episodes.c.status)
        .where(rupture_episodes.c.practice_id == practice_id,
               rupture_episodes.c.id == episode_id)
        .with_for_update()
    ).first()
    return Episode(row.id, row.patient_id, row.status) if row else None


def actions_of(conn: Connection, practice_id: str, episode_id: str) -> list[dict]:
    """Every stored action on the episode, oldest first (the note still sealed)."""
    rows = conn.execute(
        select(alert_actions.c.action, alert_actions.c.actor, alert_actions.c.source,
               alert_actions.c.note, alert_actions.c.at, alert_actions.c.until)
        .where(alert_actions.c.practice_id == practice_id,
               alert_actions.c.episode_id == episode_id)
        .order_by(alert_actions.c.at, alert_actions.c.id)
    ).mappings().all()
    return [dict(row) for row in rows]


def stage_since(conn: Connection, practice_id: str, patient_id: str,
                episode_id: str) -> datetime | None:
    """When the episode's current stage (rupture, then unresolved) began, as the clinician
    state (the CDS cards' source) has it; None when the state speaks of no such episode."""
    return conn.execute(
        select(clinician_states.c.stage_since)
        .where(clinician_states.c.practice_id == practice_id,
               clinician_states.c.patient_id == patient_id,
               clinician_states.c.episode_id == episode_id)
    ).scalar()


def dedupe_key_used(conn: Connection, dedupe_key: str) -> bool:
    return conn.execute(select(alert_actions.c.id).where(
        alert_actions.c.dedupe_key == dedupe_key)).first() is not None


def add(conn: Connection, action: dict) -> bool:
    """Store an action; False when its dedupe_key is stored already (a replayed form, a
    repeated CDS feedback delivery)."""
    return insert_if_absent(conn, alert_actions, action)
