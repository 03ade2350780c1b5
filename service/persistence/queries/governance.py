"""Read-only SQL for alert governance: a practice's whole survey history (for the what-if
replay), the episodes opened since a time with what was done about them (the report), and the
counts behind the Prometheus metrics (one grouped statement)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import groupby

from sqlalchemy import Connection, String, exists, func, literal, select, union_all

from service.crypto import ClientVault
from service.domain.alert_actions import ACKNOWLEDGE, ESCALATE, SNOOZE
from service.persistence.queries.assessments import ASSESSABLE, session_order
from service.persistence.queries.responses import opened
from service.persistence.tables import alert_actions, responses, rupture_episodes, surveys


def practice_histories(conn: Connection, practice_id: str) -> list[list[dict]]:
    """Every client's assessable surveys, one list per client in session order (the order the
    rupture rules see them in). Each row: instrument_id, session_id, session_ended_at,
    created_at and the stored response (sealed_answers, total, subscales, pomp; None: not
    returned). Still sealed: open them with `opened_history` once the transaction is over (on
    SQLite it holds the write lock; decrypting is half the time of the read)."""
    rows = conn.execute(
        select(surveys.c.patient_id, surveys.c.instrument_id, surveys.c.session_id,
               surveys.c.session_ended_at, surveys.c.created_at, responses.c.sealed_answers,
               responses.c.total, responses.c.subscales, responses.c.pomp)
        .outerjoin(responses, responses.c.survey_id == surveys.c.id)
        .where(surveys.c.practice_id == practice_id, ASSESSABLE)
        .order_by(surveys.c.patient_id)
    ).mappings()
    return [sorted((_without_client(row) for row in client), key=session_order)
            for _patient, client in groupby(rows, key=lambda row: row["patient_id"])]


def opened_history(vault: ClientVault, history: list[dict]) -> list[dict]:
    """A client's history from `practice_histories` with its answers in the clear."""
    return [opened(vault, row) for row in history]


def _without_client(row) -> dict:
    return {name: value for name, value in dict(row).items() if name != "patient_id"}


def episode_activity(conn: Connection, practice_id: str | None,
                     since: datetime | None) -> Iterator[dict]:
    """The episodes opened at or after `since` (all: None), of one practice or all: practice_id,
    opened_at, status, first_acknowledged_at, snoozed, escalated. No client ids."""
    episode = rupture_episodes

    def done(action: str):
        return exists().where(alert_actions.c.episode_id == episode.c.id,
                              alert_actions.c.action == action)

    first_ack = (select(func.min(alert_actions.c.at))
                 .where(alert_actions.c.episode_id == episode.c.id,
                        alert_actions.c.action == ACKNOWLEDGE)
                 .scalar_subquery())
    query = select(episode.c.practice_id, episode.c.opened_at, episode.c.status,
                   first_ack.label("first_acknowledged_at"), done(SNOOZE).label("snoozed"),
                   done(ESCALATE).label("escalated"))
    if practice_id is not None:
        query = query.where(episode.c.practice_id == practice_id)
    if since is not None:
        query = query.where(episode.c.opened_at >= since)
    # MIN() keeps the column's type: aware UTC datetimes on both backends.
    yield from (dict(row) for row in conn.execute(query).mappings())


def alert_counts(conn: Connection, limit: int) -> list[tuple[str, str, str, str, int]]:
    """One grouped statement, at most `limit` rows: ("ruptures", practice, status, "", count)
    per practice and episode status, and ("actions", practice, action, source, count) per
    practice, action and source."""
    ruptures = (select(literal("ruptures", String).label("kind"), rupture_episodes.c.practice_id,
                       rupture_episodes.c.status.label("name"),
                       literal("", String).label("source"), func.count().label("count"))
                .group_by(rupture_episodes.c.practice_id, rupture_episodes.c.status))
    actions = (select(literal("actions", String), alert_actions.c.practice_id,
                      alert_actions.c.action, alert_actions.c.source, func.count())
               .group_by(alert_actions.c.practice_id, alert_actions.c.action,
                         alert_actions.c.source))
    both = union_all(ruptures, actions).subquery()
    query = select(both).order_by(both.c.kind, both.c.practice_id, both.c.name,
                                  both.c.source).limit(limit)
    return [tuple(row) for row in conn.execute(query)]
