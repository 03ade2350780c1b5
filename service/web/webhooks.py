"""Webhooks in: native signed events (CONTRACT §3.1) and FHIR Subscription notifications (§3.2).

Each view reads the body, verifies the sender, hands the body to its door in `service/intake/`
and answers with what was recorded. Checks run cheapest-first and nothing is stored until every
check has passed. The request path touches only the database (one transaction per event):
never the broker, never the EHR.
"""

from __future__ import annotations

import hmac

import structlog
from flask import Blueprint, current_app, jsonify, request

from schemas.practice import PRACTICE_ID
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


@bp.post("/webhooks/<practice_id>/events")
def native_event(practice_id: str):
    """Receive a signed `session.completed` (or any other) native event."""
    services = current_app.extensions["alliance"]
    practice = _practice(services, practice_id)
    body = read_body(JSON)
    _verify_standard_webhook(practice, body)
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
    practice = _practice(services, practice_id)
    body = read_body(FHIR_JSON)
    _verify_fhir_sender(practice, body)
    delivery = read_door(lambda: fhir_arrivals(body), FHIR_REFUSALS)
    if not delivery.has_events:
        # Handshakes and heartbeats only prove the channel works: nothing to store.
        return jsonify(status="ok", kind=delivery.kind, duplicate=False, events=[]), 200
    results = [record_arrival(services, practice, arrival) for arrival in delivery.arrivals]
    duplicate = bool(results) and all(r.duplicate for r in results)
    return jsonify(status="accepted", kind=delivery.kind, duplicate=duplicate,
                   events=[_result(r) for r in results]), (200 if duplicate else 202)


def _practice(services, practice_id: str):
    if not PRACTICE_ID.match(practice_id):
        # Cannot exist (ids are checked on apply): answer without a query, whatever the bytes.
        raise Problem(404, "Unknown practice", "no practice with that id")
    practice = services.practice(practice_id)
    if practice is None:
        raise Problem(404, "Unknown practice", f"no practice with id {practice_id!r}")
    return practice


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


def _verify_standard_webhook(practice, body: bytes) -> None:
    now = current_app.config.get(SIGNATURE_CLOCK, utc_now)()
    try:
        # Several active secrets: the practice can rotate without downtime.
        verify_standard_webhook(practice.webhook_secrets, request.headers, body, now)
    except SignatureRefused as refused:
        log.info("webhook refused", practice_id=practice.id, reason="signature")
        raise Problem(401, "Bad signature", str(refused), slug="bad-signature") from None


def _verify_fhir_sender(practice, body: bytes) -> None:
    settings = practice.fhir_notifications
    given = request.headers.get("Authorization", "")
    token = settings.channel_token
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return
    signature = request.headers.get("X-Hub-Signature")
    if settings.hub_secret and verify_hub_signature(settings.hub_secret, body, signature):
        return
    log.info("webhook refused", practice_id=practice.id, reason="fhir-authentication")
    raise Problem(401, "Not authenticated",
                  "send the channel token as 'Authorization: Bearer …' or a valid X-Hub-Signature",
                  slug="bad-signature")


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
