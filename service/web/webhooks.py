"""Webhooks in: native signed events (CONTRACT §3.1) and FHIR Subscription notifications (§3.2).

Checks run cheapest-first and nothing is stored until every check has passed. The request path
touches only the database (one transaction per event): never the broker, never the EHR.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import structlog
from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError

from schemas.base import error_map
from schemas.events import NativeEvent, SessionData
from schemas.practice import PRACTICE_ID
from service import practices
from service.bootstrap import utc_now
from service.handlers.events import MAX_ID, Arrival, Recorded, record_arrival, storable_ids
from service.intake.fhir_notifications import NotificationError, parse_notification
from service.intake.hub_signature import verify_hub_signature
from service.intake.sessions import COMPLETED_STATUSES, classify_resource, topic_name
from service.intake.standard_webhooks import SignatureRefused, verify_standard_webhook
from service.web.problems import Problem

log = structlog.get_logger(__name__)

MAX_BODY = 256 * 1024
# app.config key of the clock the signature tolerance is measured against: the wall clock
# unless a test sets another (the standardwebhooks library cannot be given one).
SIGNATURE_CLOCK = "ALLIANCE_SIGNATURE_CLOCK"
# Schema instances are reusable and costly to build: once per process, not per request.
NATIVE_EVENT, SESSION_DATA = NativeEvent(), SessionData()
bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/<practice_id>/events")
def native_event(practice_id: str):
    """Receive a signed `session.completed` (or any other) native event."""
    services = current_app.extensions["alliance"]
    practice = _practice(services, practice_id)
    body = _body(("application/json",))
    _verify_standard_webhook(practice, body)
    delivery_id = request.headers["webhook-id"].strip()
    if not storable_ids(delivery_id):
        raise Problem(400, "Bad webhook-id",
                      f"the webhook-id header is longer than {MAX_ID} characters or holds control characters")
    arrival = _native_arrival(_json(body), delivery_id)
    return _answer(record_arrival(services, practice, arrival))


@bp.post("/webhooks/<practice_id>/fhir")
def fhir_notification(practice_id: str):
    """Receive a FHIR R4 Subscriptions Backport notification Bundle."""
    services = current_app.extensions["alliance"]
    practice = _practice(services, practice_id)
    body = _body(("application/fhir+json", "application/json"))
    _verify_fhir_sender(practice, body)
    try:
        notification = parse_notification(body)
    except NotificationError as error:
        unparseable = str(error).startswith(("not JSON", "not UTF-8"))
        raise Problem(400 if unparseable else 422, "Invalid notification", str(error)) from None
    if notification.kind not in ("event-notification", "query-event"):
        # Handshakes and heartbeats only prove the channel works: nothing to store.
        return jsonify(status="ok", kind=notification.kind, duplicate=False, events=[]), 200
    results = [record_arrival(services, practice, _fhir_arrival(notification, event, body, index))
               for index, event in enumerate(notification.events)]
    duplicate = bool(results) and all(r.duplicate for r in results)
    return jsonify(status="accepted", kind=notification.kind, duplicate=duplicate,
                   events=[_result(r) for r in results]), (200 if duplicate else 202)


def _practice(services, practice_id: str):
    if not PRACTICE_ID.match(practice_id):
        # Cannot exist (ids are checked on apply): answer without a query, whatever the bytes.
        raise Problem(404, "Unknown practice", "no practice with that id")
    practice = services.practice(practice_id)
    if practice is None:
        raise Problem(404, "Unknown practice", f"no practice with id {practice_id!r}")
    return practice


def _body(content_types: tuple[str, ...]) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Problem(413, "Body too large", f"the body is over {MAX_BODY // 1024} KiB")
    if request.mimetype not in content_types:
        raise Problem(415, "Unsupported media type",
                      f"send the body as {' or '.join(content_types)}, not {request.mimetype or 'nothing'}")
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
    token = settings.get("channel_token")
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return
    secret = settings.get("hub_secret")
    if secret and verify_hub_signature(secret, body, request.headers.get("X-Hub-Signature")):
        return
    log.info("webhook refused", practice_id=practice.id, reason="fhir-authentication")
    raise Problem(401, "Not authenticated",
                  "send the channel token as 'Authorization: Bearer …' or a valid X-Hub-Signature",
                  slug="bad-signature")


def _json(body: bytes):
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        raise Problem(400, "Unparseable body", f"the body is not JSON: {error}") from None
    except RecursionError:  # json raises this, not ValueError, on very deep nesting
        raise Problem(400, "Unparseable body", "the body is not JSON we accept: it is nested too deeply") from None


def _native_arrival(document, delivery_id: str) -> Arrival:
    if not isinstance(document, dict):
        raise Problem(422, "Invalid event", "the body must be a JSON object",
                      errors={"(body)": "must be a JSON object"})
    try:
        event = NATIVE_EVENT.load(document)
    except ValidationError as error:
        raise _invalid(error) from None
    if event["type"] != "session.completed":
        return Arrival("native", delivery_id, event["type"], {}, False,
                       f"event type {event['type']} does not describe a completed session")
    try:
        data = SESSION_DATA.load(event["data"])
    except ValidationError as error:
        raise _invalid(ValidationError({"data": error.messages})) from None
    session = SESSION_DATA.dump(data)
    completed = data["status"] == "completed"
    return Arrival(
        "native", delivery_id, event["type"], {"session": session}, completed,
        None if completed else f"session status {data['status']} is not a completed session",
        session_id=data["session_id"], patient_id=data["patient_id"],
        # Encounter/{id} is the key a FHIR notification for the same visit claims (write-back
        # targets Encounter/{session_id}), so the two routes cannot both send a survey.
        dedupe_keys=(f"session:{data['session_id']}", f"Encounter/{data['session_id']}"),
    )


def _fhir_arrival(notification, event, body: bytes, index: int) -> Arrival:
    delivery_id = _fhir_delivery_id(notification, event, body, index)
    topic = notification.topic or "unknown topic"
    if event.resource is None:
        return _id_only_arrival(notification, event, delivery_id, topic)
    signal = classify_resource(event.resource, notification.topic, notification.included)
    if not storable_ids(signal.session_id, signal.patient_id):
        return Arrival("fhir", delivery_id, topic, {}, False,
                       f"the session or patient id is longer than {MAX_ID} characters or holds control characters")
    session = {
        "session_id": signal.session_id, "patient_id": signal.patient_id,
        "practitioner_id": signal.practitioner_id, "ended_at": signal.ended_at,
        "contact": dict(signal.contact) if signal.contact else None,
    }
    return Arrival("fhir", delivery_id, topic, {"session": session}, signal.completed,
                   None if signal.completed else signal.reason, signal.session_id,
                   signal.patient_id, tuple(signal.dedupe_keys))


def _fhir_delivery_id(notification, event, body: bytes, index: int) -> str:
    if event.event_id:  # athena asks receivers to dedupe on notificationEvent.id
        delivery_id = f"event:{event.event_id}"
    elif notification.subscription and event.event_number:
        delivery_id = f"{notification.subscription}#{event.event_number}"
    else:
        return f"sha256:{hashlib.sha256(body).hexdigest()}#{index}"
    return delivery_id if storable_ids(delivery_id) else f"sha256:{hashlib.sha256(delivery_id.encode()).hexdigest()}"


def _id_only_arrival(notification, event, delivery_id: str, topic: str) -> Arrival:
    """id-only: the worker reads the focus from the EHR, unless no status could make it a session."""
    focus_type = (event.focus or topic_name(notification.topic) or "").split("/")[0].split(".")[0]
    patient_id = event.patient.split("/", 1)[1] if event.patient else None
    if not event.focus and not event.focus_identifier:
        return Arrival("fhir", delivery_id, topic, {}, False, "the notification names no focus resource")
    # Classify the best case (the focus in its completed status): if even that is no completed
    # session (a Patient focus, athena's Appointment.schedule topic), the EHR need not be asked.
    best_case = classify_resource(
        {"resourceType": focus_type, "status": COMPLETED_STATUSES.get(focus_type)}, notification.topic)
    if not best_case.completed:
        return Arrival("fhir", delivery_id, topic, {}, False, best_case.reason,
                       patient_id=patient_id if storable_ids(patient_id) else None)
    payload = {"focus": event.focus, "focus_type": focus_type,
               "focus_identifier": list(event.focus_identifier) if event.focus_identifier else None,
               "topic": notification.topic}
    return Arrival("fhir", delivery_id, topic, payload, None,
                   patient_id=patient_id if storable_ids(patient_id) else None)


def _invalid(error: ValidationError) -> Problem:
    errors = error_map(error)
    detail = "; ".join(f"{field}: {message}" for field, message in errors.items())
    return Problem(422, "Invalid event", detail, errors=errors)


def _result(recorded: Recorded) -> dict:
    result = {"event_id": recorded.event_id, "duplicate": recorded.duplicate}
    if recorded.outcome == "ignored":
        result["ignored"] = recorded.reason
    return result


def _answer(recorded: Recorded):
    body = {"status": "accepted", **_result(recorded)}
    return jsonify(body), (200 if recorded.duplicate else 202)
