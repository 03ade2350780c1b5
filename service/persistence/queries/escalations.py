"""SQL for the Tasks written for rupture episodes (`episode_tasks`): the alert Task
(alerts.write `task`) and the escalation to the supervisor, and what escalation asks of the
assessments and the alert actions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, exists, func, literal, or_, select, update

from service.domain.alert_actions import ACKNOWLEDGE
from service.domain.escalation import ESCALATION_TASK, REQUESTED
from service.persistence.sql import insert_if_absent
from service.persistence.tables import (
    alert_actions,
    assessments,
    episode_tasks,
    outbox,
    rupture_episodes,
)

COMPLETION_KEY = "complete-escalation:"  # + the episode id: the completion job's dedupe key


def unresolved_since(conn: Connection, episode_id: str) -> datetime | None:
    """When the episode's first `unresolved` assessment was made (None: it never was)."""
    return conn.execute(select(func.min(assessments.c.assessed_at)).where(
        assessments.c.episode_id == episode_id,
        assessments.c.decision == "unresolved")).scalar()


def acknowledged_since(conn: Connection, episode_id: str, since: datetime) -> bool:
    """Whether someone acknowledged the episode at or after `since`."""
    return conn.execute(select(exists().where(
        alert_actions.c.episode_id == episode_id, alert_actions.c.action == ACKNOWLEDGE,
        alert_actions.c.at >= since))).scalar()


def task(conn: Connection, episode_id: str, kind: str) -> dict | None:
    """The episode's Task of this kind (alert | escalation), as stored."""
    row = conn.execute(select(episode_tasks).where(
        episode_tasks.c.episode_id == episode_id, episode_tasks.c.kind == kind)).mappings().first()
    return dict(row) if row else None


def record_task(conn: Connection, row: dict) -> bool:
    """Store a Task written into the EHR; False when one of this kind was stored already."""
    return insert_if_absent(conn, episode_tasks, row)


def completed(conn: Connection, episode_id: str, kind: str, version: str | None,
              now: datetime) -> bool:
    """Mark the Task completed at this version; False when it was marked already."""
    return conn.execute(update(episode_tasks).where(
        episode_tasks.c.episode_id == episode_id, episode_tasks.c.kind == kind,
        episode_tasks.c.status == REQUESTED).values(
        status="completed", task_version=version, completed_at=now)).rowcount == 1


def mark_emailed(conn: Connection, episode_id: str, now: datetime) -> None:
    conn.execute(update(episode_tasks).where(
        episode_tasks.c.episode_id == episode_id, episode_tasks.c.kind == ESCALATION_TASK)
        .values(emailed_at=now))


def completion_key(episode_id: str) -> str:
    return COMPLETION_KEY + episode_id


def escalations_to_complete(conn: Connection, limit: int = 100) -> list[tuple[str, str]]:
    """(episode id, practice id) of the episodes whose escalation Task is still requested
    although the episode closed or was acknowledged since it became unresolved, and whose
    completion job does not exist yet (one indexed query: the scheduler's check). A completion
    the EHR refused stays dead-lettered, not picked again every round (`alliance dlq replay`)."""
    acknowledged = exists().where(
        alert_actions.c.episode_id == episode_tasks.c.episode_id,
        alert_actions.c.action == ACKNOWLEDGE,
        alert_actions.c.at >= episode_tasks.c.unresolved_since)
    queued = exists().where(
        outbox.c.dedupe_key == literal(COMPLETION_KEY) + episode_tasks.c.episode_id)
    query = (select(episode_tasks.c.episode_id, episode_tasks.c.practice_id)
             .join(rupture_episodes, rupture_episodes.c.id == episode_tasks.c.episode_id)
             .where(episode_tasks.c.status == REQUESTED, episode_tasks.c.kind == ESCALATION_TASK,
                    or_(rupture_episodes.c.status != "open", acknowledged), ~queued)
             .order_by(episode_tasks.c.created_at).limit(limit))
    return [tuple(row) for row in conn.execute(query).all()]


def delete_for_episodes(conn: Connection, practice_id: str, episode_ids: list[str]) -> int:
    """Delete the Tasks recorded for these episodes (erasure, retention); how many."""
    if not episode_ids:
        return 0
    return conn.execute(episode_tasks.delete().where(and_(
        episode_tasks.c.practice_id == practice_id,
        episode_tasks.c.episode_id.in_(episode_ids)))).rowcount


def for_episodes(conn: Connection, practice_id: str, episode_ids: list[str]) -> list[dict]:
    """The Tasks recorded for these episodes (export)."""
    return [dict(row) for row in conn.execute(select(episode_tasks).where(
        episode_tasks.c.practice_id == practice_id,
        episode_tasks.c.episode_id.in_(episode_ids))
        .order_by(episode_tasks.c.created_at)).mappings()]
