"""The native door (CONTRACT §3.1): a verified `session.completed` body becomes an Arrival."""

from __future__ import annotations

import json

from marshmallow import ValidationError

from integrations.delivery.port import Contact
from schemas.base import error_map
from schemas.events import NativeEvent, SessionData
from service.intake.facts import Arrival, Completed, Ignored, Refused, SessionFacts

SOURCE = "native"
# Schema instances are reusable and costly to build: once per process, not per request.
NATIVE_EVENT, SESSION_DATA = NativeEvent(), SessionData()


def native_arrival(body: bytes, delivery_id: str) -> Arrival:
    """What a native event body says; raises Refused naming what is wrong with it."""
    document = _json(body)
    if not isinstance(document, dict):
        raise Refused("invalid", "the body must be a JSON object",
                      {"(body)": "must be a JSON object"})
    event = _load(NATIVE_EVENT, document)
    if event["type"] != "session.completed":
        reason = f"event type {event['type']} does not describe a completed session"
        return Arrival(SOURCE, delivery_id, event["type"], Ignored(reason))
    data = _load(SESSION_DATA, event["data"], prefix="data")
    if data["status"] != "completed":
        reason = f"session status {data['status']} is not a completed session"
        outcome = Ignored(reason, data["session_id"], data["patient_id"])
        return Arrival(SOURCE, delivery_id, event["type"], outcome)
    return Arrival(SOURCE, delivery_id, event["type"], Completed(_facts(data)))


def _facts(data: dict) -> SessionFacts:
    contact = data["contact"] or {}
    return SessionFacts(
        session_id=data["session_id"], patient_id=data["patient_id"],
        practitioner_id=data["practitioner_id"], ended_at=data["ended_at"],
        # Without a phone or an e-mail address the worker reads the Patient from the EHR.
        contact=Contact(**contact) if contact.get("phone") or contact.get("email") else None,
        # Encounter/{id} is the key a FHIR notification for the same visit claims (write-back
        # targets Encounter/{session_id}), so the two doors cannot both send a survey.
        dedupe_keys=(f"session:{data['session_id']}", f"Encounter/{data['session_id']}"),
    )


def _json(body: bytes):
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        raise Refused("unparseable", f"the body is not JSON: {error}") from None
    except RecursionError:  # json raises this, not ValueError, on very deep nesting
        raise Refused("unparseable",
                      "the body is not JSON we accept: it is nested too deeply") from None


def _load(schema, document, prefix: str | None = None) -> dict:
    try:
        return schema.load(document)
    except ValidationError as error:
        messages = {prefix: error.messages} if prefix else error.messages
        errors = error_map(ValidationError(messages))
        detail = "; ".join(f"{field}: {message}" for field, message in errors.items())
        raise Refused("invalid", detail, errors) from None
