"""Clients: how to reach them, how many sessions they had, and whether they opted out.

Phone numbers and e-mail addresses are stored sealed (service/crypto.py ClientVault); callers
give and get them in the clear. A client is found by phone through the keyed hash of the
number's E.164 form, which stays when the contact details are deleted (opt-out, retention), so
that an SMS START still finds a client who texted STOP.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, case, delete, func, or_, select, update

from integrations.delivery.contact import normalize_phone
from integrations.delivery.port import Contact
from service.crypto import ClientVault
from service.persistence.sql import insert_if_absent
from service.persistence.tables import clients

CONTACT_FIELDS = ("phone", "email", "locale")
# What a contact value may hold (the intake caps values far below; this guards the rest).
MAX_LENGTH = {"phone": 40, "email": 320, "locale": 16}
_SEALED = {"phone": "sealed_phone", "email": "sealed_email"}
FORGET_CONTACT = {"sealed_phone": None, "sealed_email": None}


class ContactNotStorable(Exception):
    """A contact value may not be stored. Only the field is named: never the value, which must
    not reach a log line or the dead-letter store."""

    def __init__(self, field: str):
        super().__init__(f"the client's {field} does not fit its column")
        self.field = field


def count_session(conn: Connection, vault: ClientVault, practice_id: str, patient_id: str,
                  contact: Contact | None, now: datetime) -> dict:
    """Count one more completed session for the client, keep any new contact values, and
    return the client's row (contact in the clear). Raises ContactNotStorable before writing a
    value that cannot be stored. A client who opted out keeps no contact details: only the
    phone's keyed hash is refreshed, so that their START is recognised from their number."""
    key = (clients.c.practice_id == practice_id, clients.c.patient_id == patient_id)
    values: dict = {"sessions_completed": clients.c.sessions_completed + 1, "updated_at": now,
                    "last_session_at": now}
    insert_if_absent(conn, clients, dict(practice_id=practice_id, patient_id=patient_id,
                                         sessions_completed=0, updated_at=now))
    opted_out = conn.execute(select(clients.c.opted_out_at).where(*key)).scalar()
    values.update(_contact_values(vault, practice_id, contact, opted_out is not None))
    conn.execute(update(clients).where(*key).values(**values))
    return find(conn, vault, practice_id, patient_id)


def _contact_values(vault: ClientVault, practice_id: str, contact: Contact | None,
                    opted_out: bool) -> dict:
    values: dict = {}
    for field in CONTACT_FIELDS:
        value = getattr(contact, field) if contact else None
        if not value:
            continue
        _check(field, value)
        if field == "locale":
            values["locale"] = value
            continue
        if field == "phone" and normalize_phone(value):
            values["phone_hash"] = vault.phone_digest(practice_id, normalize_phone(value))
        if not opted_out:
            values[_SEALED[field]] = vault.seal_text(value)
    return values


def find(conn: Connection, vault: ClientVault, practice_id: str, patient_id: str) -> dict | None:
    """The client's row with `phone` and `email` opened (None where none is stored)."""
    row = conn.execute(select(clients).where(
        clients.c.practice_id == practice_id, clients.c.patient_id == patient_id)
    ).mappings().first()
    if row is None:
        return None
    found = {name: value for name, value in row.items() if name not in _SEALED.values()}
    return {**found, "phone": vault.open_text(row["sealed_phone"]),
            "email": vault.open_text(row["sealed_email"])}


BY_SMS, BY_LINK = "sms", "link"  # how a client opted out (clients.opted_out_by)


def opt_out(conn: Connection, practice_id: str, patient_id: str, now: datetime, by: str) -> bool:
    """Stop surveys to the client and delete their contact details (the phone's keyed hash
    stays, for a START); True if this changed anything. The first opt-out time stays; an SMS
    STOP after a link's opt-out is recorded as the SMS's (STOP wins)."""
    key = (clients.c.practice_id == practice_id, clients.c.patient_id == patient_id)
    changed = conn.execute(update(clients).where(*key, clients.c.opted_out_at.is_(None))
                           .values(opted_out_at=now, opted_out_by=by, updated_at=now)).rowcount
    if not changed and by == BY_SMS:
        conn.execute(update(clients).where(*key, clients.c.opted_out_by.is_distinct_from(BY_SMS))
                     .values(opted_out_by=BY_SMS, updated_at=now))
    conn.execute(update(clients).where(*key).values(**FORGET_CONTACT))
    return bool(changed)


