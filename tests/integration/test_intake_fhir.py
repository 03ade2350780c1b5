"""FHIR Subscription notifications over HTTP (CONTRACT §3.2), on SQLite and PostgreSQL: the real
payloads, both ways of authenticating, full-resource and id-only, athena's two topics for one
visit, and dedupe across the native and the FHIR route."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json

import pytest
from sqlalchemy import func, select

from integrations.ehr.errors import EhrPermanentError, EhrTransientError
from service import practices
from service.demo import session_completed, signed_event
from service.persistence.tables import outbox, session_keys, surveys, webhook_events
from service.web import create_app
from service.web.webhooks import SIGNATURE_CLOCK
from support import DEMO_SECRET, PAYLOADS, practice_document

URL = "/webhooks/northside/fhir"
TOKEN = "channel-token-0123456789"  # the fixture practice's fhir_notifications.channel_token
HUB = json.loads((PAYLOADS / "vendors" / "athenahealth-x-hub-signature-vectors.json").read_text())
ATHENA_TOPIC = "https://api.platform.athenahealth.com/fhir/r4/SubscriptionTopic/"
CANDLE_ENCOUNTER = "36e1c9d9-6878-4ef0-b1ff-9f5986e2def6"
LEGACY_ENCOUNTER = "551683b3-1477-41d1-b58e-32fe8b0047b0"
LEGACY_PATIENT = "46db3334-dbf5-43f3-868f-93ae0883cce1"
PHONE = "+15551234567"


@pytest.fixture
def client(services, practice, clock):
    app = create_app(services=services)
    app.config[SIGNATURE_CLOCK] = clock
    return app.test_client()


@pytest.fixture
def athena(services):
    """The practice keyed with athena's published hub secret, so its vectors verify."""
    document = practices.validate_document(practice_document(
        fhir_notifications={"channel_token": TOKEN, "hub_secret": HUB["secret"]}))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def post(client, body: bytes, *, token: str | None = TOKEN, hub: str | None = None, url: str = URL,
         content_type: str = "application/fhir+json"):
    headers = {"content-type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if hub:
        headers["X-Hub-Signature"] = hub
    return client.post(url, data=body, headers=headers)


def hub_signature(body: bytes, secret: str = HUB["secret"]) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def count(services, table) -> int:
    with services.engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def events(services) -> list[dict]:
    with services.engine.begin() as conn:
        return [dict(row) for row in conn.execute(
            select(webhook_events.c.outcome, webhook_events.c.reason, webhook_events.c.session_id)
            .order_by(webhook_events.c.received_at, webhook_events.c.delivery_id)).mappings()]


def seed(fake_ehr, *resources: dict) -> None:
    for resource in resources:
        fake_ehr.update(copy.deepcopy(resource), None)
    fake_ehr.calls.clear()  # tests count the service's own calls


def patient(patient_id: str, phone: str = PHONE) -> dict:
    return {"resourceType": "Patient", "id": patient_id,
            "telecom": [{"system": "phone", "use": "mobile", "value": phone}]}


def encounter(encounter_id: str, status: str = "finished", patient_id: str = "pat-17", **extra) -> dict:
    return {"resourceType": "Encounter", "id": encounter_id, "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{patient_id}"},
            "period": {"start": "2026-11-26T14:00:00Z", "end": "2026-11-26T14:50:00Z"}, **extra}


def full_resource_bundle(resource: dict) -> bytes:
    """The legacy (athena-shaped) full-resource notification, carrying `resource` as its focus."""
    bundle = json.loads(payload("fhir-subscriptions/legacy-0.1.0-r4b-style-notification-full-resource.json"))
    reference = f"https://example.org/fhir/r4/{resource['resourceType']}/{resource['id']}"
    bundle["entry"][0]["resource"]["notificationEvent"][0]["focus"] = {"reference": reference}
    bundle["entry"][0]["resource"]["notificationEvent"][0]["eventNumber"] = resource["id"]
    bundle["entry"][1] = {"fullUrl": reference, "resource": resource}
    return json.dumps(bundle).encode()


