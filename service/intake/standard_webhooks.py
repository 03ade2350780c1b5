"""Verify a Standard Webhooks signature (CONTRACT §3.1) against a clock the caller supplies.

The `standardwebhooks` library reads `datetime.now()` itself; taking `now` as an argument lets
the service use its own clock and lets tests replay the published vectors at their timestamps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

TOLERANCE = timedelta(minutes=5)
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class SignatureRefused(ValueError):
    """The request is not provably from the practice; the message says why in plain words."""


def verify_standard_webhook(
    secrets: Sequence[str], headers: Mapping[str, str], body: bytes, now: datetime,
    tolerance: timedelta = TOLERANCE,
) -> int:
    """Check headers and body; return the index of the secret that signed, or raise
    SignatureRefused."""
    values = {name: (headers.get(name) or "").strip() for name in SIGNATURE_HEADERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise SignatureRefused(f"missing header(s): {', '.join(missing)}")
    _check_fresh(values["webhook-timestamp"], now, tolerance)
    signatures = _v1_signatures(values["webhook-signature"])
    if not secrets:
        raise SignatureRefused("the practice has no webhook secret configured")
    signed = f"{values['webhook-id']}.{values['webhook-timestamp']}.".encode() + body
    for index, secret in enumerate(secrets):
        expected = hmac.new(_key(secret), signed, hashlib.sha256).digest()
        # Compare against every entry so timing does not reveal which one came close.
        if any([hmac.compare_digest(expected, given) for given in signatures]):
            return index
    raise SignatureRefused("no webhook-signature matches any of the practice's secrets")


def _check_fresh(timestamp: str, now: datetime, tolerance: timedelta) -> None:
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureRefused("the webhook-timestamp header is not a Unix time in seconds")
    offset = int(timestamp) - now.timestamp()
    if abs(offset) > tolerance.total_seconds():
        direction = "in the past" if offset < 0 else "in the future"
        raise SignatureRefused(
            f"the webhook-timestamp is {abs(int(offset))} s {direction}: more than the "
            f"{int(tolerance.total_seconds() // 60)}-minute tolerance (replayed or a wrong clock)")


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded `v1` entries of a space-separated list; other versions are skipped (spec)."""
    found: list[bytes] = []
    for entry in header.split():
        version, comma, value = entry.partition(",")
        if not comma or version != "v1":
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not found:
        raise SignatureRefused(
            "the webhook-signature header has no entry of the form 'v1,<base64>'")
    return found


def _key(secret: str) -> bytes:
    """The HMAC key: the base64 after 'whsec_' (the prefix is optional, as in the reference
    libraries)."""
    return base64.b64decode(secret.removeprefix("whsec_"))
