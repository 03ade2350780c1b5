"""For EHRs without FHIR write access: scores and rupture events go to the practice as signed
Standard Webhooks, with the same retry and dead-letter guarantees as FHIR writes."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from service import practices
from support import answer_one_survey, practice_document

SINK_SECRET = "whsec_" + "c2luay1zZWNyZXQtZm9yLXRoZS10ZXN0cy1vbmx5"
LOW = {"bond": 1, "goals": 1, "approach": 1, "overall": 1}


@pytest.fixture
def webhook_practice(services, httpserver):
    document = practice_document(ehr={"type": "webhook", "url": httpserver.url_for("/alliance"),
                                      "secret": SINK_SECRET})
    document = practices.validate_document(document)
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())
    return document


def survey_answered_low(services, channels, run_due):
    answer_one_survey(services, channels, run_due, LOW, session_id="enc-5", patient_id="pat-5")

def test_scores_and_rupture_arrive_signed(webhook_practice, services, channels, run_due, httpserver):
    httpserver.expect_request("/alliance", method="POST").respond_with_data("", status=204)
    survey_answered_low(services, channels, run_due)
    run_due()
    types = []
    for request, _ in httpserver.log:
        payload = Webhook(SINK_SECRET).verify(request.get_data(as_text=True), dict(request.headers))
        types.append(payload["type"])
    assert types == ["alliance.scored", "alliance.rupture"]


def test_a_failing_sink_is_retried_then_reached_once(webhook_practice, services, channels, run_due,
                                                    httpserver, clock):
    httpserver.expect_ordered_request("/alliance").respond_with_data("busy", status=503)
    httpserver.expect_request("/alliance").respond_with_data("", status=204)
    survey_answered_low(services, channels, run_due)
    assert run_due() == [("response.writeback", "retry")]
    clock.advance(minutes=1)
    run_due()
    delivered = [r.headers["webhook-id"] for r, response in httpserver.log if response.status_code == 204]
    assert len(delivered) == len(set(delivered)) == 2
