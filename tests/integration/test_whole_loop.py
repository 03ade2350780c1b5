"""The whole loop on a real database (SQLite and PostgreSQL), with fakes of our EHR and
channel ports: webhook in → survey out → answer in → scores and Flag written back."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from service.demo import session_completed, signed_event
from service.persistence.tables import outbox, surveys, webhook_events
from service.web import create_app
from support import DEMO_SECRET

LOW = {"bond": 1, "goals": 2, "approach": 1, "overall": 1, "tension": True, "tension_intensity": 4}
HIGH = {"bond": 9, "goals": 9, "approach": 9, "overall": 10, "tension": False}


@pytest.fixture
def client(services, practice):
    return create_app(services=services).test_client()


def post_event(client, clock, session_id="enc-1001", patient_id="pat-17", msg_id=None, **contact):
    contact = contact or {"phone": "+15551234567"}
    body, headers = signed_event(DEMO_SECRET, session_completed(session_id, patient_id, **contact),
                                 msg_id=msg_id, when=datetime.now(timezone.utc))
    return client.post("/webhooks/northside/events", data=body, headers=headers)


def token_of(message) -> str:
    return message.link.rsplit("/s/", 1)[1]


def answer(client, channels, answers, index=-1):
    token = token_of(channels["sms"].sent[index])
    return client.post(f"/api/v1/surveys/{token}/response", json={"answers": answers})


def test_low_scores_write_questionnaire_response_observation_and_flag(client, channels, fake_ehr, run_due, clock):
    accepted = post_event(client, clock)
    assert accepted.status_code == 202, accepted.get_json()
    assert accepted.get_json()["status"] == "accepted"

    run_due()
    [invitation] = channels["sms"].sent
    assert invitation.to == "+15551234567" and invitation.kind == "invitation"
    assert "pat-17" not in invitation.link and "+1555" not in invitation.link

    token = token_of(invitation)
    survey = client.get(f"/api/v1/surveys/{token}").get_json()
    assert [item["linkId"] for item in survey["items"]][:4] == ["bond", "goals", "approach", "overall"]

    assert answer(client, channels, LOW).status_code == 201
    run_due()

    [response] = fake_ehr.resources("QuestionnaireResponse")
    [observation] = fake_ehr.resources("Observation")
    [flag] = fake_ehr.resources("Flag")
    assert response["subject"]["reference"] == "Patient/pat-17"
    assert response["encounter"]["reference"] == "Encounter/enc-1001"
    assert observation["derivedFrom"][0]["reference"] == f"QuestionnaireResponse/{response['id']}"
    assert flag["status"] == "active"
    assert flag["subject"]["reference"] == "Patient/pat-17"
    assert "rupture" in flag["code"]["text"].lower()


def test_answering_twice_is_refused_and_writes_once(client, channels, fake_ehr, run_due, clock):
    post_event(client, clock)
    run_due()
    assert answer(client, channels, HIGH).status_code == 201
    assert answer(client, channels, HIGH).status_code == 409
    run_due()
    run_due()
    assert len(fake_ehr.resources("QuestionnaireResponse")) == 1
    assert fake_ehr.resources("Flag") == []


def test_recovery_resolves_the_flag(client, channels, fake_ehr, run_due, clock):
    for number, answers in enumerate([HIGH, LOW, HIGH, HIGH]):
        assert post_event(client, clock, session_id=f"enc-{number}").status_code == 202
        run_due()
        assert answer(client, channels, answers).status_code == 201
        run_due()
        clock.advance(days=7)
    [flag] = fake_ehr.resources("Flag")
    assert flag["status"] == "inactive"
    assert flag["period"]["end"]


def test_repeated_delivery_and_second_event_for_session_are_duplicates(client, services, run_due, clock):
    first = post_event(client, clock, msg_id="msg_same")
    again = post_event(client, clock, msg_id="msg_same")
    other_id = post_event(client, clock, msg_id="msg_other")
    assert first.status_code == 202
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert other_id.status_code == 200 and other_id.get_json()["duplicate"] is True
    run_due()
    with services.engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(surveys)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(webhook_events)).scalar() == 2


def test_not_completed_session_is_recorded_without_survey(client, services, run_due, clock):
    event = session_completed("enc-9", "pat-17")
    event["data"]["status"] = "no-show"
    body, headers = signed_event(DEMO_SECRET, event)
    answered = client.post("/webhooks/northside/events", data=body, headers=headers)
    assert answered.status_code == 202
    assert "no-show" in answered.get_json()["ignored"]
    run_due()
    with services.engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(surveys)).scalar() == 0
    # The no-show did not use the session up: its later completion still gets a survey.
    assert post_event(client, clock, session_id="enc-9").status_code == 202


@pytest.mark.parametrize("mutate, status, needle", [
    (lambda b, h: (b, {**h, "webhook-signature": "v1,AAAA"}), 401, "signature"),
    (lambda b, h: (b, {k: v for k, v in h.items() if k != "webhook-id"}), 401, "webhook-id"),
    (lambda b, h: (b, {**h, "content-type": "text/plain"}), 415, "application/json"),
    (lambda b, h: (b + b"x" * 300_000, h), 413, "256 KiB"),
])
def test_refused_requests_store_nothing(client, services, mutate, status, needle):
    body, headers = signed_event(DEMO_SECRET, session_completed("enc-1", "pat-1"))
    body, headers = mutate(body, headers)
    refused = client.post("/webhooks/northside/events", data=body, headers=headers)
    assert refused.status_code == status
    assert refused.mimetype == "application/problem+json"
    assert needle in refused.get_json()["detail"]
    with services.engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(webhook_events)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(outbox)).scalar() == 0


def test_invalid_fields_are_named(client, services):
    event = session_completed("enc-1", "pat-1")
    del event["data"]["patient_id"]
    event["data"]["contact"] = {"phone": "555-1234"}
    body, headers = signed_event(DEMO_SECRET, event)
    refused = client.post("/webhooks/northside/events", data=body, headers=headers)
    assert refused.status_code == 422
    errors = refused.get_json()["errors"]
    assert "data.patient_id" in errors and "data.contact.phone" in errors


def test_unparseable_body_is_400_and_unknown_practice_401(client):
    body, headers = signed_event(DEMO_SECRET, {})
    body = b"{not json"
    from standardwebhooks import Webhook
    headers["webhook-signature"] = Webhook(DEMO_SECRET).sign(
        headers["webhook-id"], datetime.fromtimestamp(int(headers["webhook-timestamp"]), timezone.utc), body.decode())
    assert client.post("/webhooks/northside/events", data=body, headers=headers).status_code == 400
    # An unknown practice is answered as a bad signature is (issue 12: no enumeration).
    assert client.post("/webhooks/nowhere/events", data=body, headers=headers).status_code == 401


def test_invalid_answers_are_named_and_do_not_use_the_link(client, channels, run_due, clock):
    post_event(client, clock)
    run_due()
    refused = answer(client, channels, {"bond": 11, "goals": "high", "approach": 5})
    assert refused.status_code == 422
    errors = refused.get_json()["errors"]
    assert {"bond", "goals", "overall"} <= set(errors)
    assert answer(client, channels, HIGH).status_code == 201


def test_forged_and_expired_links(client, channels, run_due, clock):
    assert client.get("/api/v1/surveys/forged-token").status_code == 404
    post_event(client, clock)
    run_due()
    token = token_of(channels["sms"].sent[0])
    clock.advance(hours=73)
    run_due()
    assert client.get(f"/api/v1/surveys/{token}").status_code == 410
    assert client.get(f"/s/{token}").status_code == 410


def test_low_then_high_then_high_raises_and_resolves_one_flag(client, channels, fake_ehr, run_due, clock):
    for number, answers in enumerate([LOW, HIGH, HIGH]):
        assert post_event(client, clock, session_id=f"enc-{number}").status_code == 202
        run_due()
        assert answer(client, channels, answers).status_code == 201
        run_due()
        if number == 0:
            [raised] = fake_ehr.resources("Flag")
            assert raised["status"] == "active"
        clock.advance(days=7)
    [flag] = fake_ehr.resources("Flag")
    assert flag["status"] == "inactive" and flag["period"]["end"]
    assert [v["status"] for v in fake_ehr.history("Flag", flag["id"])] == ["active", "inactive"]
    assert len(fake_ehr.resources("Observation")) == 3


def test_metrics_count_events_and_jobs_without_ids(client, run_due, clock):
    post_event(client, clock, session_id="enc-metrics")
    run_due()
    text = client.get("/metrics").get_data(as_text=True)
    assert 'alliance_events_total{outcome="accepted",source="native"}' in text
    assert 'alliance_jobs_total{kind="event.process",outcome="done"}' in text
    assert "enc-metrics" not in text and "pat-17" not in text
