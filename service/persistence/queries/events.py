"""The event log (`webhook_events`) and the session keys that make one survey per session.

The payload column is written and read only here, through the schema of
`service/intake/payload.py`: callers see an Arrival going in and typed facts coming out. It is
stored sealed with the client-data key, since it may carry the client's contact details.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from service.crypto import ClientVault
from service.intake.facts import Arrival, Ignored, Outcome, clip
from service.intake.payload import dump_outcome, holds_contact, load_outcome, without_contact
from service.persistence.sql import insert_all_if_absent, insert_if_absent
from service.persistence.tables import session_keys, webhook_events

REASON_LENGTH, EVENT_TYPE_LENGTH = 300, 100
LIST_COLUMNS = ("received_at", "id", "practice_id", "source", "delivery_id", "event_type",
                "session_id", "outcome", "reason")


@dataclass(frozen=True)
class StoredEvent:
    id: str
    practice_id: str
    source: str
    outcome: Outcome  # what the door decided (the `outcome` column is `state`)
    state: str  # accepted → survey-scheduled | ignored | duplicate-session | failed


def insert(conn: Connection, vault: ClientVault, event_id: str, practice_id: str,
           arrival: Arrival, *, state: str, now: datetime) -> bool:
    """Store an arrival; False (and nothing stored) when its delivery was stored before."""
    outcome = arrival.outcome
    return insert_if_absent(conn, webhook_events, dict(
        id=event_id, practice_id=practice_id, source=arrival.source,
        delivery_id=arrival.delivery_id, event_type=clip(arrival.event_type, EVENT_TYPE_LENGTH),
        session_id=arrival.session_id, patient_id=arrival.patient_id, outcome=state,
        reason=clip(outcome.reason, REASON_LENGTH) if isinstance(outcome, Ignored) else None,
        sealed_payload=vault.seal(dump_outcome(outcome)), has_contact=holds_contact(outcome),
        received_at=now,
    ))


def id_of_delivery(conn: Connection, practice_id: str, arrival: Arrival) -> str:
    """The id of the event stored for this delivery before."""
    return conn.execute(select(webhook_events.c.id).where(
        webhook_events.c.practice_id == practice_id, webhook_events.c.source == arrival.source,
        webhook_events.c.delivery_id == arrival.delivery_id)).scalar_one()


def load(conn: Connection, vault: ClientVault, event_id: str) -> StoredEvent | None:
    """The event with its typed outcome (raises PayloadError for an unreadable payload)."""
    row = conn.execute(select(webhook_events).where(webhook_events.c.id == event_id)
                       ).mappings().first()
    if row is None:
        return None
    payload = vault.open(row["sealed_payload"])
    outcome = load_outcome(payload, row["reason"], row["patient_id"], row["session_id"])
    return StoredEvent(row["id"], row["practice_id"], row["source"], outcome, row["outcome"])


def set_state(conn: Connection, event_id: str, state: str, reason: str | None) -> None:
    conn.execute(update(webhook_events).where(webhook_events.c.id == event_id)
                 .values(outcome=state, reason=clip(reason, REASON_LENGTH)))


def name_session(conn: Connection, event_id: str, session_id: str, patient_id: str) -> None:
    """Record which session an event turned out to be (id-only events learn it late)."""
    conn.execute(update(webhook_events).where(webhook_events.c.id == event_id)
                 .values(session_id=session_id, patient_id=patient_id))


def claim_session(conn: Connection, practice_id: str, keys: tuple[str, ...],
                  event_id: str) -> bool:
    """True if no earlier completion claimed any of these keys (all are claimed now).

    One statement: every key is inserted unless present. When some were present, the visit was
    seen before; the keys that were new now point at this duplicate event, which is harmless:
    they describe the same visit, and a later notification sharing them is a duplicate too.
    """
    if not keys:
        return True
    rows = [{"practice_id": practice_id, "key": key, "event_id": event_id} for key in keys]
    return insert_all_if_absent(conn, session_keys, rows) == len(keys)


def recent(conn: Connection, practice_id: str | None, limit: int) -> list[dict]:
    """The newest events, LIST_COLUMNS only: ids and outcomes, never the payload."""
    query = (select(*(webhook_events.c[name] for name in LIST_COLUMNS))
             .order_by(webhook_events.c.received_at.desc(), webhook_events.c.id).limit(limit))
    if practice_id:
        query = query.where(webhook_events.c.practice_id == practice_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def forget_contact(conn: Connection, vault: ClientVault, practice_id: str, *,
                   patient_id: str | None = None, before: datetime | None = None,
                   limit: int | None = None) -> int:
    """Take the contact details out of stored payloads: a client's (opt-out), or those received
    before a time (retention), at most `limit`; how many payloads held some."""
    where = [webhook_events.c.practice_id == practice_id, webhook_events.c.has_contact]
    if patient_id is not None:
        where.append(webhook_events.c.patient_id == patient_id)
    if before is not None:
        where.append(webhook_events.c.received_at < before)
    rows = conn.execute(select(webhook_events.c.id, webhook_events.c.sealed_payload)
                        .where(*where).limit(limit)).all()
    for event_id, sealed in rows:
        conn.execute(update(webhook_events).where(webhook_events.c.id == event_id).values(
            sealed_payload=vault.seal(without_contact(vault.open(sealed))), has_contact=False))
    return len(rows)
