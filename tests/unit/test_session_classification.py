"""What counts as a completed session, and which keys identify the visit."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.delivery.port import Contact
from service.intake.fhir_notifications import NotificationEvent, parse_notification
from service.intake.sessions import (
    classify_resource,
    contact_from_patient,
    needs_fetch,
    patient_reference,
    topic_name,
)
from support import PAYLOADS

ATHENA_TOPICS = "https://api.platform.athenahealth.com/fhir/r4/SubscriptionTopic/"
ENCOUNTER_COMPLETE = "http://example.org/FHIR/SubscriptionTopic/encounter-complete"


def load(relative: str) -> dict:
    return json.loads((PAYLOADS / relative).read_text(encoding="utf-8-sig"))


def encounter(status: str | None, **more) -> dict:
    return {"resourceType": "Encounter", "id": "e1", **({"status": status} if status else {}), **more}


def appointment(status: str, **more) -> dict:
    return {"resourceType": "Appointment", "id": "a1", "status": status, **more}


@pytest.mark.parametrize(
    ("resource", "topic", "completed", "reason"),
    [
        (encounter("finished"), None, True, "Encounter status finished"),
        (encounter("finished"), ENCOUNTER_COMPLETE, True, "Encounter status finished"),
        (encounter("in-progress"), None, False, "Encounter status in-progress: not a completed session"),
        (encounter("planned"), None, False, "Encounter status planned: not a completed session"),
        (encounter("cancelled"), None, False, "Encounter status cancelled: not a completed session"),
        (encounter("entered-in-error"), None, False, "Encounter status entered-in-error: not a completed session"),
        (encounter(None), None, False, "Encounter has no status: not a completed session"),
        (appointment("fulfilled"), None, True, "Appointment status fulfilled"),
        (appointment("booked"), None, False, "Appointment status booked: not a completed session"),
        (appointment("arrived"), None, False, "Appointment status arrived: not a completed session"),
        (appointment("checked-in"), None, False, "Appointment status checked-in: not a completed session"),
        (appointment("noshow"), None, False, "Appointment status noshow: not a completed session"),
        (appointment("cancelled"), None, False, "Appointment status cancelled: not a completed session"),
        (appointment("entered-in-error"), None, False, "Appointment status entered-in-error: not a completed session"),
        # athena topics, by name or by full canonical
        (appointment("arrived"), "Appointment.check-out", True, "topic Appointment.check-out"),
        (appointment("checked-in"), ATHENA_TOPICS + "Appointment.check-out", True, "topic Appointment.check-out"),
        (appointment("noshow"), "Appointment.check-out", False, "Appointment status noshow: not a completed session"),
        (encounter("in-progress"), ATHENA_TOPICS + "Encounter.signoff", True, "topic Encounter.signoff"),
        (encounter("cancelled"), "Encounter.signoff", False, "Encounter status cancelled: not a completed session"),
        (encounter("finished"), "Encounter.reopen", False, "topic Encounter.reopen is not a session event"),
        (encounter("arrived"), "Encounter.check-in", False, "topic Encounter.check-in is not a session event"),
        (appointment("checked-in"), "Appointment.check-in", False, "topic Appointment.check-in is not a session event"),
        (appointment("fulfilled"), ATHENA_TOPICS + "Appointment.schedule", False, "topic Appointment.schedule is not a session event"),
        ({"resourceType": "Patient", "id": "p1"}, ATHENA_TOPICS + "Patient.update", False, "topic Patient.update is not a session event"),
        ({"resourceType": "Observation", "id": "o1"}, None, False, "Observation is not a session resource"),
        ({}, None, False, "a resource without resourceType is not a session resource"),
    ],
)
def test_classification(resource, topic, completed, reason):
    signal = classify_resource(resource, topic)
    assert (signal.completed, signal.reason) == (completed, reason)


@pytest.mark.parametrize(
    ("relative", "completed", "session_id", "patient_id", "practitioner_id", "ended_at"),
    [
        ("fhir-r4/Encounter-f001.json", True, "f001", "f001", "f002", None),
        ("fhir-r4/uscore-encounter-example-1.json", True, "example-1", "example", None, "2015-11-01T18:00:14-05:00"),
        ("fhir-r4/Appointment-example.json", False, "example", "example", "example", "2013-12-10T11:00:00Z"),
    ],
)
def test_facts_from_real_resources(relative, completed, session_id, patient_id, practitioner_id, ended_at):
    signal = classify_resource(load(relative))
    assert (signal.completed, signal.session_id, signal.patient_id) == (completed, session_id, patient_id)
    ended = datetime.fromisoformat(ended_at) if ended_at else None  # parsed once, at intake
    assert (signal.practitioner_id, signal.ended_at) == (practitioner_id, ended)


def test_full_resource_notification_is_classified_from_the_bundle():
    body = (PAYLOADS / "fhir-subscriptions/legacy-0.1.0-r4b-style-notification-full-resource.json").read_bytes()
    notification = parse_notification(body)
    (event,) = notification.events
    signal = classify_resource(event.resource, notification.topic, notification.included)
    assert signal.reason == "Encounter status in-progress: not a completed session"
    assert signal.patient_id == "46db3334-dbf5-43f3-868f-93ae0883cce1"  # absolute subject reference
    assert signal.dedupe_keys == ("Encounter/551683b3-1477-41d1-b58e-32fe8b0047b0",)


@pytest.mark.parametrize(
    ("relative", "fetch"),
    [
        ("fhir-subscriptions/candle-r4-notification-id-only-encounter.json", True),
        ("vendors/athenahealth-appointment-notification-body.json", True),  # focus by identifier only
        ("fhir-subscriptions/legacy-0.1.0-r4b-style-notification-full-resource.json", False),
    ],
)
def test_needs_fetch(relative, fetch):
    (event,) = parse_notification((PAYLOADS / relative).read_bytes()).events
    assert needs_fetch(event) is fetch


def test_an_empty_payload_event_has_nothing_to_fetch():
    assert not needs_fetch(NotificationEvent(event_number="3", focus=None, resource=None))


SIGNOFF = encounter("finished", appointment=[{"reference": "https://ehr.example/fhir/Appointment/a1"}])


@pytest.mark.parametrize(
    ("resource", "included", "keys", "session_id"),
    [
        (SIGNOFF, {}, ("Encounter/e1", "Appointment/a1"), "e1"),
        ({**SIGNOFF, "appointment": {"reference": "Appointment/a1"}}, {}, ("Encounter/e1", "Appointment/a1"), "e1"),
        (encounter("finished"), {}, ("Encounter/e1",), "e1"),
        (appointment("fulfilled"), {}, ("Appointment/a1",), "a1"),
        (appointment("fulfilled"), {"Encounter/e1": SIGNOFF}, ("Encounter/e1", "Appointment/a1"), "e1"),
        (appointment("fulfilled"), {"Encounter/e2": encounter("finished", id="e2")}, ("Appointment/a1",), "a1"),
    ],
)
def test_dedupe_keys_link_an_encounter_to_its_appointment(resource, included, keys, session_id):
    signal = classify_resource(resource, None, included)
    assert (signal.dedupe_keys, signal.session_id) == (keys, session_id)


def test_athena_check_out_and_signoff_of_one_visit_share_a_key():
    check_out = classify_resource(appointment("checked-in"), ATHENA_TOPICS + "Appointment.check-out")
    signoff = classify_resource(SIGNOFF, ATHENA_TOPICS + "Encounter.signoff")
    assert check_out.completed and signoff.completed
    assert set(check_out.dedupe_keys) & set(signoff.dedupe_keys) == {"Appointment/a1"}


PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "telecom": [
        {"system": "phone", "value": "+15550000001", "use": "home"},
        {"system": "email", "value": "second@example.org", "rank": 2},
        {"system": "phone", "value": "+15550000009", "use": "mobile", "rank": 1},
        {"system": "phone", "value": "+15550000002", "use": "mobile", "rank": 2},
        {"system": "email", "value": "first@example.org", "rank": 1},
        {"system": "phone", "value": "+15550000003", "use": "old"},
    ],
    "communication": [
        {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr"}]}},
        {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-US"}]}, "preferred": True},
    ],
}


@pytest.mark.parametrize(
    ("patient", "contact"),
    [
        (PATIENT, Contact("+15550000009", "first@example.org", "es-US")),
        ({"telecom": [{"system": "phone", "value": "+15550001555", "use": "work"},
                      {"system": "sms", "value": "+15550001666"}]},
         Contact(phone="+15550001666")),
        # The preferred number cannot be texted safely (an extension): the next one is taken.
        ({"telecom": [{"system": "phone", "value": "+15550001555 ext 7", "use": "mobile"},
                      {"system": "phone", "value": "+1 555 000 1666 (home)", "use": "home"}]},
         Contact(phone="+15550001666")),
        ({"telecom": [{"system": "email", "value": " a@example.org "}]}, Contact(email="a@example.org")),
        ({"telecom": [{"system": "phone", "value": "555-0001", "use": "mobile"}]}, None),
        ({"telecom": [{"system": "fax", "value": "+1777"}], "communication": PATIENT["communication"]}, None),
        ({"telecom": [{"system": "phone", "value": "+1888", "use": "old"}]}, None),
        ({"resourceType": "Patient"}, None),
    ],
)
def test_contact_from_patient(patient, contact):
    assert contact_from_patient(patient) == contact


def test_contact_comes_from_the_included_patient_only():
    resource = encounter("finished", subject={"reference": "Patient/p1"})
    assert classify_resource(resource, None, {"Patient/p1": PATIENT}).contact.phone == "+15550000009"
    assert classify_resource(resource, None, {}).contact is None


@pytest.mark.parametrize(
    ("resource", "reference"),
    [
        (encounter("finished", subject={"reference": "Patient/p1"}), "Patient/p1"),
        (encounter("finished", subject={"reference": "Group/g1"}), None),
        (appointment("booked", participant=[{"actor": {"reference": "Practitioner/x"}},
                                            {"actor": {"reference": "https://ehr.example/fhir/Patient/p2"}}]), "Patient/p2"),
        (appointment("booked"), None),
    ],
)
def test_patient_reference(resource, reference):
    assert patient_reference(resource) == reference


@pytest.mark.parametrize(
    ("topic", "name"),
    [
        (ATHENA_TOPICS + "Encounter.signoff", "Encounter.signoff"),
        ("Appointment.check-out", "Appointment.check-out"),
        (ENCOUNTER_COMPLETE + "|1.0.0", "encounter-complete"),
        (None, None),
    ],
)
def test_topic_name(topic, name):
    assert topic_name(topic) == name


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6)
    | st.sampled_from(["Patient/p1", "Practitioner/x", "Encounter/e1", "Appointment/a1", "finished", "mobile"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["reference", "actor", "individual", "end", "system", "value", "use",
                                       "rank", "language", "coding", "code", "preferred"]), children, max_size=4),
    max_leaves=15,
)
RESOURCES = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Encounter", "Appointment", "Patient"]) | VALUES},
    optional={key: VALUES for key in ("id", "status", "subject", "participant", "appointment", "period", "end")},
)
PATIENTS = st.fixed_dictionaries({}, optional={"telecom": VALUES, "communication": VALUES})


@settings(max_examples=300, deadline=None)
@given(resource=RESOURCES, patient=PATIENTS, topic=st.none() | st.sampled_from(["Encounter.signoff", "Patient.update"]))
def test_any_resource_is_classified_without_error(resource, patient, topic):
    signal = classify_resource(resource, topic, {"Patient/p1": patient, "Encounter/e1": resource})
    assert isinstance(signal.reason, str) and all(isinstance(key, str) for key in signal.dedupe_keys)
