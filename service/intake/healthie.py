"""Healthie's thin webhooks (CONTRACT §10): which events may be a completed session, and the
completion rule applied to the appointment read back over GraphQL.

The completion rule (docs/integrations.md, "Healthie"), on Healthie's documented Appointment
fields (docs.gethealthie.com/reference/2026-01-01/objects/appointment):

- `pm_status` is `Occurred` ("Can be one of Occurred, No-Show, Re-Scheduled, Cancelled; if
  enabled, Late Cancellation and Checked-In"): only `Occurred` says the session took place;
  `Checked-In` says the client arrived, not that the session was held;
- `deleted_at` is empty;
- the client is `user` (the client of a 1:1 appointment); a group appointment (no `user`, more
  than one of `attendees`) is not surveyed: the alliance measured here is one client's with
  one therapist.

The session is the appointment: session id = appointment id, session key
`healthie-appointment/{id}`, practitioner = `provider.id`, end = `date` + `length` minutes,
contact = the client's `phone_number` (when it is E.164) and `email`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.healthie import HealthieWebhook
from service.intake.bodies import json_object, load_with
from service.intake.contact import checked_contact
from service.intake.facts import (
    UNSTORABLE_IDS,
    Arrival,
    Completed,
    EhrRead,
    Ignored,
    NeedsRead,
    Outcome,
    SessionFacts,
    storable_ids,
)

SOURCE = "healthie"
READ_EVENTS = frozenset({"appointment.created", "appointment.updated"})
OCCURRED = "occurred"
HEALTHIE_WEBHOOK = HealthieWebhook()


def session_key(appointment_id: str) -> str:
    return f"healthie-appointment/{appointment_id}"


def read_healthie_webhook(body: bytes, delivery_id: str) -> Arrival:
    """What a verified webhook body says; raises Refused naming what is wrong with it."""
    return healthie_arrival(load_with(HEALTHIE_WEBHOOK, json_object(body)), delivery_id)


def healthie_arrival(event: dict, delivery_id: str) -> Arrival:
    """The arrival for a verified, parsed webhook: read later, or recorded as not a session."""
    return Arrival(SOURCE, delivery_id, event["event_type"], _outcome(event))


def _outcome(event: dict) -> Outcome:
    event_type, appointment_id = event["event_type"], event["resource_id"]
    if event_type not in READ_EVENTS and event_type != "appointment.deleted":
        return Ignored(f"event type {event_type} is not an appointment change")
    if event["resource_id_type"] != "Appointment":
        return Ignored(f"resource type {event['resource_id_type']} is not an Appointment")
    if event_type == "appointment.deleted":
        return Ignored("the appointment was deleted in Healthie", appointment_id)
    changed = event["changed_fields"]
    if (
        event_type == "appointment.updated"
        and changed
        and not any(name.startswith("pm_status") for name in changed)
    ):
        # The status did not change: Healthie need not be asked (the docs suggest reading
        # changed_fields first); an update without changed_fields is read to be safe.
        return Ignored("the update did not change the appointment status (pm_status)",
                       appointment_id)
    return NeedsRead(EhrRead("Appointment", appointment_id), session_id=appointment_id)


def session_from_appointment(appointment: dict | None) -> Completed | Ignored:
    """The completed session an appointment read back over GraphQL is, or why it is not one."""
    if not appointment:
        return Ignored("the appointment was not found in Healthie")
    if appointment.get("deleted_at"):
        return Ignored("the appointment was deleted in Healthie")
    status = str(appointment.get("pm_status") or "").strip()
    if status.lower() != OCCURRED:
        return Ignored(f"appointment status {status or '(none)'} is not a completed session "
                       "(Occurred)")
    client = _client(appointment)
    if client is None:
        return Ignored("a group appointment (no single client) is not surveyed")
    appointment_id, patient_id = str(appointment["id"]), str(client["id"])
    if not storable_ids(appointment_id, patient_id):
        return Ignored(UNSTORABLE_IDS)
    return Completed(SessionFacts(
        session_id=appointment_id,
        patient_id=patient_id,
        practitioner_id=_id(appointment.get("provider")),
        ended_at=_ended_at(appointment.get("date"), appointment.get("length")),
        # A number without its country code is not guessed at: e-mail reaches the client.
        contact=checked_contact(_texts(client.get("phone_number")), _texts(client.get("email")),
                                None),
        dedupe_keys=(session_key(appointment_id),),
    ))


def _client(appointment: dict) -> dict | None:
    user = appointment.get("user")
    if isinstance(user, dict) and user.get("id"):
        return user
    attendees = [
        a for a in appointment.get("attendees") or [] if isinstance(a, dict) and a.get("id")
    ]
    return attendees[0] if len(attendees) == 1 else None


def _texts(value) -> list[str]:
    return [value] if isinstance(value, str) and value.strip() else []


def _ended_at(start: str | None, length) -> datetime | None:
    try:
        began = datetime.fromisoformat(str(start))
    except ValueError:
        return None
    if began.tzinfo is None:
        return None
    minutes = length if isinstance(length, int) and not isinstance(length, bool) else 0
    return began + timedelta(minutes=max(0, min(minutes, 24 * 60)))


def _id(user) -> str | None:
    return str(user["id"]) if isinstance(user, dict) and user.get("id") else None
