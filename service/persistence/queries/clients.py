"""Clients: how to reach them, how many sessions they had, and whether they opted out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from integrations.delivery.contact import normalize_phone
from integrations.delivery.port import Contact
from service.persistence.sql import insert_if_absent
from service.persistence.tables import clients

CONTACT_FIELDS = ("phone", "email", "locale")
# Matching by the last digits first keeps the scan small; the full E.164 comparison decides.
_PHONE_SUFFIX_DIGITS = 7


class ContactNotStorable(Exception):
    """A contact value does not fit its column. Only the field is named: never the value, which
    must not reach a log line or the dead-letter store."""

    def __init__(self, field: str):
        super().__init__(f"the client's {field} does not fit its column")
        self.field = field


def count_session(conn: Connection, practice_id: str, patient_id: str, contact: Contact | None,
                  now: datetime) -> dict:
    """Count one more completed session for the client, keep any new contact values, and
    return the client's row. Raises ContactNotStorable before writing a value that cannot fit
    (the intake caps values; this guards against anything that slipped past it)."""
    key = (clients.c.practice_id == practice_id, clients.c.patient_id == patient_id)
    values: dict = {"sessions_completed": clients.c.sessions_completed + 1, "updated_at": now}
    for field in CONTACT_FIELDS:
        value = getattr(contact, field) if contact else None
        if value:
            values[field] = _fitting(field, value)
    insert_if_absent(conn, clients, dict(practice_id=practice_id, patient_id=patient_id,
                                         sessions_completed=0, updated_at=now))
    conn.execute(update(clients).where(*key).values(**values))
    return dict(conn.execute(select(clients).where(*key)).mappings().one())


def find(conn: Connection, practice_id: str, patient_id: str) -> dict | None:
    row = conn.execute(select(clients).where(
        clients.c.practice_id == practice_id, clients.c.patient_id == patient_id)
    ).mappings().first()
    return dict(row) if row else None


BY_SMS, BY_LINK = "sms", "link"  # how a client opted out (clients.opted_out_by)


def opt_out(conn: Connection, practice_id: str, patient_id: str, now: datetime, by: str) -> bool:
    """Stop surveys to the client; True if this changed anything. The first opt-out time stays;
    an SMS STOP after a link's opt-out is recorded as the SMS's (STOP wins)."""
    key = (clients.c.practice_id == practice_id, clients.c.patient_id == patient_id)
    changed = conn.execute(update(clients).where(*key, clients.c.opted_out_at.is_(None))
                           .values(opted_out_at=now, opted_out_by=by, updated_at=now)).rowcount
    if not changed and by == BY_SMS:
        conn.execute(update(clients).where(*key, clients.c.opted_out_by.is_distinct_from(BY_SMS))
                     .values(opted_out_by=BY_SMS, updated_at=now))
    return bool(changed)


def opt_in(conn: Connection, practice_id: str, patient_id: str, now: datetime, by: str) -> bool:
    """Send surveys to the client again; True if the client had opted out. A link undoes only
    an opt-out made by link: an SMS STOP (or an opt-out whose way was not recorded, from
    before it was) is undone only by a START from the client's phone."""
    condition = clients.c.opted_out_at.is_not(None)
    if by != BY_SMS:
        condition = condition & (clients.c.opted_out_by == BY_LINK)
    return bool(conn.execute(update(clients).where(
        clients.c.practice_id == practice_id, clients.c.patient_id == patient_id, condition,
    ).values(opted_out_at=None, opted_out_by=None, updated_at=now)).rowcount)


def with_phone(conn: Connection, practice_id: str, e164: str) -> list[str]:
    """Patient ids of the practice's clients with this number, in any stored spelling (numbers
    stored before intake normalised them may hold spaces or dashes)."""
    suffix = "%".join(e164[-_PHONE_SUFFIX_DIGITS:])  # '1%2%3…': punctuation between digits
    rows = conn.execute(select(clients.c.patient_id, clients.c.phone).where(
        clients.c.practice_id == practice_id, clients.c.phone.like(f"%{suffix}"))).all()
    return [patient_id for patient_id, stored in rows if normalize_phone(stored) == e164]


def _fitting(field: str, value: str) -> str:
    length = clients.c[field].type.length
    if len(value) > length or any(ord(ch) < 32 or ch == "\x7f" for ch in value):
        raise ContactNotStorable(field)
    return value
