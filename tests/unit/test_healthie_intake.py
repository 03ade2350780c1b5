"""Healthie's thin webhook bodies (Healthie's docs examples) and the completion rule applied to
the appointment read back over GraphQL."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from marshmallow import ValidationError

from integrations.delivery.port import Contact
from schemas.healthie import HealthieWebhook
from service.intake.facts import Completed, EhrRead, Ignored, NeedsRead
from service.intake.healthie import healthie_arrival, session_from_appointment
from support import PAYLOADS

SCHEMA = HealthieWebhook()


def fixture(name: str) -> dict:
    return json.loads((PAYLOADS / "vendors" / f"healthie-docs-{name}.json").read_text())


def arrival(document: dict):
    return healthie_arrival(SCHEMA.load(document), "sha256:abc")


def test_an_updated_status_is_read_by_the_worker():
    read = arrival(fixture("appointment.updated"))
    assert read.source == "healthie" and read.session_id == "67890"
    assert read.outcome == NeedsRead(EhrRead("Appointment", "67890"), session_id="67890")
    assert read.event_type == "appointment.updated"


def test_a_created_appointment_is_read_too():
    assert isinstance(arrival(fixture("appointment.created")).outcome, NeedsRead)


@pytest.mark.parametrize(
    "document, reason",
    [
        (fixture("appointment.deleted"), "deleted in Healthie"),
        (
            fixture("form_answer_group.locked"),
            "event type form_answer_group.locked is not an appointment change",
        ),
        (fixture("standard-payload"), "not an appointment change"),
        (
            {**fixture("appointment.updated"), "changed_fields": ["date", "location"]},
            "did not change the appointment status",
        ),
        ({**fixture("appointment.updated"), "resource_id_type": "Entry"}, "resource type Entry"),
    ],
)
def test_what_cannot_be_a_completed_session_is_recorded_without_a_read(document, reason):
    ignored = arrival(document).outcome
    assert isinstance(ignored, Ignored) and reason in ignored.reason


def test_integer_and_string_ids_are_the_same_session():
    as_int = arrival({**fixture("appointment.updated"), "resource_id": 67890})
    assert as_int.outcome == arrival(fixture("appointment.updated")).outcome


def test_extra_fields_are_dropped_never_kept():
    event = SCHEMA.load(
        {
            **fixture("appointment.updated"),
            "user_name": "Jane Client",
            "user_email": "jane@example.org",
        }
    )
    assert "user_name" not in event and "user_email" not in event


@pytest.mark.parametrize(
    "change, field",
    [
        ({"resource_id": True}, "resource_id"),
        ({"resource_id": 1.5}, "resource_id"),
        ({"resource_id": ""}, "resource_id"),
        ({"resource_id": "x" * 201}, "resource_id"),
        ({"resource_id": "67\x0090"}, "resource_id"),
        ({"event_type": None}, "event_type"),
        ({"changed_fields": "pm_status"}, "changed_fields"),
    ],
)
def test_invalid_fields_are_named(change, field):
    with pytest.raises(ValidationError) as refused:
        SCHEMA.load({**fixture("appointment.updated"), **change})
    assert field in refused.value.messages


OCCURRED = {
    "id": "67890",
    "pm_status": "Occurred",
    "date": "2026-11-26T15:00:00-06:00",
    "length": 50,
    "deleted_at": None,
    "provider": {"id": "9"},
    "user": {"id": "77", "email": "client@example.org", "phone_number": "+1 (555) 123-4567"},
    "attendees": [{"id": "77"}],
}


def test_an_occurred_one_to_one_appointment_is_a_completed_session():
    outcome = session_from_appointment(OCCURRED)
    assert isinstance(outcome, Completed)
    facts = outcome.facts
    assert (facts.session_id, facts.patient_id, facts.practitioner_id) == ("67890", "77", "9")
    assert facts.ended_at == datetime.fromisoformat("2026-11-26T15:50:00-06:00")
    assert facts.contact == Contact(phone="+15551234567", email="client@example.org")
    assert facts.dedupe_keys == ("healthie-appointment/67890",)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"pm_status": "No-Show"}, "No-Show is not a completed session"),
        ({"pm_status": "Checked-In"}, "Checked-In is not a completed session"),
        ({"pm_status": "Cancelled"}, "Cancelled"),
        ({"pm_status": None}, "(none)"),
        ({"deleted_at": "2026-11-26T16:00:00Z"}, "deleted"),
        ({"user": None, "attendees": [{"id": "77"}, {"id": "78"}]}, "group appointment"),
    ],
)
def test_what_is_not_a_completed_session(change, reason):
    assert reason in session_from_appointment({**OCCURRED, **change}).reason


def test_a_missing_appointment_is_not_a_session():
    assert "not found" in session_from_appointment(None).reason


def test_a_lone_attendee_is_the_client_and_a_local_number_is_not_guessed_at():
    session = session_from_appointment(
        {
            **OCCURRED,
            "user": None,
            "pm_status": " occurred ",
            "attendees": [{"id": "80", "phone_number": "555 123 4567"}],
        }
    )
    assert session.facts.patient_id == "80" and session.facts.contact is None
