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

import re
from datetime import datetime, timedelta

from marshmallow import ValidationError, validate

from service.handlers.events import Arrival

SOURCE = "healthie"
READ_EVENTS = frozenset({"appointment.created", "appointment.updated"})
OCCURRED = "occurred"
PHONE_NOISE = re.compile(r"[\s().-]")
E164 = re.compile(r"\A\+[1-9]\d{6,14}\Z")
EMAIL = validate.Email()


def session_key(appointment_id: str) -> str:
    return f"healthie-appointment/{appointment_id}"


def healthie_arrival(event: dict, delivery_id: str) -> Arrival:
    """The arrival for a verified, parsed webhook: read later, or recorded as not a session."""
    event_type, appointment_id = event["event_type"], event["resource_id"]
    if event_type not in READ_EVENTS and event_type != "appointment.deleted":
        return Arrival(
            SOURCE,
            delivery_id,
            event_type,
            {},
            False,
            f"event type {event_type} is not an appointment change",
        )
    if event["resource_id_type"] != "Appointment":
        return Arrival(
            SOURCE,
            delivery_id,
            event_type,
            {},
            False,
            f"resource type {event['resource_id_type']} is not an Appointment",
        )
    if event_type == "appointment.deleted":
        return Arrival(
            SOURCE,
            delivery_id,
            event_type,
            {},
            False,
            "the appointment was deleted in Healthie",
            session_id=appointment_id,
        )
    changed = event["changed_fields"]
    if (
        event_type == "appointment.updated"
        and changed
        and not any(name.startswith("pm_status") for name in changed)
    ):
        # The status did not change: Healthie need not be asked (the docs suggest reading
        # changed_fields first); an update without changed_fields is read to be safe.
        return Arrival(
            SOURCE,
            delivery_id,
            event_type,
            {},
            False,
            "the update did not change the appointment status (pm_status)",
            session_id=appointment_id,
        )
    return Arrival(
        SOURCE,
        delivery_id,
        event_type,
        {"appointment_id": appointment_id},
        None,
        session_id=appointment_id,
    )


def session_from_appointment(appointment: dict | None) -> dict:
    """The session facts of a completed appointment, or {"ignored": why not}."""
    if not appointment:
        return {"ignored": "the appointment was not found in Healthie"}
    if appointment.get("deleted_at"):
        return {"ignored": "the appointment was deleted in Healthie"}
    status = str(appointment.get("pm_status") or "").strip()
    if status.lower() != OCCURRED:
        return {
            "ignored": f"appointment status {status or '(none)'} is not a completed session "
            "(Occurred)"
        }
    client = _client(appointment)
    if client is None:
        return {"ignored": "a group appointment (no single client) is not surveyed"}
    appointment_id = str(appointment["id"])
    return {
        "session_id": appointment_id,
        "patient_id": str(client["id"]),
        "practitioner_id": _id(appointment.get("provider")),
        "ended_at": _ended_at(appointment.get("date"), appointment.get("length")),
        "contact": _contact(client),
        "dedupe_keys": [session_key(appointment_id)],
    }


def _client(appointment: dict) -> dict | None:
    user = appointment.get("user")
    if isinstance(user, dict) and user.get("id"):
        return user
    attendees = [
        a for a in appointment.get("attendees") or [] if isinstance(a, dict) and a.get("id")
    ]
    return attendees[0] if len(attendees) == 1 else None


def _contact(user: dict) -> dict | None:
    phone = PHONE_NOISE.sub("", str(user.get("phone_number") or ""))
    email = str(user.get("email") or "").strip()
    try:
        EMAIL(email)
    except ValidationError:
        email = ""
    # A number without its country code is not guessed at: e-mail reaches the client instead.
    contact = {"phone": phone if E164.match(phone) else None, "email": email or None}
    return contact if any(contact.values()) else None


def _ended_at(start: str | None, length) -> str | None:
    try:
        began = datetime.fromisoformat(str(start))
    except ValueError:
        return None
    if began.tzinfo is None:
        return None
    minutes = length if isinstance(length, int) and not isinstance(length, bool) else 0
    return (began + timedelta(minutes=max(0, min(minutes, 24 * 60)))).isoformat()


def _id(user) -> str | None:
    return str(user["id"]) if isinstance(user, dict) and user.get("id") else None
