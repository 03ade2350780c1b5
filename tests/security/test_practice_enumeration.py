"""Finding 6 of the security review: an unknown practice answered 404 where a known one
answered 401, so anyone could list the practices. Now every webhook route answers an unknown
practice exactly as it answers a bad signature (HL7 v2 and Healthie already did: their own
tests, tests/integration/test_intake_hl7v2.py and test_intake_healthie.py)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from service.demo import session_completed, signed_event
from service.persistence.tables import webhook_events
from service.web import create_app
from service.web.consent import twilio_signature

WRONG_SECRET = "whsec_" + "V3JvbmdXcm9uZ1dyb25nV3JvbmdXcm9uZ1dyb25n"


def hub_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def client(services, practice):
    return create_app(services=services).test_client()


def native(client, practice_id: str):
    body, headers = signed_event(WRONG_SECRET, session_completed("enc-1", "pat-1"),
                                 when=datetime.now(timezone.utc))
    return client.post(f"/webhooks/{practice_id}/events", data=body, headers=headers)


def fhir(client, practice_id: str):
    body = b'{"resourceType": "Bundle", "type": "history", "entry": []}'
    return client.post(f"/webhooks/{practice_id}/fhir", data=body, headers={
        "content-type": "application/fhir+json", "Authorization": "Bearer not-the-token-0123",
        "X-Hub-Signature": hub_signature("not-the-hub-secret", body)})


def sms(client, practice_id: str):
    form = {"MessageSid": "SM1", "From": "+15551234567", "Body": "STOP"}
    url = f"https://surveys.test/webhooks/{practice_id}/sms/inbound"
    return client.post(f"/webhooks/{practice_id}/sms/inbound", data=form,
                       headers={"X-Twilio-Signature": twilio_signature("wrong", url, form.items())})


@pytest.mark.parametrize("send", [native, fhir, sms])
@pytest.mark.parametrize("unknown", ["nowhere", "x" * 300, "North%20Side"])
def test_an_unknown_practice_is_answered_as_a_bad_signature(client, services, send, unknown):
    known, stranger = send(client, "northside"), send(client, unknown)

    assert known.status_code == stranger.status_code == 401
    assert stranger.mimetype == known.mimetype == "application/problem+json"
    assert stranger.get_json() == known.get_json()
    with services.engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(webhook_events)).scalar() == 0


def test_a_practice_without_webhook_secrets_is_answered_alike(client, services, clock):
    from service import practices
    from support import practice_document

    document = practices.validate_document(practice_document(id="fhironly", webhook_secrets=[]))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=clock())
    assert native(client, "fhironly").get_json() == native(client, "nowhere").get_json()
