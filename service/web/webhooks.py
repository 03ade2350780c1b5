"""Webhooks in: native signed events (CONTRACT §3.1) and FHIR Subscription notifications (§3.2).

Each view reads the body, verifies the sender, hands the body to its door in `service/intake/`
and answers with what was recorded. Checks run cheapest-first and nothing is stored until every
check has passed. The request path touches only the database (one transaction per event):
never the broker, never the EHR.
"""

from __future__ import annotations

import base64
import hmac
import os

import structlog
from flask import Blueprint, current_app, jsonify, request

from service.bootstrap import utc_now
from service.handlers.events import Recorded, record_arrival
from service.intake.facts import MAX_ID, Refused, storable_ids
from service.intake.fhir import fhir_arrivals
from service.intake.hub_signature import verify_hub_signature
from service.intake.native import native_arrival
from service.intake.standard_webhooks import SignatureRefused, verify_standard_webhook
from service.web.problems import Problem

log = structlog.get_logger(__name__)

MAX_BODY = 256 * 1024
# app.config key of the clock the signature tolerance is measured against: the wall clock
# unless a test sets another (the standardwebhooks library cannot be given one).
SIGNATURE_CLOCK = "ALLIANCE_SIGNATURE_CLOCK"
JSON, FHIR_JSON = ("application/json",), ("application/fhir+json", "application/json")
# A door's refusal (service.intake.facts.Refused) as an answer: kind -> (status, title).
EVENT_REFUSALS = {"unparseable": (400, "Unparseable body"), "invalid": (422, "Invalid event")}
FHIR_REFUSALS = {"unparseable": (400, "Invalid notification"),
                 "invalid": (422, "Invalid notification")}
bp = Blueprint("webhooks", __name__)
# What an unknown practice (or one without that way in) is checked against: random per process,
# so nothing verifies, and the refusal takes the path and the words of a bad signature.
_NO_SECRETS = ("whsec_" + base64.b64encode(os.urandom(32)).decode(),)
_NO_TOKEN = base64.urlsafe_b64encode(os.urandom(32)).decode()


@bp.post("/webhooks/<practice_id>/events")
def native_event(practice_id: str):
    """Receive a signed `session.completed` (or any other) native event."""
    services = current_app.extensions["alliance"]
    body = read_body(JSON)
    practice = _verify_standard_webhook(services.practice(practice_id), body)
    delivery_id = request.headers["webhook-id"].strip()
    if not storable_ids(delivery_id):
        raise Problem(400, "Bad webhook-id", f"the webhook-id header is longer than {MAX_ID} "
                      "characters or holds control characters")
    arrival = read_door(lambda: native_arrival(body, delivery_id), EVENT_REFUSALS)
    return answer(record_arrival(services, practice, arrival))


@bp.post("/webhooks/<practice_id>/fhir")
def fhir_notification(practice_id: str):
    """Receive a FHIR R4 Subscriptions Backport notification Bundle."""
    services = current_app.extensions["alliance"]
    body = read_body(FHIR_JSON)
    practice = _verify_fhir_sender(services.practice(practice_id), body)
    delivery = read_door(lambda: fhir_arrivals(body), FHIR_REFUSALS)
    if not delivery.has_events:
        # Handshakes and heartbeats only prove the channel works: nothing to store.
        return jsonify(status="ok", kind=delivery.kind, duplicate=False, events=[]), 200
    results = [record_arrival(services, practice, arrival) for arrival in delivery.arrivals]
    duplicate = bool(results) and all(r.duplicate for r in results)
    return jsonify(status="accepted", kind=delivery.kind, duplicate=duplicate,
                   events=[_result(r) for r in results]), (200 if duplicate else 202)


def read_body(content_types: tuple[str, ...]) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Problem(413, "Body too large", f"the body is over {MAX_BODY // 1024} KiB")
    if request.mimetype not in content_types:
        raise Problem(415, "Unsupported media type", f"send the body as "
                      f"{' or '.join(content_types)}, not {request.mimetype or 'nothing'}")
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise Problem(413, "Body too large", f"the body is over {MAX_BODY // 1024} KiB")
    return body


def _verify_standard_webhook(practice, body: bytes):
    """The practice, once one of its secrets signed the request; an unknown practice, or one
    without webhook secrets, is refused with the words of a signature no secret matches."""
    now = current_app.config.get(SIGNATURE_CLOCK, utc_now)()
    secrets = (practice.webhook_secrets if practice else ()) or _NO_SECRETS
    try:
        # Several active secrets: the practice can rotate without downtime.
        verify_standard_webhook(secrets, request.headers, body, now)
        if secrets is _NO_SECRETS:
            raise SignatureRefused("no webhook-signature matches any of the practice's secrets")
    except SignatureRefused as refused:
        _log_refusal(practice, "signature")
        raise Problem(401, "Bad signature", str(refused), slug="bad-signature") from None
    return practice


def _verify_fhir_sender(practice, body: bytes):
    """The practice, once its channel token or hub secret authenticated the request; an
    unknown practice takes the same checks (against values nobody has) and the same refusal."""
    settings = practice.fhir_notifications if practice else None
    token = (settings and settings.channel_token) or _NO_TOKEN
    hub_secret = (settings and settings.hub_secret) or _NO_TOKEN
    given = request.headers.get("Authorization", "")
    by_token = hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    signature = request.headers.get("X-Hub-Signature")
    by_hub = verify_hub_signature(hub_secret, body, signature)
    if settings and ((by_token and token == settings.channel_token)
                     or (by_hub and hub_secret == settings.hub_secret)):
        return practice
    _log_refusal(practice, "fhir-authentication")
    raise Problem(401, "Not authenticated",
                  "send the channel token as 'Authorization: Bearer …' or a valid X-Hub-Signature",
                  slug="bad-signature")


def _log_refusal(practice, reason: str) -> None:
    # The id in the URL is not ours to log until it is known to be a practice's.
    log.info("webhook refused", practice_id=practice.id if practice else None, reason=reason)


def read_door(read, refusals: dict[str, tuple[int, str]]):
    """What the door read from the body, or its refusal as problem+json (the other webhook
    views use this, read_body and answer too)."""
    try:
        return read()
    except Refused as refused:
        status, title = refusals[refused.kind]
        raise Problem(status, title, refused.detail, errors=refused.errors or None) from None


def answer(recorded: Recorded):
    """The answer to one recorded event: 202, or 200 for a duplicate."""
    return jsonify(status="accepted", **_result(recorded)), (200 if recorded.duplicate else 202)


def _result(recorded: Recorded) -> dict:
    result = {"event_id": recorded.event_id, "duplicate": recorded.duplicate}
    if recorded.outcome == "ignored":
        result["ignored"] = recorded.reason
    return result
