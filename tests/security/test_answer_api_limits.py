"""Finding 6 of the security review: the JSON answer endpoint had no rate limit and lacked the
survey page's `Cache-Control: no-store` and `Referrer-Policy: no-referrer`. Now it is limited
like the form (per link and address; reads and answers counted apart) and every answer, error
or not, carries the headers."""

from __future__ import annotations

import pytest

from service.web import create_app
from service.web.surveys import POSTS_PER_WINDOW


@pytest.fixture
def client(services, practice):
    return create_app(services=services).test_client()


@pytest.fixture
def token(client, services, run_due, channels):
    from datetime import datetime, timezone

    from service.demo import session_completed, signed_event
    from support import DEMO_SECRET

    body, headers = signed_event(DEMO_SECRET, session_completed("enc-1", "pat-1", phone="+15551234567"),
                                 when=datetime.now(timezone.utc))
    assert client.post("/webhooks/northside/events", data=body, headers=headers).status_code == 202
    run_due()
    return channels["sms"].sent[-1].link.rsplit("/s/", 1)[1]


def assert_private(answer) -> None:
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_answers_are_limited_per_link_and_address(client, token, clock):
    url = f"/api/v1/surveys/{token}/response"
    invalid = {"answers": {"bond": 99}}  # refused answers do not use the link up (§4)
    for _ in range(POSTS_PER_WINDOW):
        assert client.post(url, json=invalid).status_code == 422
    limited = client.post(url, json=invalid)
    assert limited.status_code == 429 and limited.mimetype == "application/problem+json"
    assert limited.headers["Retry-After"] == "60"
    assert_private(limited)
    # Another address is not held back, and reads have their own allowance.
    assert client.post(url, json=invalid, environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 422
    assert client.get(f"/api/v1/surveys/{token}").status_code == 200
    clock.advance(minutes=1, seconds=1)
    assert client.post(url, json=invalid).status_code == 422


def test_reads_are_limited_too(client, token):
    for _ in range(POSTS_PER_WINDOW):
        assert client.get(f"/api/v1/surveys/{token}").status_code == 200
    assert client.get(f"/api/v1/surveys/{token}").status_code == 429


def test_forged_tokens_are_limited_before_anything_is_looked_up(client):
    for _ in range(POSTS_PER_WINDOW):
        assert client.get("/api/v1/surveys/forged.token").status_code == 404
    assert client.get("/api/v1/surveys/forged.token").status_code == 429


def test_every_api_answer_carries_the_pages_headers(client, token):
    answers = {"bond": 8, "goals": 8, "approach": 8, "overall": 8}
    for answer in (client.get(f"/api/v1/surveys/{token}"),
                   client.post(f"/api/v1/surveys/{token}/response", json={"answers": {}}),
                   client.post(f"/api/v1/surveys/{token}/response", json={"answers": answers}),
                   client.post(f"/api/v1/surveys/{token}/response", json={"answers": answers}),
                   client.get("/api/v1/surveys/forged.token")):
        assert_private(answer)

