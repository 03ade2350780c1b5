"""The webhook write-back against a practice endpoint played by pytest-httpserver: signed
Standard Webhooks events with stable ids, and every answer's handling."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from integrations.ehr import build_record_writer
from integrations.ehr.errors import EhrPermanentError, EhrTransientError
from integrations.ehr.webhook_sink import WebhookRecordSink
from integrations.ehr.writer import AllianceRecord, AllianceRecordWriter, AnswerItem, FlagRef
from support import loopback_network

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
AUTHORED = datetime(2026, 11, 26, 15, 30, tzinfo=timezone.utc)
RECORD = AllianceRecord(
    practice_id="northside",
    patient_id="pat-17",
    session_id="enc-1001",
    response_id="resp-1",
    instrument_url="https://alliance-feedback.org/fhir/Questionnaire/brief-alliance-check",
    instrument_version="1.0.0",
    instrument_title="Brief Alliance Check",
    authored=AUTHORED,
    answers=(AnswerItem("bond", "Item one", 5), AnswerItem("tension", "Item two", True)),
    total=5.0,
    total_max=10.0,
    subscales={"bond": 5.0},
    pomp=50.0,
    decision="rupture",
    reasons=("Bond fell from 9 to 5.",),
    interpretation="low",
)


@pytest.fixture
def sink(httpserver) -> WebhookRecordSink:
    httpserver.expect_request("/hooks/alliance", method="POST").respond_with_data("", 204)
    return WebhookRecordSink(httpserver.url_for("/hooks/alliance"), SECRET,
                             network=loopback_network())


def delivered(httpserver) -> list[tuple[dict, dict]]:
    """Each delivery's headers and body, after checking its signature like a receiver."""
    events = []
    for request, _ in httpserver.log:
        body = request.get_data(as_text=True)
        verified = Webhook(SECRET).verify(body, dict(request.headers))
        events.append((dict(request.headers), verified))
    return events


def test_scored_event_is_signed_and_carries_the_scores(httpserver, sink):
    written = sink.write_scores(RECORD)

    ((headers, event),) = delivered(httpserver)
    assert headers["Content-Type"] == "application/json"
    assert headers["Webhook-Id"] == "msg_scored_resp-1"
    assert event["type"] == "alliance.scored"
    assert event["data"]["session_id"] == "enc-1001"
    assert event["data"]["answers"] == {"bond": 5, "tension": True}
    assert event["data"]["scores"] == {
        "total": 5.0, "total_max": 10.0, "subscales": {"bond": 5.0}, "pomp": 50.0
    }
    assert event["data"]["interpretation"] == "low"
    assert written.questionnaire_response_id == written.observation_id == "msg_scored_resp-1"


def test_a_retry_carries_the_same_webhook_id(httpserver, sink):
    sink.write_scores(RECORD)
    sink.write_scores(RECORD)

    ids = [headers["Webhook-Id"] for headers, _ in delivered(httpserver)]
    assert ids == ["msg_scored_resp-1", "msg_scored_resp-1"]


def test_the_rupture_lifecycle(httpserver, sink):
    flag = sink.raise_flag(RECORD, "Alliance rupture: bond fell from 9 to 5", "ep-1")
    sink.update_flag_text(flag, "Unresolved: bond still low")
    sink.resolve_flag(flag, AUTHORED + timedelta(days=14))

    events = [event for _, event in delivered(httpserver)]
    assert flag == FlagRef("ep-1", None, "ep-1")
    assert [(e["type"], e["data"].get("status")) for e in events] == [
        ("alliance.rupture", "raised"),
        ("alliance.rupture", "unresolved"),
        ("alliance.repaired", None),
    ]
    assert events[0]["data"]["text"] == "Alliance rupture: bond fell from 9 to 5"
    assert events[1]["data"] == {
        "episode_id": "ep-1", "status": "unresolved", "text": "Unresolved: bond still low"
    }
    assert events[2]["data"] == {"episode_id": "ep-1", "ended_at": "2026-12-10T15:30:00Z"}


def test_a_signature_with_another_secret_does_not_verify(httpserver, sink):
    sink.write_scores(RECORD)

    ((request, _),) = httpserver.log
    other = Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB")
    with pytest.raises(WebhookVerificationError):
        other.verify(request.get_data(as_text=True), dict(request.headers))


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (503, {"Retry-After": "20"}, EhrTransientError, 20.0),
        (429, {}, EhrTransientError, None),
        (500, {}, EhrTransientError, None),
        (400, {}, EhrPermanentError, None),
        (410, {}, EhrPermanentError, None),
    ],
)
def test_answers_map_to_retry_or_dead_letter(httpserver, status, headers, error, retry_after):
    httpserver.expect_request("/hooks/alliance").respond_with_data("", status, headers=headers)
    sink = WebhookRecordSink(httpserver.url_for("/hooks/alliance"), SECRET,
                             network=loopback_network())

    with pytest.raises(error) as raised:
        sink.write_scores(RECORD)

    assert type(raised.value) is error
    if error is EhrTransientError:
        assert raised.value.retry_after == retry_after
    else:
        assert raised.value.status == status


def test_build_record_writer_chooses_by_type(httpserver):
    webhook = build_record_writer(
        {"type": "webhook", "url": httpserver.url_for("/h"), "secret": SECRET}
    )
    fhir = build_record_writer({"type": "fhir-r4", "base_url": "https://ehr.example.org/fhir"})

    assert isinstance(webhook, WebhookRecordSink)
    assert isinstance(fhir, AllianceRecordWriter)
    with pytest.raises(ValueError, match="secret"):
        build_record_writer({"type": "webhook", "url": "https://x"})
