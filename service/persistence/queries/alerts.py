"""SQL for the alerts API: a practice's open rupture episodes and those closed since a time.

Reads what the write-back stores (rupture_episodes, the assessments that name an episode, the
survey that opened it); writes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, or_, select

from service.persistence.tables import assessments, practices, rupture_episodes, surveys

FLAG_RAISING = ("rupture", "unresolved")


def practice_timezone(conn: Connection, practice_id: str) -> str | None:
    return conn.execute(select(practices.c.timezone).where(practices.c.id == practice_id)).scalar()


def episodes_page(conn: Connection, practice_id: str, since: datetime | None,
                  after_id: str | None, limit: int) -> list[dict]:
    """Up to `limit` episodes, in id order after `after_id`: every open one, and those closed
    at or after `since`. Each with its opening session's date and its latest flag-raising
    assessment (`level`, `latest_text`, `assessed_at`), when there is one."""
    episode = rupture_episodes
    wanted = episode.c.status == "open"
    if since is not None:
        wanted = or_(wanted, episode.c.closed_at >= since)
    query = (
        select(episode.c.id, episode.c.patient_id, episode.c.status, episode.c.opened_at,
               episode.c.closed_at, episode.c.flag_text, surveys.c.session_ended_at,
               surveys.c.created_at.label("survey_created_at"))
        .outerjoin(surveys, surveys.c.id == episode.c.opened_by_survey_id)
        .where(episode.c.practice_id == practice_id, wanted)
        .order_by(episode.c.id).limit(limit)
    )
    if after_id is not None:
        query = query.where(episode.c.id > after_id)
    rows = [dict(row) for row in conn.execute(query).mappings()]
    latest = _latest_flag_assessments(conn, [row["id"] for row in rows])
    for row in rows:
        row.update(latest.get(row["id"], {"level": None, "latest_text": None,
                                          "assessed_at": None}))
    return rows


def _latest_flag_assessments(conn: Connection, episode_ids: list[str]) -> dict[str, dict]:
    if not episode_ids:
        return {}
    query = (select(assessments.c.episode_id, assessments.c.decision, assessments.c.flag_text,
                    assessments.c.assessed_at)
             .where(assessments.c.episode_id.in_(episode_ids),
                    assessments.c.decision.in_(FLAG_RAISING))
             .order_by(assessments.c.assessed_at))
    latest: dict[str, dict] = {}
    for row in conn.execute(query):
        latest[row.episode_id] = {"level": row.decision, "latest_text": row.flag_text,
                                  "assessed_at": row.assessed_at}
    return latest
