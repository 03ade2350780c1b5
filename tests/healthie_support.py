"""Helpers for the Healthie tests: a practice whose EHR is Healthie, and requests signed the way
Healthie signs (service/intake/healthie_signature.py; vectors in fixtures/vendors/)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from support import practice_document

HEALTHIE_SECRET = "whsec_healthie-signature-secret-for-tests"
HEALTHIE_KEY = "gh_sbox_alliance-tests-api-key"
SIGNATURE_INPUT = (
    'sig1=("@method" "@path" "@query" "content-digest" "content-type" "content-length")'
)
FORM_FIELDS = {"summary": "301", "total": "302", "decision": "303"}


def healthie_practice(api_url: str, **overrides) -> dict:
    """northside on Healthie: the door, the write-back, SMS to the client."""
    section = {
        "api_url": api_url,
        "api_key": HEALTHIE_KEY,
        "webhook_secret": HEALTHIE_SECRET,
        "form_id": "300",
        "form_fields": FORM_FIELDS,
        "care_alert_days": 21,
    }
    document = practice_document(
        ehr={"type": "healthie"}, healthie=section, webhook_secrets=[], fhir_notifications=None
    )
    document["delivery"] = {"channels": ["sms"], "sms": document["delivery"]["sms"]}
    document.update(overrides)
    return document


def healthie_event(
    appointment_id, event_type="appointment.updated", changed=("pm_status",)
) -> dict:
    return {
        "resource_id": appointment_id,
        "resource_id_type": "Appointment",
        "event_type": event_type,
        "changed_fields": list(changed),
    }


def signed(
    document,
    path: str = "/webhooks/northside/healthie",
    *,
    secret: str = HEALTHIE_SECRET,
    query: str = "",
    signature_input: str = SIGNATURE_INPUT,
) -> tuple[bytes, dict]:
    """The body and headers Healthie would send to `path`."""
    body = (
        document
        if isinstance(document, bytes)
        else json.dumps(document, separators=(",", ":")).encode()
    )
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    signed_string = f"post {path} {query} :{digest}: application/json {len(body)}"
    signature = hmac.new(secret.encode(), signed_string.encode(), hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/json",
        "Content-Digest": f"sha-256=:{digest}:",
        "Signature-Input": signature_input,
        "Signature": f"sig1={signature}",
    }
