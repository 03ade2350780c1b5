"""The audit log: who read (or exported, or erased) a client's data, what and when; ids only.

A row is a cheap insert in the transaction of the read it records, so a read is never served
without its row, and the CDS hook's budget barely notices it (docs/security.md has the figure).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from service.persistence.tables import audit_log

LIST_COLUMNS = ("at", "practice_id", "patient_id", "actor", "channel", "action", "what", "ref")
SMART, ALERTS_API, CDS, CLI = "smart", "alerts-api", "cds", "cli"
READ, EXPORT, ERASE, WRITE = "read", "export", "erase", "write"  # WRITE: a clinician's action


@dataclass(frozen=True)
class Access:
    """One access to one client's data (patient_id None: no single client, e.g. a list)."""

    practice_id: str
    patient_id: str | None
    actor: str  # "Practitioner/123", "api-key:{key id}", "cds-client:{iss}", "cli:{user}"
    channel: str  # SMART | ALERTS_API | CDS | CLI
    action: str  # READ | EXPORT | ERASE | WRITE
    what: str  # what was read, in two or three words: "trend view", "alert"
    ref: str | None = None  # the id of what was read (an episode, a card), if one


def record(conn: Connection, accesses: Iterable[Access], at: datetime) -> int:
    """Add one row per access, in the caller's transaction (one statement); how many."""
    rows = [{"id": str(uuid.uuid4()), "at": at, **_clipped(access)} for access in accesses]
    if rows:
        conn.execute(audit_log.insert(), rows)
    return len(rows)


def recent(conn: Connection, practice_id: str | None, since: datetime | None,
           patient_id: str | None, limit: int) -> list[dict]:
    """The newest rows first, LIST_COLUMNS only."""
    query = (select(*(audit_log.c[name] for name in LIST_COLUMNS))
             .order_by(audit_log.c.at.desc(), audit_log.c.id).limit(limit))
    if practice_id:
        query = query.where(audit_log.c.practice_id == practice_id)
    if since:
        query = query.where(audit_log.c.at >= since)
    if patient_id:
        query = query.where(audit_log.c.patient_id == patient_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def _clipped(access: Access) -> dict:
    # Ids come from tokens and requests: bounded here, so a long one never fails the read.
    values = asdict(access)
    for name, value in values.items():
        length = audit_log.c[name].type.length
        if isinstance(value, str) and length and len(value) > length:
            values[name] = value[:length]
    return values
