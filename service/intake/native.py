"""The native door (CONTRACT §3.1): a verified `session.completed` body becomes an Arrival."""

from __future__ import annotations

from integrations.delivery.port import Contact
from schemas.events import NativeEvent, SessionData
from service.intake.bodies import json_object, load_with
from service.intake.facts import Arrival, Completed, Ignored, SessionFacts

SOURCE = "native"
# Schema instances are reusable and costly to build: once per process, not per request.
NATIVE_EVENT, SESSION_DATA = NativeEvent(), SessionData()


def native_arrival(body: bytes, delivery_id: str) -> Arrival:
    """What a native event body says; raises Refused naming what is wrong with it."""
    event = load_with(NATIVE_EVENT, json_object(body))
    if event["type"] != "session.completed":
        reason = f"event type {event['type']} does not describe a completed session"
        return Arrival(SOURCE, delivery_id, event["type"], Ignored(reason))
    data = load_with(SESSION_DATA, event["data"], prefix="data")
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
