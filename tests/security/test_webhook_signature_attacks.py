"""Attacks on the signed webhook (CONTRACT §3.1), on SQLite and PostgreSQL: forged, tampered,
stale, future and replayed signatures, and one practice's secret used against another practice.
Every refusal is a 401 problem and stores nothing; a replay inside the window is a duplicate
that causes nothing new."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from service import practices
from service.demo import session_completed, signed_event
from service.persistence.tables import outbox, session_keys, surveys, webhook_events
from service.web import create_app
from service.web.webhooks import SIGNATURE_CLOCK
from support import DEMO_SECRET, practice_document

SOUTHSIDE_SECRET = "whsec_" + base64.b64encode(b"southside-only-secret-32-bytes!!").decode()
ATTACKER_SECRET = "whsec_" + base64.b64encode(b"attacker-made-up-secret-32-bytes").decode()
URL = "/webhooks/northside/events"


@pytest.fixture
def client(services, practice, clock):
    document = practices.validate_document(practice_document(
        id="southside", name="Southside", webhook_secrets=[SOUTHSIDE_SECRET]))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=clock())
    app = create_app(services=services)
    app.config[SIGNATURE_CLOCK] = clock
    return app.test_client()


def stored(services) -> dict[str, int]:
    with services.engine.begin() as conn:
        return {table.name: conn.execute(select(func.count()).select_from(table)).scalar()
                for table in (webhook_events, outbox, session_keys, surveys)}


def event() -> dict:
    return session_completed("enc-attack", "pat-attack", phone="+15557654321")


def mac(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def forged_with_attacker_secret(clock):
    return signed_event(ATTACKER_SECRET, event(), when=clock.now)


def tampered_body(clock):
    body, headers = signed_event(DEMO_SECRET, event(), when=clock.now)
    changed = json.loads(body)
    changed["data"]["patient_id"] = "someone-else"
    return json.dumps(changed).encode(), headers


def signature_of_another_id(clock):
    body, headers = signed_event(DEMO_SECRET, event(), msg_id="msg_original", when=clock.now)
    return body, {**headers, "webhook-id": "msg_swapped"}


def stale_by_six_minutes(clock):
    return signed_event(DEMO_SECRET, event(), when=clock.now - timedelta(minutes=6))


def six_minutes_in_the_future(clock):
    return signed_event(DEMO_SECRET, event(), when=clock.now + timedelta(minutes=6))


def signature_stripped_to_v0(clock):
    body, headers = signed_event(DEMO_SECRET, event(), when=clock.now)
    return body, {**headers, "webhook-signature": headers["webhook-signature"].replace("v1,", "v0,")}


def garbage_signature(clock):
    body, headers = signed_event(DEMO_SECRET, event(), when=clock.now)
    return body, {**headers, "webhook-signature": "v1,not-base64!!"}


def no_signature(clock):
    body, headers = signed_event(DEMO_SECRET, event(), when=clock.now)
    return body, {name: value for name, value in headers.items() if name != "webhook-signature"}


def timestamp_not_a_number(clock):
    body, headers = signed_event(DEMO_SECRET, event(), when=clock.now)
    return body, {**headers, "webhook-timestamp": "1e10",
                  "webhook-signature": mac(DEMO_SECRET, headers["webhook-id"], "1e10", body)}


@pytest.mark.parametrize("forge", [
    forged_with_attacker_secret, tampered_body, signature_of_another_id, stale_by_six_minutes,
    six_minutes_in_the_future, signature_stripped_to_v0, garbage_signature, no_signature,
    timestamp_not_a_number,
])
def test_a_forged_or_stale_signature_is_refused_and_stores_nothing(client, services, clock, forge):
    before = stored(services)
    body, headers = forge(clock)
    answer = client.post(URL, data=body, headers=headers)
    assert answer.status_code == 401
    assert answer.mimetype == "application/problem+json"
    assert answer.json["type"].endswith("bad-signature")
    assert stored(services) == before


def test_one_practices_secret_does_not_open_another_practice(client, services, clock):
    """Signed correctly, but with southside's secret, sent to northside (and the reverse)."""
    body, headers = signed_event(SOUTHSIDE_SECRET, event(), when=clock.now)
    assert client.post(URL, data=body, headers=headers).status_code == 401
    body, headers = signed_event(DEMO_SECRET, event(), when=clock.now)
    assert client.post("/webhooks/southside/events", data=body, headers=headers).status_code == 401
    assert stored(services)["webhook_events"] == 0
    # Each secret still opens its own practice.
    assert client.post(URL, data=body, headers=headers).status_code == 202


def test_a_replay_inside_the_window_is_a_duplicate_and_causes_nothing_new(client, services, clock):
    body, headers = signed_event(DEMO_SECRET, event(), msg_id="msg_replayed", when=clock.now)
    first = client.post(URL, data=body, headers=headers)
    assert first.status_code == 202
    after_first = stored(services)
    clock.advance(minutes=4)
    replay = client.post(URL, data=body, headers=headers)
    assert replay.status_code == 200 and replay.json["duplicate"] is True
    assert replay.json["event_id"] == first.json["event_id"]
    assert stored(services) == after_first


def test_a_replay_after_the_window_is_refused(client, services, clock):
    body, headers = signed_event(DEMO_SECRET, event(), msg_id="msg_late_replay", when=clock.now)
    assert client.post(URL, data=body, headers=headers).status_code == 202
    after_first = stored(services)
    clock.advance(minutes=5, seconds=1)
    assert client.post(URL, data=body, headers=headers).status_code == 401
    assert stored(services) == after_first


def test_a_replay_under_a_new_webhook_id_cannot_be_signed_without_the_secret(client, services, clock):
    """An eavesdropper who changes the webhook-id to dodge the dedupe breaks the signature."""
    body, headers = signed_event(DEMO_SECRET, event(), msg_id="msg_seen", when=clock.now)
    assert client.post(URL, data=body, headers=headers).status_code == 202
    after_first = stored(services)
    assert client.post(URL, data=body, headers={**headers, "webhook-id": "msg_fresh"}).status_code == 401
    assert stored(services) == after_first
