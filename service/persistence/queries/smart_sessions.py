"""The SMART app's launch state (one row per OAuth `state`) and its server-side sessions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from service.persistence.tables import smart_launches, smart_sessions


def digest(value: str) -> str:
    """The key under which a browser-held random value is stored (never the value itself)."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class PendingLaunch:
    practice_id: str
    browser_hash: str
    iss: str
    launch: str | None
    sealed_verifier: str
    nonce: str
    expires_at: datetime


@dataclass(frozen=True)
class SmartSession:
    practice_id: str
    patient_id: str
    fhir_user: str | None
    iss: str
    created_at: datetime
    expires_at: datetime


def save_launch(conn: Connection, state: str, launch: PendingLaunch, *, now: datetime) -> None:
    """Store a launch under its state; expired launches and sessions are swept on the way."""
    sweep_expired(conn, now)
    conn.execute(smart_launches.insert().values(
        state_hash=digest(state), created_at=now, **launch.__dict__))


def sweep_expired(conn: Connection, now: datetime) -> int:
    """Delete expired launches and sessions (a session names its patient); how many."""
    launches = conn.execute(delete(smart_launches).where(smart_launches.c.expires_at < now))
    sessions = conn.execute(delete(smart_sessions).where(smart_sessions.c.expires_at < now))
    return launches.rowcount + sessions.rowcount


def take_launch(conn: Connection, state: str, practice_id: str, *,
                now: datetime) -> PendingLaunch | None:
    """The launch of this state, marked used in the same statement; None when unknown, expired,
    for another practice, or already taken (a state works once, also under concurrent calls)."""
    key = digest(state)
    taken = conn.execute(
        update(smart_launches)
        .where(smart_launches.c.state_hash == key, smart_launches.c.used_at.is_(None),
               smart_launches.c.practice_id == practice_id,
               smart_launches.c.expires_at >= now)
        .values(used_at=now)
    ).rowcount
    if taken != 1:
        return None
    row = conn.execute(select(smart_launches).where(
        smart_launches.c.state_hash == key)).mappings().one()
    return PendingLaunch(**{name: row[name] for name in PendingLaunch.__dataclass_fields__})


def save_session(conn: Connection, token: str, session: SmartSession) -> None:
    conn.execute(smart_sessions.insert().values(session_hash=digest(token), **session.__dict__))


def find_session(conn: Connection, token: str, practice_id: str, *,
                 now: datetime) -> SmartSession | None:
    """The live session of this cookie for this practice, or None."""
    row = conn.execute(select(smart_sessions).where(
        smart_sessions.c.session_hash == digest(token),
        smart_sessions.c.practice_id == practice_id,
        smart_sessions.c.expires_at > now)).mappings().first()
    if row is None:
        return None
    return SmartSession(**{name: row[name] for name in SmartSession.__dataclass_fields__})