def athena_bundle(topic: str, event_id: str, focus_system: str, focus_value: str) -> bytes:
    """athena's appointment notification re-addressed to another topic and focus identifier."""
    bundle = json.loads(payload("vendors/athenahealth-appointment-notification-body.json"))
    status = bundle["entry"][0]["resource"]
    status["topic"] = ATHENA_TOPIC + topic
    status["notificationEvent"][0]["id"] = event_id
    status["notificationEvent"][0]["focus"] = {"identifier": {"system": focus_system, "value": focus_value}}
    return json.dumps(bundle).encode()


# --- every real payload, as the EHR would send it ---------------------------------------------

# file -> (HTTP status, stored events, outcome of each after the jobs ran, words in the reason)
REAL_PAYLOADS = {
    "fhir-subscriptions/candle-r4-notification-handshake.json": (200, 0, None, None),
    "fhir-subscriptions/legacy-0.1.0-r4b-style-notification-heartbeat.json": (200, 0, None, None),
    "fhir-subscriptions/candle-r4-notification-id-only-encounter.json": (202, 1, "ignored", "not found"),
    "fhir-subscriptions/legacy-0.1.0-r4b-style-notification-full-resource.json": (202, 1, "ignored", "in-progress"),
    "fhir-subscriptions/candle-r4-Subscription-encounter-complete.json": (422, 0, None, None),
    "fhir-subscriptions/candle-r4-Basic-topic-encounter-complete.json": (422, 0, None, None),
    "fhir-subscriptions/uscore9-patient-data-feed-notification-parameters.json": (422, 0, None, None),
    "fhir-subscriptions/uscore9-patient-data-feed-subscription-request.jsonc": (400, 0, None, None),
    "vendors/athenahealth-appointment-notification-body.json": (202, 1, "ignored", "Appointment.schedule"),
    "vendors/athenahealth-patient-notification-body.json": (202, 1, "ignored", "Patient.update"),
    "vendors/athenahealth-order-notification-body.json": (202, 1, "ignored", "Order.signoff"),
    "vendors/athenahealth-test-mock-bundle.json": (202, 1, "ignored", "Appointment.create"),
}


def test_every_shared_notification_payload_is_covered():
    shipped = {f"fhir-subscriptions/{p.name}" for p in PAYLOADS.glob("fhir-subscriptions/*.json*")}
    shipped |= {f"vendors/{p.name}" for p in PAYLOADS.glob("vendors/athenahealth-*.json")
                if "signature-vectors" not in p.name}
    assert shipped == set(REAL_PAYLOADS)


@pytest.mark.parametrize("name", sorted(REAL_PAYLOADS))
def test_real_payloads_over_http(client, services, run_due, name):
    status, stored, outcome, words = REAL_PAYLOADS[name]
    answer = post(client, payload(name))
    assert answer.status_code == status, answer.get_json()
    if status >= 400:
        assert answer.mimetype == "application/problem+json"
        assert answer.get_json()["detail"]
    run_due()
    assert count(services, webhook_events) == stored
    assert count(services, surveys) == 0
    if outcome:
        [event] = events(services)
        assert event["outcome"] == outcome and words in event["reason"]


@pytest.mark.parametrize("name", ["candle-r4-notification-handshake.json",
                                  "legacy-0.1.0-r4b-style-notification-heartbeat.json"])
def test_handshake_and_heartbeat_are_answered_without_side_effects(client, services, name):
    answer = post(client, payload(f"fhir-subscriptions/{name}"))
    assert answer.status_code == 200
    assert answer.get_json()["kind"] in ("handshake", "heartbeat")
    assert [count(services, t) for t in (webhook_events, outbox, session_keys)] == [0, 0, 0]


@pytest.mark.parametrize("vector", HUB["vectors"], ids=[v["body_file"] for v in HUB["vectors"]])
def test_athena_x_hub_signature_vectors_authenticate(client, services, athena, vector):
    body = payload(f"vendors/{vector['body_file']}")
    assert hashlib.sha256(body).hexdigest() == vector["body_sha256"]  # the exact bytes athena signed
    answer = post(client, body, token=None, hub=vector["X-Hub-Signature"], content_type="application/json")
    assert answer.status_code == 202, answer.get_json()
    assert count(services, webhook_events) == 1


def test_a_bom_before_the_bundle_is_tolerated(client, fake_ehr, services, run_due):
    seed(fake_ehr, encounter(CANDLE_ENCOUNTER, patient_id="example"), patient("example"))
    body = b"\xef\xbb\xbf" + payload("fhir-subscriptions/candle-r4-notification-id-only-encounter.json")
    assert post(client, body).status_code == 202
    run_due()
    assert count(services, surveys) == 1


