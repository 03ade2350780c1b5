"""Check a WebSub ``X-Hub-Signature`` header, as athenahealth sends with FHIR notifications."""

from __future__ import annotations

import hashlib
import hmac

# Only sha256: athena signs with it, and its published test vectors use it. The weaker sha1
# that WebSub also allows is refused rather than accepted without a vendor that needs it.
_METHODS = {"sha256": hashlib.sha256}


def verify_hub_signature(secret: str, body: bytes, header_value: str | None) -> bool:
    """True when header_value is "sha256=<hex>" of HMAC(secret's UTF-8 bytes, raw body)."""
    if not secret or not header_value:
        return False
    method, separator, received = header_value.strip().partition("=")
    digest = _METHODS.get(method.strip().lower())
    if digest is None or not separator:
        return False
    expected = hmac.new(secret.encode("utf-8"), body, digest).hexdigest()
    try:
        received_bytes = received.strip().lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), received_bytes)
