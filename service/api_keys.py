"""Practice API keys: what a practice's own software (the Canvas plugin) presents to read its
alerts (`Authorization: Bearer afk_<key id>.<secret>`).

A key is a random key id (64 bits, shown in listings and used to revoke) and a random secret
(256 bits from `secrets`). Only the SHA-256 digest of the whole key is stored, and a presented
key is checked by comparing digests in constant time. A fast hash is enough here, unlike for
passwords: slow, salted hashes (bcrypt, argon2) exist to make guessing a *low-entropy* secret
from a stolen digest expensive, and 256 random bits cannot be guessed at any speed. The stored
digest is useless to a thief: presenting it is not presenting the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from service.persistence.queries import api_keys as queries

PREFIX = "afk_"
KEY_FORMAT = re.compile(r"afk_([0-9a-f]{16})\.[A-Za-z0-9_-]{43}")
# Compared against when the key id is unknown, so that answer takes as long as a wrong secret.
_NO_DIGEST = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    key: str  # shown once, never stored


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create(conn: Connection, practice_id: str, now: datetime,
           label: str | None = None) -> IssuedKey:
    """A new key for the practice; the caller shows `key` once."""
    key_id = secrets.token_hex(8)
    key = f"{PREFIX}{key_id}.{secrets.token_urlsafe(32)}"
    queries.insert_key(conn, key_id, practice_id, digest(key), label, now)
    return IssuedKey(key_id, key)


def revoke(conn: Connection, practice_id: str, key_id: str, now: datetime) -> bool:
    return queries.revoke_key(conn, practice_id, key_id, now)


def authenticate(conn: Connection, practice_id: str, presented: str | None) -> str | None:
    """The key id if `presented` is a live key of this practice, else None (for any reason:
    malformed, unknown, revoked, another practice's — the caller answers all alike)."""
    match = KEY_FORMAT.fullmatch(presented or "")
    if match is None:
        return None
    found = queries.live_key(conn, match.group(1))
    stored = found[1] if found else _NO_DIGEST
    matches = hmac.compare_digest(stored, digest(presented))
    if found is None or not matches or found[0] != practice_id:
        return None
    return match.group(1)