# --- who may send --------------------------------------------------------------------------

ATHENA_VECTOR = HUB["vectors"][0]


@pytest.mark.parametrize("token, hub, content_type, url, status", [
    (None, None, "application/fhir+json", URL, 401),
    ("wrong-token-0123456789", None, "application/fhir+json", URL, 401),
    (TOKEN + "x", None, "application/fhir+json", URL, 401),
    (None, ATHENA_VECTOR["X-Hub-Signature"][:-1] + "0", "application/json", URL, 401),
    (None, "sha1=" + "0" * 40, "application/json", URL, 401),
    (None, ATHENA_VECTOR["X-Hub-Signature"], "application/json", "/webhooks/nowhere/fhir", 401),
    (None, ATHENA_VECTOR["X-Hub-Signature"], "text/plain", URL, 415),
], ids=["no-auth", "wrong-token", "token-prefix", "tampered-hub", "sha1-hub", "unknown-practice",
        "text-plain"])
def test_refused_notifications_store_nothing(client, services, athena, token, hub, content_type, url, status):
    body = payload(f"vendors/{ATHENA_VECTOR['body_file']}")
    answer = post(client, body, token=token, hub=hub, content_type=content_type, url=url)
    assert answer.status_code == status
    assert answer.mimetype == "application/problem+json"
    assert [count(services, t) for t in (webhook_events, outbox, session_keys)] == [0, 0, 0]


def test_a_body_over_256_kib_is_refused(client, services):
    answer = post(client, b" " * (256 * 1024 + 1))
    assert answer.status_code == 413 and "256 KiB" in answer.get_json()["detail"]
    assert count(services, webhook_events) == 0


def test_a_practice_without_notification_settings_refuses_every_sender(client, services):
    document = practices.validate_document(practice_document(id="plain", fhir_notifications=None))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())
    body = payload("fhir-subscriptions/candle-r4-notification-handshake.json")
    assert post(client, body, url="/webhooks/plain/fhir").status_code == 401


# --- full-resource and id-only lead to exactly one survey --------------------------------------


def test_full_resource_finished_encounter_sends_one_survey(client, services, fake_ehr, channels, run_due):
    seed(fake_ehr, patient(LEGACY_PATIENT))
    body = full_resource_bundle(encounter(LEGACY_ENCOUNTER, patient_id=LEGACY_PATIENT))
    first = post(client, body)
    assert first.status_code == 202 and first.get_json()["duplicate"] is False
    again = post(client, body)
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    run_due()
    assert _surveys(services) == [LEGACY_ENCOUNTER]
    assert [message.to for message in channels["sms"].sent] == [PHONE]
    assert ("read", "Patient") in fake_ehr.calls and ("read", "Encounter") not in fake_ehr.calls


def test_ids_that_cannot_be_stored_are_recorded_as_ignored(client, services, run_due):
    answer = post(client, full_resource_bundle(encounter("enc\u00001", patient_id="p" * 201)))
    assert answer.status_code == 202
    assert "control characters" in answer.get_json()["events"][0]["ignored"]
    run_due()
    assert count(services, surveys) == 0


def test_parameters_flavour_full_resource_with_the_patient_in_the_bundle(client, services, fake_ehr,
                                                                          channels, run_due):
    bundle = json.loads(payload("fhir-subscriptions/candle-r4-notification-id-only-encounter.json"))
    base = "https://subscriptions.argo.run/fhir/r4/"
    bundle["entry"] += [
        {"fullUrl": base + f"Encounter/{CANDLE_ENCOUNTER}", "resource": encounter(CANDLE_ENCOUNTER, patient_id="example")},
        {"fullUrl": base + "Patient/example", "resource": patient("example", "+15557654321")},
    ]
    assert post(client, json.dumps(bundle).encode()).status_code == 202
    run_due()
    assert _surveys(services) == [CANDLE_ENCOUNTER]
    assert [message.to for message in channels["sms"].sent] == ["+15557654321"]
    assert fake_ehr.calls == []  # everything it needed was in the notification


