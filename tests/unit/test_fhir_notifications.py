"""Parsing of FHIR Subscriptions Backport notification Bundles, over the real shared payloads."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.intake.fhir_notifications import (
    NotificationError,
    parse_notification,
    parse_status_resource,
    relative_reference,
)
from support import PAYLOADS

CANDLE_SUBSCRIPTION = "Subscription/383c610b-8a8b-4173-b363-7b811509aadd"
CANDLE_TOPIC = "http://example.org/FHIR/SubscriptionTopic/encounter-complete"
ATHENA_TOPICS = "https://api.platform.athenahealth.com/fhir/r4/SubscriptionTopic/"

# file -> (kind, subscription, topic, events as (event_number, focus, carries resource, patient))
NOTIFICATIONS = {
    "fhir-subscriptions/candle-r4-notification-handshake.json": (
        "handshake", CANDLE_SUBSCRIPTION, CANDLE_TOPIC, ()),
    "fhir-subscriptions/candle-r4-notification-id-only-encounter.json": (
        "event-notification", CANDLE_SUBSCRIPTION, CANDLE_TOPIC,
        (("1", "Encounter/36e1c9d9-6878-4ef0-b1ff-9f5986e2def6", False, "Patient/example"),)),
    "fhir-subscriptions/legacy-0.1.0-r4b-style-notification-full-resource.json": (
        "event-notification", "Subscription/admission", "http://hl7.org/SubscriptionTopic/admission",
        (("2", "Encounter/551683b3-1477-41d1-b58e-32fe8b0047b0", True, None),)),
    "fhir-subscriptions/legacy-0.1.0-r4b-style-notification-heartbeat.json": (
        "heartbeat", "Subscription/admission", "http://hl7.org/SubscriptionTopic/admission", ()),
    "vendors/athenahealth-appointment-notification-body.json": (
        "event-notification", "Subscription/62865e96-3fe4-3f6f-b476-b8eb87b90892",
        ATHENA_TOPICS + "Appointment.schedule", (("1", None, False, "Patient/a-195900.E-51711"),)),
    "vendors/athenahealth-patient-notification-body.json": (
        "event-notification", "Subscription/b9f6db63-4883-41bb-9fef-97372cbd3fcd",
        ATHENA_TOPICS + "Patient.update", (("1", "Patient/a-195900.E-1", False, "Patient/a-195900.E-1"),)),
    "vendors/athenahealth-order-notification-body.json": (
        "event-notification", "Subscription/62865e96-3fe4-3f6f-b476-b8eb87b90892",
        ATHENA_TOPICS + "Order.signoff", (("1", None, False, "Patient/a-195900.E-8269"),)),
    "vendors/athenahealth-test-mock-bundle.json": (
        "event-notification", "Subscription/62865e96-3fe4-3f6f-b476-b8eb87b90892",
        "https://api.fhir.athena.io/fhir/r4/SubscriptionTopic/Appointment.create", (("1", None, False, None),)),
}

# Shared payloads that are not notifications: refused, naming why.
REFUSED = {
    "fhir-subscriptions/candle-r4-Subscription-encounter-complete.json": "not a Bundle \\(resourceType 'Subscription'\\)",
    "fhir-subscriptions/candle-r4-Basic-topic-encounter-complete.json": "not a Bundle \\(resourceType 'Basic'\\)",
    "fhir-subscriptions/uscore9-patient-data-feed-notification-parameters.json": "not a Bundle \\(resourceType 'Parameters'\\)",
    "fhir-subscriptions/uscore9-patient-data-feed-subscription-request.jsonc": "not JSON: ",
    **{f"vendors/{p.name}": "not a Bundle \\(resourceType None\\)" for p in PAYLOADS.glob("vendors/healthie-*.json")},
    "vendors/canvas-emit-fixture-ENCOUNTER_UPDATED.ndjson": "not JSON: Extra data",
    **{f"vendors/{p.name}": "not a Bundle" for p in PAYLOADS.glob("vendors/canvas-*.ndjson")
       if "ENCOUNTER_UPDATED" not in p.name},
}


def read(relative: str) -> bytes:
    return (PAYLOADS / relative).read_bytes()


def as_body(document: dict) -> bytes:
    return json.dumps(document).encode()


def test_every_shared_notification_payload_is_in_a_table():
    shared = {f"fhir-subscriptions/{p.name}" for p in PAYLOADS.glob("fhir-subscriptions/*.json*")}
    shared |= {f"vendors/{p.name}" for p in PAYLOADS.glob("vendors/*") if p.suffix != ".md"}
    shared -= {"vendors/athenahealth-x-hub-signature-vectors.json"}
    assert shared == set(NOTIFICATIONS) | set(REFUSED)


@pytest.mark.parametrize("relative", sorted(NOTIFICATIONS))
def test_real_notifications_parse(relative):
    kind, subscription, topic, events = NOTIFICATIONS[relative]
    notification = parse_notification(read(relative))
    assert (notification.kind, notification.subscription, notification.topic) == (kind, subscription, topic)
    assert [(e.event_number, e.focus, e.resource is not None, e.patient) for e in notification.events] == list(events)


@pytest.mark.parametrize("relative", sorted(REFUSED))
def test_shared_payloads_that_are_not_notifications_are_refused_by_name(relative):
    with pytest.raises(NotificationError, match=REFUSED[relative]):
        parse_notification(read(relative))


def test_full_resource_event_carries_the_focus_and_the_bundle_is_indexed_by_type_and_id():
    notification = parse_notification(read("fhir-subscriptions/legacy-0.1.0-r4b-style-notification-full-resource.json"))
    (event,) = notification.events
    assert event.resource["status"] == "in-progress"
    assert notification.included == {event.focus: event.resource}


def test_athena_event_keeps_its_id_identifier_and_audit_event():
    notification = parse_notification(read("vendors/athenahealth-appointment-notification-body.json"))
    (event,) = notification.events
    assert event.event_id == "0901fb5b-6858-33f2-994f-6680c0c6aadb"
    assert event.timestamp == "2023-04-14T09:22:56Z"
    assert event.focus_identifier == ("urn:athenahealth:athenanet:appointment:195900", "2")
    assert set(notification.included) == {"AuditEvent/0901fb5b-6858-33f2-994f-6680c0c6aadb"}


def test_us_core_patient_data_feed_parameters_inside_a_notification_bundle():
    parameters = json.loads(read("fhir-subscriptions/uscore9-patient-data-feed-notification-parameters.json"))
    bundle = {"resourceType": "Bundle", "type": "history", "entry": [{"resource": parameters}]}
    for notification in (parse_notification(as_body(bundle)), parse_status_resource(parameters)):
        assert notification.kind == "event-notification"
        assert notification.subscription == "Subscription/example"
        assert notification.topic == "http://hl7.org/fhir/us/core/SubscriptionTopic/patient-data-feed"
        (event,) = notification.events
        assert (event.event_number, event.focus, event.timestamp) == ("5", "Observation/lab-result-123", "2023-09-05T14:30:00Z")


def test_utf8_bom_is_accepted():
    notification = parse_notification(b"\xef\xbb\xbf" + read("fhir-subscriptions/candle-r4-notification-handshake.json"))
    assert notification.kind == "handshake"


def _id_only_with_focus(focus_part: dict) -> dict:
    bundle = json.loads(read("fhir-subscriptions/candle-r4-notification-id-only-encounter.json"))
    event = bundle["entry"][0]["resource"]["parameter"][-1]
    event["part"] = [p if p["name"] != "focus" else {"name": "focus", **focus_part} for p in event["part"]]
    return bundle


@pytest.mark.parametrize(
    "focus_part",
    [
        {"valueString": "https://ehr.example/fhir/Encounter/e1"},
        {"valueReference": {"reference": "Encounter/e1/_history/3"}},
        {"valueUri": "Encounter/e1"},
    ],
)
def test_focus_given_in_any_reference_form_becomes_relative(focus_part):
    (event,) = parse_notification(as_body(_id_only_with_focus(focus_part))).events
    assert event.focus == "Encounter/e1"


def test_urn_focus_resolves_through_full_url_and_entry_without_request_is_read():
    bundle = _id_only_with_focus({"valueReference": {"reference": "urn:uuid:1b2c"}})
    bundle["entry"] += [
        {"fullUrl": "urn:uuid:1b2c", "resource": {"resourceType": "Encounter", "id": "e1", "status": "finished"}},
        {"fullUrl": "Patient/p1", "resource": {"resourceType": "Patient"}},  # relative fullUrl, no id
        {"fullUrl": "https://ehr.example/fhir/Practitioner/x"},  # id-only extra entry: no resource
    ]
    notification = parse_notification(as_body(bundle))
    (event,) = notification.events
    assert (event.focus, event.resource["status"]) == ("Encounter/e1", "finished")
    assert set(notification.included) == {"Encounter/e1", "Patient/p1"}


def _bundle(*entries) -> bytes:
    return as_body({"resourceType": "Bundle", "type": "history", "entry": list(entries)})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON: "),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[]", "not a Bundle"),
        (as_body({"resourceType": "Bundle"}), "Bundle has no entry"),
        (_bundle(), "Bundle has no entry"),
        (_bundle({"fullUrl": "urn:uuid:1"}), "entry\\[0\\] is not a Parameters or SubscriptionStatus resource \\(found None\\)"),
        (_bundle({"resource": {"resourceType": "AuditEvent"}}), "entry\\[0\\] is not a Parameters or SubscriptionStatus resource"),
        (_bundle({"resource": {"resourceType": "SubscriptionStatus", "type": "ping"}}), "notification type 'ping'"),
        (_bundle({"resource": {"resourceType": "Parameters", "parameter": []}}), "notification type None"),
    ],
)
def test_bodies_that_cannot_be_notifications_are_refused(body, message):
    with pytest.raises(NotificationError, match=message):
        parse_notification(body)


@pytest.mark.parametrize(
    ("reference", "relative"),
    [
        ("Encounter/e1", "Encounter/e1"),
        ("https://ehr.example/fhir/r4/Encounter/e1", "Encounter/e1"),
        ("Encounter/e1/_history/2", "Encounter/e1"),
        ("urn:uuid:0b1c", None),
        ("#contained", None),
        ("", None),
        (None, None),
    ],
)
def test_relative_reference(reference, relative):
    assert relative_reference(reference) == relative


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    | st.sampled_from(["Encounter/e1", "urn:uuid:1", "https://x/fhir/Patient/p"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["reference", "identifier", "value", "system", "id"]), children, max_size=3),
    max_leaves=12,
)
PARTS = st.fixed_dictionaries(
    {"name": st.sampled_from(["event-number", "focus", "additional-context", "timestamp"]) | JSON_VALUES},
    optional={"valueString": JSON_VALUES, "valueReference": JSON_VALUES, "valueInteger": JSON_VALUES},
)
PARAMETERS = st.fixed_dictionaries(
    {"name": st.sampled_from(["subscription", "topic", "type", "notification-event"]) | JSON_VALUES},
    optional={"valueCode": st.sampled_from(["handshake", "event-notification"]) | JSON_VALUES,
              "valueReference": JSON_VALUES, "part": st.lists(PARTS, max_size=4) | JSON_VALUES},
)
STATUS_RESOURCES = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Parameters", "SubscriptionStatus"])},
    optional={"type": st.sampled_from(["heartbeat", "event-notification"]) | JSON_VALUES,
              "parameter": st.lists(PARAMETERS, max_size=5) | JSON_VALUES,
              "notificationEvent": st.lists(JSON_VALUES, max_size=3) | JSON_VALUES,
              "subscription": JSON_VALUES, "topic": JSON_VALUES},
)
ENTRIES = st.lists(st.fixed_dictionaries({}, optional={"fullUrl": JSON_VALUES, "resource": JSON_VALUES}), max_size=3)


@settings(max_examples=300, deadline=None)
@given(status=STATUS_RESOURCES, others=ENTRIES | JSON_VALUES)
def test_any_status_resource_either_parses_or_is_refused_by_name(status, others):
    entries = [{"resource": status}, *(others if isinstance(others, list) else [others])]
    try:
        parse_notification(as_body({"resourceType": "Bundle", "entry": entries}))
    except NotificationError:
        pass