def opt_in(conn: Connection, practice_id: str, patient_id: str, now: datetime, by: str) -> bool:
    """Send surveys to the client again; True if the client had opted out. A link undoes only
    an opt-out made by link: an SMS STOP (or an opt-out whose way was not recorded, from
    before it was) is undone only by a START from the client's phone. The contact details
    come back with the client's next session (the EHR sends them)."""
    condition = clients.c.opted_out_at.is_not(None)
    if by != BY_SMS:
        condition = condition & (clients.c.opted_out_by == BY_LINK)
    return bool(conn.execute(update(clients).where(
        clients.c.practice_id == practice_id, clients.c.patient_id == patient_id, condition,
    ).values(opted_out_at=None, opted_out_by=None, updated_at=now)).rowcount)


def with_phone(conn: Connection, vault: ClientVault, practice_id: str, e164: str) -> list[str]:
    """Patient ids of the practice's clients with this number (an E.164 number).

    Found by the keyed hash under any configured key; a hash made under an older key (before
    `alliance keys rotate`, for a client whose number is no longer stored) is re-made under the
    newest now, so it keeps matching after the old key is removed.
    """
    digests = vault.phone_digests(practice_id, e164)
    rows = conn.execute(select(clients.c.patient_id, clients.c.phone_hash).where(
        clients.c.practice_id == practice_id, clients.c.phone_hash.in_(digests))).all()
    stale = [patient_id for patient_id, digest in rows if digest != digests[0]]
    if stale:
        conn.execute(update(clients).where(
            clients.c.practice_id == practice_id, clients.c.patient_id.in_(stale))
            .values(phone_hash=digests[0]))
    return [patient_id for patient_id, _digest in rows]


def rehash_phones(conn: Connection, vault: ClientVault) -> tuple[int, int]:
    """Re-make every phone hash under the newest key from the stored number, for `alliance keys
    rotate`: (re-made, kept as they are because no number is stored to re-make them from)."""
    rows = conn.execute(select(clients.c.practice_id, clients.c.patient_id,
                               clients.c.sealed_phone).where(clients.c.phone_hash.is_not(None))
                        ).all()
    remade = 0
    for practice_id, patient_id, sealed in rows:
        e164 = normalize_phone(vault.open_text(sealed)) if sealed else None
        if e164 is None:
            continue
        conn.execute(update(clients).where(
            clients.c.practice_id == practice_id, clients.c.patient_id == patient_id)
            .values(phone_hash=vault.phone_digest(practice_id, e164)))
        remade += 1
    return remade, len(rows) - remade


def forget_stale_contacts(conn: Connection, practice_id: str, before: datetime) -> int:
    """Delete the contact details of clients whose last session was before `before`; how many
    clients had some. A client who opted out keeps the phone's keyed hash (for a START)."""
    stale = and_(clients.c.practice_id == practice_id,
                 func.coalesce(clients.c.last_session_at, clients.c.updated_at) < before)
    holding = or_(clients.c.sealed_phone.is_not(None), clients.c.sealed_email.is_not(None),
                  and_(clients.c.phone_hash.is_not(None), clients.c.opted_out_at.is_(None)))
    kept_hash = case((clients.c.opted_out_at.is_not(None), clients.c.phone_hash), else_=None)
    return conn.execute(update(clients).where(stale, holding).values(
        **FORGET_CONTACT, phone_hash=kept_hash)).rowcount


def _check(field: str, value: str) -> None:
    if len(value) > MAX_LENGTH[field] or any(ord(ch) < 32 or ch == "\x7f" for ch in value):
        raise ContactNotStorable(field)


def erase(conn: Connection, practice_id: str, patient_id: str) -> int:
    """Delete the client's row, keyed hash included (erasure); 1 if there was one."""
    return conn.execute(delete(clients).where(
        clients.c.practice_id == practice_id, clients.c.patient_id == patient_id)).rowcount