def test_id_only_reads_the_focus_then_the_patient_from_the_ehr(client, services, fake_ehr, channels, run_due):
    seed(fake_ehr, encounter(CANDLE_ENCOUNTER, patient_id="example"), patient("example"))
    answer = post(client, payload("fhir-subscriptions/candle-r4-notification-id-only-encounter.json"))
    assert answer.status_code == 202
    assert fake_ehr.calls == []  # nothing but the database on the request path
    run_due()
    assert fake_ehr.calls == [("read", "Encounter"), ("read", "Patient")]
    assert _surveys(services) == [CANDLE_ENCOUNTER]
    assert [message.to for message in channels["sms"].sent] == [PHONE]
    [event] = events(services)
    assert event == {"outcome": "survey-scheduled", "reason": None, "session_id": CANDLE_ENCOUNTER}


def test_id_only_waits_out_an_ehr_outage(client, services, fake_ehr, clock, run_due):
    seed(fake_ehr, encounter(CANDLE_ENCOUNTER, patient_id="example"), patient("example"))
    fake_ehr.fail_next(1, EhrTransientError("down", retry_after=30), operation="read", resource_type="Encounter")
    post(client, payload("fhir-subscriptions/candle-r4-notification-id-only-encounter.json"))
    assert run_due() == [("event.process", "retry")]
    clock.advance(seconds=31)
    run_due()
    assert _surveys(services) == [CANDLE_ENCOUNTER]


def test_id_only_refused_by_the_ehr_is_dead_lettered_and_logged_as_failed(client, services, fake_ehr, run_due):
    fake_ehr.fail_next(1, EhrPermanentError("forbidden", 403), operation="read", resource_type="Encounter")
    post(client, payload("fhir-subscriptions/candle-r4-notification-id-only-encounter.json"))
    assert run_due() == [("event.process", "dead")]
    [event] = events(services)
    assert event["outcome"] == "failed" and "refused" in event["reason"]
    assert count(services, surveys) == 0


def test_id_only_focus_that_is_not_finished_in_the_ehr_is_ignored(client, services, fake_ehr, run_due):
    seed(fake_ehr, encounter(CANDLE_ENCOUNTER, status="in-progress", patient_id="example"), patient("example"))
    post(client, payload("fhir-subscriptions/candle-r4-notification-id-only-encounter.json"))
    run_due()
    assert count(services, surveys) == 0
    [event] = events(services)
    assert event["outcome"] == "ignored" and "in-progress" in event["reason"]


# --- athena: Appointment.check-out and Encounter.signoff describe one visit ---------------------

APPOINTMENT_SYSTEM = "urn:athenahealth:athenanet:appointment:195900"
ENCOUNTER_SYSTEM = "urn:athenahealth:athenanet:encounter:195900"
ATHENA_PATIENT = "a-195900.E-51711"
VISIT = [
    {"resourceType": "Appointment", "id": "a-195900.appt-2", "status": "checked-in",
     "identifier": [{"system": APPOINTMENT_SYSTEM, "value": "2"}],
     "participant": [{"actor": {"reference": f"Patient/{ATHENA_PATIENT}"}, "status": "accepted"}]},
    encounter("a-195900.enc-9", status="in-progress", patient_id=ATHENA_PATIENT,
              identifier=[{"system": ENCOUNTER_SYSTEM, "value": "9"}],
              appointment=[{"reference": "Appointment/a-195900.appt-2"}]),
    patient(ATHENA_PATIENT),
]
CHECK_OUT = athena_bundle("Appointment.check-out", "evt-checkout", APPOINTMENT_SYSTEM, "2")
SIGN_OFF = athena_bundle("Encounter.signoff", "evt-signoff", ENCOUNTER_SYSTEM, "9")


@pytest.mark.parametrize("order", [(CHECK_OUT, SIGN_OFF), (SIGN_OFF, CHECK_OUT)], ids=["checkout-first", "signoff-first"])
def test_check_out_and_signoff_of_one_visit_send_one_survey(client, services, athena, fake_ehr, channels,
                                                            run_due, order):
    seed(fake_ehr, *VISIT)
    for body in order:
        answer = post(client, body, token=None, hub=hub_signature(body), content_type="application/json")
        assert answer.status_code == 202, answer.get_json()
        run_due()
    assert count(services, surveys) == 1
    assert len(channels["sms"].sent) == 1
    assert sorted(e["outcome"] for e in events(services)) == ["duplicate-session", "survey-scheduled"]
    assert ("search", "Appointment") in fake_ehr.calls and ("search", "Encounter") in fake_ehr.calls


