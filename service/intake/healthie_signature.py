"""Verify a Healthie webhook: `Content-Digest` against the raw body, then `Signature`.

Healthie's guide (docs.gethealthie.com/guides/webhooks, "Signed payloads") names the headers
`Content-Digest`, `Signature-Input` and `Signature`, says the signature is an HMAC-SHA256 over
"the HTTP method, path, query string, content digest, content type and content length", and
gives a JavaScript sample without the exact string. The string below is the sample's, as the
public receivers that run against Healthie use it (metriport/metriport@c6751a3:
packages/core/src/external/ehr/webhook.ts, `constructDataToSign`):

    "<method lowercase> <path> <query> <digest value> application/json <content length>"

keyed with the webhook's secret as UTF-8 text (the whole string, `whsec_` included) and
compared as lowercase hex with the value after `=` in `Signature` (`sig1=<hex>`).

Two details differ between public receivers, so both readings are accepted:
- the digest value: the sample takes `header.split('=')[1]`, which drops base64 padding;
  other receivers take everything after the first `=`. Both strings are tried. The digest
  itself is always checked against the body first, so either way the body is authenticated.
- the digest syntax: RFC 9530 (`sha-256=:<base64>:`) or the sample's `SHA-256=<value>` with
  a base64 or hex value. `http_sfv` is not used: the sample's form is not a structured field.

The content length is the raw body's byte count (what the sample's `JSON.stringify(body)`
yields for the compact JSON Healthie sends). Nothing in the signed string is a timestamp, so
a captured request stays valid: repeats are caught by the delivery dedupe instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping

from service.intake.standard_webhooks import SignatureRefused

SIGNATURE_HEADERS = ("Content-Digest", "Signature-Input", "Signature")
MAX_HEADER = 4096
HEX_256 = re.compile(r"\A[0-9a-fA-F]{64}\Z")
# One refusal for every signature mismatch and for an unknown practice, so an unsigned caller
# cannot tell which practice ids exist.
NOT_SIGNED = (
    "the Signature header does not verify with the practice's Healthie webhook "
    "secret (or no such practice is set up for Healthie)"
)


def check_headers_and_digest(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    """The three signature headers (stripped), once present and the digest matches the body."""
    values = {name: (headers.get(name) or "").strip() for name in SIGNATURE_HEADERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise SignatureRefused(f"missing header(s): {', '.join(missing)}")
    if any(len(value) > MAX_HEADER for value in values.values()):
        raise SignatureRefused(f"a signature header is longer than {MAX_HEADER} characters")
    given = _sha256_member(values["Content-Digest"])
    if not hmac.compare_digest(given, hashlib.sha256(body).digest()):
        raise SignatureRefused(
            "the Content-Digest does not match the body (SHA-256 of the raw bytes)"
        )
    return values


def verify_signature(
    secret: str, headers: Mapping[str, str], *, method: str, path: str, query: str, body: bytes
) -> None:
    """Raise SignatureRefused unless `Signature` is Healthie's HMAC of this request."""
    values = check_headers_and_digest(headers, body)
    given = _signatures(values["Signature"])
    key = secret.encode("utf-8")
    matched = False
    for digest_part in digest_components(values["Content-Digest"]):
        signed = signed_string(method, path, query, digest_part, len(body))
        expected = hmac.new(key, signed.encode("utf-8"), hashlib.sha256).digest()
        # Compare with every entry so the timing does not show which one came close.
        matched |= any([hmac.compare_digest(expected, candidate) for candidate in given])
    if not matched:
        raise SignatureRefused(NOT_SIGNED)


def signed_string(method: str, path: str, query: str, digest_part: str, length: int) -> str:
    """The string Healthie signs (module docstring)."""
    return f"{method.lower()} {path} {query} {digest_part} application/json {length}"


def digest_components(header: str) -> list[str]:
    """The digest as the signed string may hold it: after the first '=', or up to the next."""
    after_first = header.split("=", 1)[1].strip() if "=" in header else ""
    sample = header.split("=")[1].strip() if "=" in header else ""
    return list(dict.fromkeys((after_first, sample)))


def _sha256_member(header: str) -> bytes:
    for member in header.split(","):
        name, equals, value = member.strip().partition("=")
        if equals and name.strip().lower() == "sha-256":
            decoded = _decode(value.strip())
            if decoded is not None and len(decoded) == 32:
                return decoded
            raise SignatureRefused(
                "the Content-Digest sha-256 value is neither base64 nor hex of 32 bytes"
            )
    raise SignatureRefused(
        "the Content-Digest header has no sha-256 member (e.g. sha-256=:<base64>:)"
    )


def _signatures(header: str) -> list[bytes]:
    """Each `label=<hex>` (Healthie) or `label=:<base64>:` (RFC 9421) entry, decoded."""
    found = []
    for member in header.split(","):
        _label, equals, value = member.strip().partition("=")
        decoded = _decode(value.strip()) if equals else None
        if decoded is not None:
            found.append(decoded)
    if not found:
        raise SignatureRefused("the Signature header has no entry of the form 'sig1=<hex>'")
    return found


def _decode(value: str) -> bytes | None:
    """Bytes of a hex string, an RFC 8941 byte sequence (:base64:) or bare base64."""
    if HEX_256.match(value):
        return bytes.fromhex(value)
    if len(value) >= 2 and value.startswith(":") and value.endswith(":"):
        value = value[1:-1]
    try:
        return base64.b64decode(value, validate=True) if value else None
    except (binascii.Error, ValueError):
        return None
