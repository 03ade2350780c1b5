"""Inbound SMS acted on, by the provider's message id: each is acted on once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from service.persistence.sql import insert_if_absent
from service.persistence.tables import inbound_sms


def first_time(conn: Connection, practice_id: str, message_sid: str, now: datetime) -> bool:
    """Record the message; False when it was recorded before (a replay or a redelivery)."""
    return insert_if_absent(conn, inbound_sms, dict(
        practice_id=practice_id, message_sid=message_sid, received_at=now))