def test_both_athena_topics_in_flight_at_once_still_send_one_survey(client, services, athena, fake_ehr, run_due):
    seed(fake_ehr, *VISIT)
    for body in (CHECK_OUT, SIGN_OFF):
        assert post(client, body, token=None, hub=hub_signature(body), content_type="application/json").status_code == 202
    run_due()
    assert count(services, surveys) == 1


# --- visits that did not happen --------------------------------------------------------------


@pytest.mark.parametrize("resource", [
    {"resourceType": "Appointment", "id": "appt-5", "status": "cancelled",
     "participant": [{"actor": {"reference": "Patient/pat-17"}}]},
    {"resourceType": "Appointment", "id": "appt-5", "status": "noshow",
     "participant": [{"actor": {"reference": "Patient/pat-17"}}]},
    encounter("appt-5", status="cancelled"),
], ids=["appointment-cancelled", "appointment-noshow", "encounter-cancelled"])
def test_cancelled_and_noshow_are_recorded_without_survey(client, services, fake_ehr, run_due, resource):
    seed(fake_ehr, patient("pat-17"))
    answer = post(client, full_resource_bundle(resource))
    assert answer.status_code == 202
    assert resource["status"] in answer.get_json()["events"][0]["ignored"]
    run_due()
    assert count(services, surveys) == 0
    assert count(services, session_keys) == 0  # the session is not used up


def test_noshow_then_fulfilled_appointment_still_sends_its_survey(client, services, fake_ehr, run_due):
    seed(fake_ehr, patient("pat-17"))
    visit = {"resourceType": "Appointment", "id": "appt-6", "status": "noshow",
             "participant": [{"actor": {"reference": "Patient/pat-17"}}]}
    post(client, full_resource_bundle(visit))
    visit = {**visit, "status": "fulfilled", "id": "appt-6"}
    bundle = json.loads(full_resource_bundle(visit))
    bundle["entry"][0]["resource"]["notificationEvent"][0]["eventNumber"] = "7"  # a later event
    assert post(client, json.dumps(bundle).encode()).status_code == 202
    run_due()
    assert _surveys(services) == ["appt-6"]


# --- one survey per session across both routes -------------------------------------------------


def post_native(client, clock, session_id: str, msg_id: str):
    body, headers = signed_event(DEMO_SECRET, session_completed(session_id, "pat-17", phone=PHONE),
                                 msg_id=msg_id, when=clock.now)
    return client.post("/webhooks/northside/events", data=body, headers=headers)


@pytest.mark.parametrize("native_first", [True, False], ids=["native-first", "fhir-first"])
def test_native_event_and_fhir_notification_for_one_session_send_one_survey(
        client, services, fake_ehr, clock, channels, run_due, native_first):
    seed(fake_ehr, patient("pat-17"))
    fhir = lambda: post(client, full_resource_bundle(encounter("enc-1001")))  # noqa: E731
    native = lambda: post_native(client, clock, "enc-1001", "msg_1")  # noqa: E731
    first, second = (native, fhir) if native_first else (fhir, native)
    assert first().status_code == 202
    duplicate = second()
    assert duplicate.status_code == 200 and duplicate.get_json()["duplicate"] is True
    run_due()
    assert _surveys(services) == ["enc-1001"]
    assert len(channels["sms"].sent) == 1


def test_native_event_and_a_later_id_only_notification_send_one_survey(client, services, fake_ehr, clock,
                                                                        run_due):
    seed(fake_ehr, encounter(CANDLE_ENCOUNTER, patient_id="example"), patient("example"))
    assert post_native(client, clock, CANDLE_ENCOUNTER, "msg_1").status_code == 202
    assert post(client, payload("fhir-subscriptions/candle-r4-notification-id-only-encounter.json")).status_code == 202
    run_due()
    assert _surveys(services) == [CANDLE_ENCOUNTER]
    assert sorted(e["outcome"] for e in events(services)) == ["duplicate-session", "survey-scheduled"]


def _surveys(services) -> list[str]:
    with services.engine.begin() as conn:
        return conn.execute(select(surveys.c.session_id)).scalars().all()
