"""Alerts for a practice's own software (the Canvas plugin's banners): the practice's open
alliance ruptures, and those closed since a given time, as ids and plain words only.

No contact data, answers or scores: a banner needs whom it is about and a line of text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from sqlalchemy import Connection

from service.persistence.queries import alerts as queries
from service.persistence.queries import audit

log = structlog.get_logger(__name__)

SUMMARY_MAX = 90  # a Canvas banner's narrative holds 90 characters


@dataclass(frozen=True)
class AlertsPage:
    alerts: list[dict]
    last_id: str | None  # where the next page starts, or None when this is the last page


def alerts_page(conn: Connection, practice_id: str, since: datetime | None,
                after_id: str | None, limit: int) -> AlertsPage:
    """One page (at most `limit`) of the practice's alerts, in a stable order."""
    zone = _zone(queries.practice_timezone(conn, practice_id))
    rows = queries.episodes_page(conn, practice_id, since, after_id, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return AlertsPage([_alert(row, zone) for row in rows], rows[-1]["id"] if more else None)


def record_read(conn: Connection, practice_id: str, key_id: str, alerts: list[dict],
                now: datetime) -> None:
    """Every read of client data through the alerts API passes here once per answer: one audit
    row per alert read (whose, which episode), in the read's transaction, and a log line."""
    audit.record(conn, [audit.Access(practice_id, alert["patient_id"], f"api-key:{key_id}",
                                     audit.ALERTS_API, audit.READ, "alert", alert["id"])
                        for alert in alerts], now)
    log.info("alerts read", practice_id=practice_id, api_key_id=key_id, alerts=len(alerts))


def summary(status: str, level: str, session_day: date) -> str:
    """One line in plain words, at most SUMMARY_MAX characters."""
    day = session_day.isoformat()
    if status != "open":
        text = f"The alliance rupture of the session of {day} looks repaired"
    elif level == "unresolved":
        text = f"Unresolved alliance rupture since the session of {day}: please review"
    else:
        text = f"Alliance rupture after the session of {day}: talk it through next session"
    return text[:SUMMARY_MAX]


def _alert(row: dict, zone: ZoneInfo) -> dict:
    status = "open" if row["status"] == "open" else "resolved"
    level = row["level"] or "rupture"
    session = row["session_ended_at"] or row["survey_created_at"] or row["opened_at"]
    session_day = session.astimezone(zone).date()
    line = summary(status, level, session_day)
    changes = [when for when in (row["opened_at"], row["assessed_at"], row["closed_at"]) if when]
    return {
        "id": row["id"], "patient_id": row["patient_id"], "status": status, "level": level,
        "summary": line, "text": row["latest_text"] or row["flag_text"] or line,
        "session_date": session_day, "opened_at": row["opened_at"],
        "closed_at": row["closed_at"], "updated_at": max(changes),
    }


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


