"""The plugin's side of the service's contract: Standard Webhooks signatures and reading alerts."""

import base64
import hashlib
import hmac

import pytest
from alliance_feedback.service_client import (
    AlertsUnavailable,
    NotDelivered,
    Settings,
    post_event,
    read_alerts,
    sign,
)

from tests.conftest import API_KEY, SECRET


def test_signature_matches_the_standard_webhooks_test_vector():
    # standard-webhooks spec v1.0.0, the reference libraries' sign test.
    assert sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}') == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    # The whsec_ prefix is optional, as in the reference libraries.
    assert sign(SECRET.removeprefix("whsec_"), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                '{"test": 2432232314}') == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_an_event_is_posted_with_headers_that_verify_over_the_exact_body(service, variables):
    service.answer(202, {"status": "accepted", "event_id": "e1", "duplicate": False})
    answer = post_event(Settings(variables), "canvas-note-n1", {"type": "session.completed",
                                                                "data": {"session_id": "n1"}},
                        now=1_800_000_000)
    assert answer.status_code == 202
    [request] = service.requests
    assert (request.method, request.path) == ("POST", "/webhooks/northside/events")
    assert request.headers["webhook-id"] == "canvas-note-n1"
    assert request.headers["webhook-timestamp"] == "1800000000"
    assert request.headers["content-type"] == "application/json"
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = hmac.new(key, b"canvas-note-n1.1800000000." + request.body, hashlib.sha256).digest()
    assert request.headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()
    assert request.json()["data"]["session_id"] == "n1"


def test_a_practice_id_is_escaped_into_a_single_path_segment(service, variables):
    settings = Settings({**variables, "ALLIANCE_PRACTICE_ID": "a/../b"})
    post_event(settings, "m1", {"type": "x"})
    assert service.requests[0].path == "/webhooks/a%2F..%2Fb/events"


def test_alerts_are_read_page_by_page_with_the_api_key(service, variables):
    service.answer(200, {"alerts": [{"id": "r1", "patient_id": "p1", "status": "open"}],
                         "next_cursor": "c2"})
    service.answer(200, {"alerts": [{"id": "r2", "patient_id": "p2", "status": "resolved"}],
                         "next_cursor": None})
    alerts = read_alerts(Settings(variables), "2026-11-19T15:00:00Z")
    assert [alert["id"] for alert in alerts] == ["r1", "r2"]
    first, second = service.requests
    assert first.path == "/api/v1/practices/northside/alerts"
    assert first.headers["authorization"] == f"Bearer {API_KEY}"
    assert first.query["since"] == ["2026-11-19T15:00:00Z"] and "cursor" not in first.query
    assert second.query["cursor"] == ["c2"]


@pytest.mark.parametrize("status", [401, 404, 500])
def test_an_answer_other_than_200_means_the_alerts_are_unavailable(service, variables, status):
    service.answer(status, {"title": "no"})
    with pytest.raises(AlertsUnavailable, match=str(status)):
        read_alerts(Settings(variables), "2026-11-19T15:00:00Z")


def test_settings_name_what_is_missing():
    settings = Settings({"ALLIANCE_SERVICE_URL": " https://s.example/ ", "ALLIANCE_NOTE_TYPES":
                         "Therapy session, Intake ,"})
    assert settings.service_url == "https://s.example"
    assert settings.note_types == ["therapy session", "intake"]
    assert settings.missing("service_url", "practice_id", "api_key") == ["practice_id", "api_key"]


def test_no_answer_at_all_is_reported_not_raised_as_a_connection_error(variables):
    closed = Settings({**variables, "ALLIANCE_SERVICE_URL": "http://127.0.0.1:9"})
    with pytest.raises(AlertsUnavailable, match="no answer"):
        read_alerts(closed, "2026-11-19T15:00:00Z")
    with pytest.raises(NotDelivered):
        post_event(closed, "m1", {"type": "x"})


@pytest.mark.parametrize("body", ["<html>proxy error</html>", "[1, 2]", '"text"'])
def test_an_answer_that_is_not_a_json_object_means_the_alerts_are_unavailable(service, variables,
                                                                             body):
    service.answer(200, body)
    with pytest.raises(AlertsUnavailable):
        read_alerts(Settings(variables), "2026-11-19T15:00:00Z")
