"""Native signed events over HTTP (CONTRACT §3.1), on SQLite and PostgreSQL: every refusal,
secret rotation, isolation between practices, the Standard Webhooks vectors, duplicates."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from service import practices
from service.bootstrap import PRACTICE_CACHE_SECONDS, bootstrap
from service.demo import session_completed, signed_event
from service.persistence.tables import outbox, session_keys, surveys, webhook_events
from service.web import create_app
from service.web.webhooks import SIGNATURE_CLOCK
from support import DEMO_SECRET, PAYLOADS, practice_document

VECTORS = json.loads((PAYLOADS / "standard-webhooks" / "test-vectors.json").read_text())
NEW_SECRET = "whsec_" + base64.b64encode(b"rotated-secret-of-32-bytes-long!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"southside-secret-32-bytes-long!!").decode()
URL = "/webhooks/northside/events"


@pytest.fixture
def client(services, practice, clock):
    # Signatures are checked against the test's clock, so a test can sign "at" any moment.
    app = create_app(services=services)
    app.config[SIGNATURE_CLOCK] = clock
    return app.test_client()


def store_practice(services, **overrides) -> None:
    document = practices.validate_document(practice_document(**overrides))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())


def rows(services) -> dict[str, int]:
    with services.engine.begin() as conn:
        return {table.name: conn.execute(select(func.count()).select_from(table)).scalar()
                for table in (webhook_events, outbox, session_keys, surveys)}


def post(client, clock, event=None, *, secret=DEMO_SECRET, msg_id=None, url=URL, when=None):
    event = event if event is not None else session_completed("enc-1001", "pat-17", phone="+15551234567")
    body, headers = signed_event(secret, event, msg_id=msg_id, when=when or clock.now)
    return client.post(url, data=body, headers=headers)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def raw_request(clock, body: bytes, *, secret=DEMO_SECRET, msg_id="msg_raw", **header_overrides):
    timestamp = int(clock.now.timestamp())
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(secret, msg_id, timestamp, body),
               "content-type": "application/json"}
    headers.update(header_overrides)
    return body, {name: value for name, value in headers.items() if value is not None}


def valid_body() -> bytes:
    return json.dumps(session_completed("enc-1", "pat-1", phone="+15551234567")).encode()


def event_with(**data_changes) -> bytes:
    event = session_completed("enc-1", "pat-1", phone="+15551234567")
    event["data"].update(data_changes)
    return json.dumps(event).encode()


def refusal(body: bytes | None = None, **header_overrides):
    """A request builder: a valid signed event with some headers or the body changed."""
    def build(clock):
        payload = valid_body() if body is None else body
        built, headers = raw_request(clock, payload)
        headers.update({k.replace("_", "-"): v for k, v in header_overrides.items() if v is not None})
        for name in [k.replace("_", "-") for k, v in header_overrides.items() if v is None]:
            headers.pop(name, None)
        return built, headers
    return build


def resigned(body: bytes, **headers):
    """A body that is correctly signed: only its content is wrong."""
    def build(clock):
        return raw_request(clock, body, **headers)
    return build


def signed_at(offset_seconds: int):
    def build(clock):
        body = valid_body()
        timestamp = int(clock.now.timestamp()) + offset_seconds
        return body, {"webhook-id": "msg_t", "webhook-timestamp": str(timestamp),
                      "webhook-signature": sign(DEMO_SECRET, "msg_t", timestamp, body),
                      "content-type": "application/json"}
    return build


REFUSALS = [
    # (name, request builder, status, words the detail must contain)
    ("body not JSON", resigned(b"{not json"), 400, "not JSON"),
    ("body not UTF-8", resigned(b'{"type": "\xff"}'), 400, "not JSON"),
    ("webhook-id too long", resigned(valid_body(), msg_id="m" * 201), 400, "longer than 200"),
    ("no webhook-id", refusal(webhook_id=None), 401, "missing header(s): webhook-id"),
    ("no webhook-timestamp", refusal(webhook_timestamp=None), 401, "missing header(s): webhook-timestamp"),
    ("no webhook-signature", refusal(webhook_signature=None), 401, "missing header(s): webhook-signature"),
    ("wrong signature", refusal(webhook_signature="v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="),
     401, "no webhook-signature matches"),
    ("signature without version", refusal(webhook_signature="g0hM9SsE+OTPJTGt"), 401, "'v1,<base64>'"),
    ("signature not base64", refusal(webhook_signature="v1,***"), 401, "'v1,<base64>'"),
    ("only a v2 signature", refusal(webhook_signature="v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
     401, "'v1,<base64>'"),
    ("timestamp not a number", refusal(webhook_timestamp="hello"), 401, "not a Unix time"),
    ("timestamp in milliseconds", refusal(webhook_timestamp="1796310000000"), 401, "not a Unix time"),
    ("timestamp 5 min 1 s old", signed_at(-301), 401, "301 s in the past"),
    ("timestamp 5 min 1 s ahead", signed_at(301), 401, "301 s in the future"),
    ("another practice's secret", resigned(valid_body(), secret=OTHER_SECRET), 401, "no webhook-signature matches"),
    ("body over 256 KiB", resigned(b" " * (256 * 1024 + 1)), 413, "256 KiB"),
    ("text/plain", refusal(content_type="text/plain"), 415, "application/json, not text/plain"),
    ("no content type", refusal(content_type=None), 415, "application/json"),
    ("form-encoded", refusal(content_type="application/x-www-form-urlencoded"), 415, "application/json"),
    ("a JSON array", resigned(b"[]"), 422, "must be a JSON object"),
    ("no type", resigned(b'{"data": {}}'), 422, "type: Missing data"),
    ("no data", resigned(b'{"type": "session.completed"}'), 422, "data: Missing data"),
    ("no session_id", resigned(event_with(session_id=None)), 422, "data.session_id"),
    ("empty patient_id", resigned(event_with(patient_id="")), 422, "data.patient_id"),
    ("phone not E.164", resigned(event_with(contact={"phone": "555-1234"})), 422, "data.contact.phone"),
    ("ended_at not a time", resigned(event_with(ended_at="yesterday")), 422, "data.ended_at"),
    ("NUL in session_id", resigned(event_with(session_id="enc\u00001")), 422, "data.session_id: must not contain control"),
    ("newline in status", resigned(event_with(status="no\nshow")), 422, "data.status"),
    ("NUL in type", resigned(b'{"type": "x\\u0000", "data": {}}'), 422, "type: must not contain control"),
]


@pytest.mark.parametrize("name, build, status, needle", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_are_problems_naming_what_is_wrong_and_store_nothing(client, services, clock, name,
                                                                        build, status, needle):
    body, headers = build(clock)
    answer = client.post(URL, data=body, headers=headers)
    assert answer.status_code == status, answer.get_json()
    assert answer.mimetype == "application/problem+json"
    problem = answer.get_json()
    assert problem["status"] == status and problem["title"]
    assert problem["type"].startswith("https://")
    assert needle in problem["detail"]
    assert rows(services) == {"webhook_events": 0, "outbox": 0, "session_keys": 0, "surveys": 0}


def test_invalid_fields_are_listed_one_by_one(client, clock):
    body = event_with(patient_id=None, contact={"phone": "555", "email": "not-an-address"})
    answer = client.post(URL, data=body, headers=raw_request(clock, body)[1])
    assert answer.status_code == 422
    assert {"data.patient_id", "data.contact.phone", "data.contact.email"} <= set(answer.get_json()["errors"])


@pytest.mark.parametrize("practice_id", ["nowhere", "a%00b", "x" * 300, "North%20Side"])
def test_unknown_practice_is_refused_as_a_bad_signature_and_stores_nothing(client, services, clock,
                                                                          practice_id):
    # Issue 12: the same answer as a known practice's wrong signature, so nothing is enumerable.
    answer = post(client, clock, url=f"/webhooks/{practice_id}/events")
    assert answer.status_code == 401 and answer.mimetype == "application/problem+json"
    assert answer.get_json() == post(client, clock, secret=NEW_SECRET).get_json()
    assert rows(services)["webhook_events"] == 0


@pytest.mark.parametrize("offset", [-299, 0, 299])
def test_timestamps_inside_the_tolerance_are_accepted(client, clock, offset):
    body, headers = signed_at(offset)(clock)
    assert client.post(URL, data=body, headers=headers).status_code == 202


def test_rotation_second_secret_works_and_a_retired_one_stops(client, services, clock):
    store_practice(services, webhook_secrets=[DEMO_SECRET, NEW_SECRET])
    assert post(client, clock, secret=NEW_SECRET).status_code == 202
    assert post(client, clock, secret=DEMO_SECRET, event=session_completed("enc-2", "pat-1")).status_code == 202
    store_practice(services, webhook_secrets=[NEW_SECRET])
    clock.advance(seconds=PRACTICE_CACHE_SECONDS)  # the webhook routes cache a practice this long
    retired = post(client, clock, secret=DEMO_SECRET, event=session_completed("enc-3", "pat-1"))
    assert retired.status_code == 401


def test_one_practices_secret_never_opens_another_practices_endpoint(client, services, clock):
    store_practice(services, id="southside", webhook_secrets=[OTHER_SECRET])
    south = "/webhooks/southside/events"
    assert post(client, clock, secret=DEMO_SECRET, url=south).status_code == 401
    assert post(client, clock, secret=OTHER_SECRET, url=URL).status_code == 401
    assert post(client, clock, secret=OTHER_SECRET, url=south).status_code == 202
    with services.engine.begin() as conn:
        assert conn.execute(select(webhook_events.c.practice_id)).scalars().all() == ["southside"]


# --- the Standard Webhooks test vectors, verified by our endpoint at the vectors' own time -------


@pytest.fixture
def vector(clock):
    vector = VECTORS["sign_vectors"][0]
    assert vector["secret"] == DEMO_SECRET  # the northside fixture practice holds this secret
    clock.now = datetime.fromtimestamp(vector["timestamp"], timezone.utc)
    return vector


def vector_request(vector, signature=None, timestamp=None):
    headers = {"webhook-id": vector["msg_id"],
               "webhook-timestamp": str(timestamp or vector["timestamp"]),
               "webhook-signature": signature or vector["expected_signature_header"],
               "content-type": "application/json"}
    return vector["payload"].encode(), headers


def test_sign_vector_verifies(client, services, vector):
    body, headers = vector_request(vector)
    answer = client.post(URL, data=body, headers=headers)
    # The signature is good; the vector's body ({"test": …}) is no native event, so 422 names it.
    assert answer.status_code == 422, answer.get_json()
    assert set(answer.get_json()["errors"]) == {"type", "data"}
    assert rows(services)["webhook_events"] == 0


def test_sign_vector_with_its_body_as_a_real_event_is_accepted(client, vector):
    event = json.dumps(session_completed("enc-v", "pat-v")).encode()
    signature = sign(vector["secret"], vector["msg_id"], vector["timestamp"], event)
    answer = client.post(URL, data=event, headers={**vector_request(vector)[1], "webhook-signature": signature})
    assert answer.status_code == 202


@pytest.mark.parametrize("signature", [v["webhook-signature"] for v in VECTORS["negative_vectors"]
                                       if "webhook-signature" in v])
def test_negative_vector_is_refused(client, vector, signature):
    body, headers = vector_request(vector, signature=signature)
    assert client.post(URL, data=body, headers=headers).status_code == 401


@pytest.mark.parametrize("offset, words", [(-301, "in the past"), (301, "in the future")])
def test_vector_outside_the_tolerance_is_refused(client, clock, vector, offset, words):
    clock.now -= timedelta(seconds=offset)  # the same signed request, seen too late or too early
    answer = client.post(URL, data=vector_request(vector)[0], headers=vector_request(vector)[1])
    assert answer.status_code == 401 and words in answer.get_json()["detail"]


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_vector_without_a_header_is_refused(client, vector, missing):
    body, headers = vector_request(vector)
    del headers[missing]
    answer = client.post(URL, data=body, headers=headers)
    assert answer.status_code == 401 and missing in answer.get_json()["detail"]


def test_vector_with_hello_timestamp_is_refused(client, vector):
    body, headers = vector_request(vector)
    headers["webhook-timestamp"] = "hello"
    assert client.post(URL, data=body, headers=headers).status_code == 401


def test_multi_signature_header_accepts_any_v1_match(client, vector):
    decoys = VECTORS["multi_signature_vector"]["decoy_entries"]
    body, headers = vector_request(vector)
    only_decoys = client.post(URL, data=body, headers={**headers, "webhook-signature": " ".join(decoys)})
    assert only_decoys.status_code == 401
    mixed = " ".join([*decoys, vector["expected_signature_header"]])
    assert client.post(URL, data=body, headers={**headers, "webhook-signature": mixed}).status_code == 422


# --- duplicates and non-completions -----------------------------------------------------------


def test_same_webhook_id_is_a_duplicate_delivery(client, services, clock, run_due):
    first = post(client, clock, msg_id="msg_same")
    again = post(client, clock, msg_id="msg_same")
    assert first.status_code == 202 and first.get_json()["duplicate"] is False
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert again.get_json()["event_id"] == first.get_json()["event_id"]
    run_due()
    assert rows(services)["webhook_events"] == 1 and rows(services)["surveys"] == 1


def test_same_session_under_another_webhook_id_is_a_duplicate(client, services, clock, run_due):
    assert post(client, clock, msg_id="msg_1").status_code == 202
    second = post(client, clock, msg_id="msg_2")
    assert second.status_code == 200 and second.get_json()["duplicate"] is True
    run_due()
    counted = rows(services)
    assert counted["webhook_events"] == 2 and counted["surveys"] == 1
    with services.engine.begin() as conn:
        outcomes = conn.execute(select(webhook_events.c.outcome).order_by(webhook_events.c.delivery_id)).scalars().all()
    assert outcomes == ["survey-scheduled", "duplicate-session"]


@pytest.mark.parametrize("status", ["no-show", "cancelled"])
def test_a_session_that_did_not_happen_is_recorded_and_does_not_use_up_the_session(
        client, services, clock, run_due, status):
    missed = session_completed("enc-7", "pat-1", phone="+15551234567")
    missed["data"]["status"] = status
    answer = post(client, clock, missed)
    assert answer.status_code == 202 and status in answer.get_json()["ignored"]
    run_due()
    assert rows(services)["surveys"] == 0
    assert post(client, clock, session_completed("enc-7", "pat-1", phone="+15551234567")).status_code == 202
    run_due()
    assert rows(services)["surveys"] == 1


def test_other_event_types_are_recorded_without_survey(client, services, clock, run_due):
    answer = post(client, clock, {"type": "patient.updated", "data": {"patient_id": "pat-1"}})
    assert answer.status_code == 202
    assert "patient.updated" in answer.get_json()["ignored"]
    run_due()
    counted = rows(services)
    assert counted["webhook_events"] == 1 and counted["surveys"] == 0 and counted["outbox"] == 0


def test_native_event_claims_the_encounter_key_a_fhir_notification_would(client, services, clock):
    assert post(client, clock).status_code == 202
    with services.engine.begin() as conn:
        keys = set(conn.execute(select(session_keys.c.key)).scalars())
    assert keys == {"session:enc-1001", "Encounter/enc-1001"}


# --- durable before the answer, and no broker on the request path ------------------------------


def test_events_are_accepted_while_the_broker_is_down(database, settings_for, clock, fake_ehr, channels):
    url, engine = database
    dead_broker = settings_for(url, broker_url="amqp://guest:guest@127.0.0.1:1//")
    services = bootstrap(dead_broker, engine=engine, clock=clock, ehr_for=lambda _c: fake_ehr,
                         channel_for=lambda name, _c: channels[name])
    store_practice(services)
    app = create_app(services=services)
    app.config[SIGNATURE_CLOCK] = clock
    client = app.test_client()
    answer = post(client, clock)
    assert answer.status_code == 202
    with services.engine.begin() as conn:
        [job] = conn.execute(select(outbox.c.kind, outbox.c.status)).all()
    assert tuple(job) == ("event.process", "pending")  # the relay publishes it later
    assert client.get("/readyz").status_code == 503  # the broker really is unreachable
