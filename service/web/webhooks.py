"""Webhooks in: native signed events (CONTRACT §3.1) and FHIR Subscription notifications (§3.2).

Checks run cheapest-first and nothing is stored until every check has passed.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError
from standardwebhooks import Webhook, WebhookVerificationError

from schemas.base import error_map
from schemas.events import NativeEvent, SessionData
from service import practices
from service.handlers.events import Arrival, Recorded, record_arrival
from service.web.problems import Problem

MAX_BODY = 256 * 1024
bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/<practice_id>/events")
def native_event(practice_id: str):
    """Receive a signed `session.completed` (or any other) native event."""
    services = current_app.extensions["alliance"]
    practice = _practice(services, practice_id)
    body = _body(("application/json",))
    _verify_standard_webhook(practice, body)
    document = _json(body)
    arrival = _native_arrival(document, request.headers["webhook-id"])
    return _answer(record_arrival(services, practice, arrival))


@bp.post("/webhooks/<practice_id>/fhir")
def fhir_notification(practice_id: str):
    """Receive a FHIR R4 Subscriptions Backport notification Bundle."""
    from service.intake.fhir_notifications import NotificationError, parse_notification

    services = current_app.extensions["alliance"]
    practice = _practice(services, practice_id)
    body = _body(("application/fhir+json", "application/json"))
    _verify_fhir_sender(practice, body)
    try:
        notification = parse_notification(body)
    except NotificationError as error:
        status = 400 if str(error).startswith("not JSON") else 422
        raise Problem(status, "Invalid notification", str(error)) from None
    if notification.kind not in ("event-notification", "query-event"):
        # Handshakes and heartbeats only prove the channel works: nothing to store.
        return jsonify(status="ok", kind=notification.kind), 200
    results = [record_arrival(services, practice, _fhir_arrival(notification, event, body, index))
               for index, event in enumerate(notification.events)]
    duplicate = bool(results) and all(r.duplicate for r in results)
    return jsonify(status="accepted", duplicate=duplicate,
                   events=[_result(r) for r in results]), (200 if duplicate else 202)


def _practice(services, practice_id: str):
    with services.engine.begin() as conn:
        practice = practices.load(conn, services.box, practice_id)
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
    headers = {name: request.headers.get(name, "") for name in
               ("webhook-id", "webhook-timestamp", "webhook-signature")}
    missing = [name for name, value in headers.items() if not value]
    if missing:
        raise Problem(401, "Signature missing", f"missing header(s): {', '.join(missing)}",
                      slug="bad-signature")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, "Unparseable body", "the body is not UTF-8 JSON") from None
    last_error = "no webhook secret is configured for this practice"
    # Several active secrets: the practice can rotate without downtime.
    for secret in practice.webhook_secrets:
        try:
            Webhook(secret).verify(text, headers, json_parse=False)
            return
        except WebhookVerificationError as error:
            last_error = str(error)
        except ValueError:  # a signature header that is not "v1,<base64>"
            last_error = "malformed signature"
    raise Problem(401, "Bad signature", _signature_detail(last_error), slug="bad-signature")


def _signature_detail(message: str) -> str:
    if "too old" in message or "too new" in message:
        return "the webhook-timestamp is more than 5 minutes away from our clock"
    if "timestamp" in message.lower():
        return "the webhook-timestamp header is not a Unix time in seconds"
    if message == "malformed signature":
        return "the webhook-signature header is not of the form 'v1,<base64>'"
    return "no webhook-signature matches any of the practice's secrets"


def _verify_fhir_sender(practice, body: bytes) -> None:
    from service.intake.hub_signature import verify_hub_signature

    settings = practice.fhir_notifications
    token = settings.get("channel_token")
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return
    secret = settings.get("hub_secret")
    if secret and verify_hub_signature(secret, body, request.headers.get("X-Hub-Signature")):
        return
    raise Problem(401, "Not authenticated",
                  "send the channel token as 'Authorization: Bearer …' or a valid X-Hub-Signature",
                  slug="bad-signature")


def _json(body: bytes):
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        raise Problem(400, "Unparseable body", f"the body is not JSON: {error}") from None


def _native_arrival(document, delivery_id: str) -> Arrival:
    if not isinstance(document, dict):
        raise Problem(422, "Invalid event", "the body must be a JSON object",
                      errors={"(body)": "must be a JSON object"})
    try:
        event = NativeEvent().load(document)
    except ValidationError as error:
        raise _invalid(error) from None
    if event["type"] != "session.completed":
        return Arrival("native", delivery_id, event["type"], {}, False,
                       f"event type {event['type']} does not describe a completed session")
    try:
        data = SessionData().load(event["data"])
    except ValidationError as error:
        raise _invalid(ValidationError({"data": error.messages})) from None
    session = SessionData().dump(data)
    completed = data["status"] == "completed"
    return Arrival(
        "native", delivery_id, event["type"], {"session": session}, completed,
        None if completed else f"session status {data['status']} is not a completed session",
        session_id=data["session_id"], patient_id=data["patient_id"],
        dedupe_keys=(f"session:{data['session_id']}",),
    )


def _fhir_arrival(notification, event, body: bytes, index: int) -> Arrival:
    from service.intake.sessions import classify_resource, topic_name

    if event.event_id:  # athena asks receivers to dedupe on notificationEvent.id
        delivery_id = f"event:{event.event_id}"
    elif notification.subscription and event.event_number:
        delivery_id = f"{notification.subscription}#{event.event_number}"
    else:
        delivery_id = f"sha256:{hashlib.sha256(body).hexdigest()}#{index}"
    topic = notification.topic or "unknown topic"
    if event.resource is None:
        # id-only: the worker reads the focus from the EHR (by reference, or by identifier).
        focus_type = (event.focus or topic_name(notification.topic) or "").split("/")[0].split(".")[0]
        payload = {"focus": event.focus, "focus_type": focus_type or None,
                   "focus_identifier": list(event.focus_identifier) if event.focus_identifier else None,
                   "topic": notification.topic}
        return Arrival("fhir", delivery_id, topic, payload, None)
    signal = classify_resource(event.resource, notification.topic, notification.included)
    session = {
        "session_id": signal.session_id, "patient_id": signal.patient_id,
        "practitioner_id": signal.practitioner_id, "ended_at": signal.ended_at,
        "contact": dict(signal.contact) if signal.contact else None,
    }
    return Arrival("fhir", delivery_id, topic, {"session": session}, signal.completed,
                   None if signal.completed else signal.reason, signal.session_id,
                   signal.patient_id, tuple(signal.dedupe_keys))


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
