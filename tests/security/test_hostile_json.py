"""Hostile bodies on every JSON endpoint, on SQLite and PostgreSQL: oversized, deeply nested,
and (hypothesis) arbitrary JSON. The answer is a clear 4xx problem, never a 5xx, and a refused
request stores nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from service.demo import session_completed, signed_event
from service.persistence.tables import responses, webhook_events
from service.web import create_app
from service.web.webhooks import SIGNATURE_CLOCK
from support import DEMO_SECRET

CHANNEL_TOKEN = "channel-token-0123456789"  # northside's, in tests/support.py
NESTED = "[" * 10_000 + "]" * 10_000
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)


@pytest.fixture
def client(services, practice, clock):
    app = create_app(services=services)
    app.config[SIGNATURE_CLOCK] = clock
    return app.test_client()


@pytest.fixture
def token(client, run_due, channels, clock):
    body, headers = signed_event(DEMO_SECRET, session_completed("enc-json", "pat-json", phone="+15551239999"),
                                 when=clock.now)
    assert client.post("/webhooks/northside/events", data=body, headers=headers).status_code == 202
    run_due()
    return channels["sms"].sent[-1].link.rsplit("/s/", 1)[1]


def signed(clock, body: bytes, msg_id: str = "msg_hostile") -> dict:
    timestamp = str(int(clock.now.timestamp()))
    key = base64.b64decode(DEMO_SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": timestamp, "content-type": "application/json",
            "webhook-signature": "v1," + base64.b64encode(digest).decode()}


def fhir_headers() -> dict:
    return {"content-type": "application/fhir+json", "Authorization": f"Bearer {CHANNEL_TOKEN}"}


def events_stored(services) -> int:
    with services.engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(webhook_events)).scalar()


def answers_stored(services) -> int:
    with services.engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(responses)).scalar()


def assert_clear_refusal(answer, *statuses: int) -> None:
    assert answer.status_code in statuses, (answer.status_code, answer.get_data(as_text=True)[:300])
    assert answer.mimetype == "application/problem+json"
    assert answer.json["detail"]


# Python's json module raises RecursionError, not ValueError, on deep nesting: every JSON route
# must still answer with a clear 4xx.


def test_deeply_nested_json_to_the_native_webhook_is_a_400(client, services, clock):
    body = NESTED.encode()
    assert_clear_refusal(client.post("/webhooks/northside/events", data=body, headers=signed(clock, body)), 400, 422)
    assert events_stored(services) == 0


def test_deeply_nested_json_inside_the_event_data_is_a_400(client, services, clock):
    body = ('{"type": "session.completed", "data": ' + NESTED + "}").encode()
    assert_clear_refusal(client.post("/webhooks/northside/events", data=body, headers=signed(clock, body)), 400, 422)
    assert events_stored(services) == 0


def test_deeply_nested_json_to_the_fhir_webhook_is_a_400(client, services):
    answer = client.post("/webhooks/northside/fhir", data=NESTED, headers=fhir_headers())
    assert_clear_refusal(answer, 400, 422)
    assert events_stored(services) == 0


def test_deeply_nested_answers_are_a_4xx(client, services, token):
    body = '{"answers": ' + NESTED + "}"
    answer = client.post(f"/api/v1/surveys/{token}/response", data=body,
                         headers={"content-type": "application/json"})
    assert_clear_refusal(answer, 400, 422)
    assert answers_stored(services) == 0


def test_oversized_bodies_are_a_413(client, services, clock, token):
    padding = "x" * (300 * 1024)
    body = json.dumps({**session_completed("enc-big", "pat-big"), "padding": padding}).encode()
    assert_clear_refusal(client.post("/webhooks/northside/events", data=body, headers=signed(clock, body)), 413)
    assert_clear_refusal(client.post("/webhooks/northside/fhir", data=body, headers=fhir_headers()), 413)
    huge = json.dumps({"answers": {"comment": "y" * (2 * 1024 * 1024)}})
    answer = client.post(f"/api/v1/surveys/{token}/response", data=huge,
                         headers={"content-type": "application/json"})
    assert_clear_refusal(answer, 413)
    assert events_stored(services) == 1 and answers_stored(services) == 0  # only the fixture's


def test_a_wide_object_within_the_size_limit_is_a_422(client, services, clock):
    event = session_completed("enc-wide", "pat-wide")
    event["data"]["patient_id"] = {f"k{n}": n for n in range(15_000)}
    body = json.dumps(event).encode()
    assert_clear_refusal(client.post("/webhooks/northside/events", data=body, headers=signed(clock, body)), 422)
    assert events_stored(services) == 0


@FUZZ
@given(document=JSON)
def test_any_json_to_the_native_webhook_is_never_a_5xx(client, clock, document):
    body = json.dumps(document).encode()
    answer = client.post("/webhooks/northside/events", data=body,
                         headers=signed(clock, body, msg_id=f"msg_{hashlib.sha256(body).hexdigest()[:20]}"))
    assert answer.status_code < 500, answer.get_data(as_text=True)[:300]


@FUZZ
@given(data=JSON)
def test_any_event_data_is_never_a_5xx(client, clock, data):
    body = json.dumps({"type": "session.completed", "data": data}).encode()
    answer = client.post("/webhooks/northside/events", data=body,
                         headers=signed(clock, body, msg_id=f"msg_{hashlib.sha256(body).hexdigest()[:20]}"))
    assert answer.status_code < 500, answer.get_data(as_text=True)[:300]


@FUZZ
@given(document=JSON)
def test_any_json_to_the_fhir_webhook_is_never_a_5xx(client, document):
    answer = client.post("/webhooks/northside/fhir", data=json.dumps(document), headers=fhir_headers())
    assert answer.status_code < 500, answer.get_data(as_text=True)[:300]


@FUZZ
@given(answers=st.dictionaries(st.sampled_from(["bond", "goals", "approach", "overall", "tension",
                                                "tension_intensity", "comment", "other"]), JSON, max_size=8))
def test_any_answers_are_never_a_5xx(client, token, answers):
    answer = client.post(f"/api/v1/surveys/{token}/response", json={"answers": answers})
    assert answer.status_code < 500, answer.get_data(as_text=True)[:300]
