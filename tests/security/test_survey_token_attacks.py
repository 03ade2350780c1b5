"""Attacks on survey links (CONTRACT §4), on SQLite and PostgreSQL: forged tokens (made up,
tampered, signed with another key, naming a real survey), expired ones (before and after the
expiry job ran) and reused ones, on the page, the form and the JSON API. Nothing is stored by a
refused answer."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from service.demo import session_completed, signed_event
from service.persistence.tables import responses, surveys
from service.web import create_app
from support import DEMO_SECRET

ANSWERS = {"bond": 8, "goals": 7, "approach": 9, "overall": 8, "tension": False}


@pytest.fixture
def client(services, practice):
    return create_app(services=services).test_client()


@pytest.fixture
def send(client, run_due, channels):
    """A sent survey for a new session; returns its link token."""
    sent = []

    def make() -> str:
        sent.append(1)
        event = session_completed(f"enc-tok-{len(sent)}", f"pat-tok-{len(sent)}", phone="+15551230000")
        body, headers = signed_event(DEMO_SECRET, event, when=datetime.now(timezone.utc))
        assert client.post("/webhooks/northside/events", data=body, headers=headers).status_code == 202
        run_due()
        return channels["sms"].sent[-1].link.rsplit("/s/", 1)[1]

    return make


def answers_stored(services) -> int:
    with services.engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(responses)).scalar()


def survey_ids(services) -> list[str]:
    with services.engine.begin() as conn:
        return list(conn.execute(select(surveys.c.id)).scalars())


def tampered(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


def assert_refused_everywhere(client, token: str, status: int) -> None:
    assert client.get(f"/s/{token}").status_code == status
    assert client.post(f"/s/{token}", data={"bond": "1"}).status_code == status
    api = client.get(f"/api/v1/surveys/{token}")
    assert api.status_code == status and api.mimetype == "application/problem+json"
    answer = client.post(f"/api/v1/surveys/{token}/response", json={"answers": ANSWERS})
    assert answer.status_code == status and answer.mimetype == "application/problem+json"


def test_made_up_and_tampered_tokens_are_unknown(client, send, services):
    real = send()
    for forged in ("x", "a" * 200, "IjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCI.AAAA",
                   tampered(real), real + "x", "..", "%00"):
        assert_refused_everywhere(client, forged, 404)
    assert answers_stored(services) == 0


def test_a_token_signed_with_another_key_for_a_real_survey_is_unknown(client, send, services):
    send()
    [survey_id] = survey_ids(services)
    forged = URLSafeSerializer("not-the-service-secret-" + "y" * 30, salt="survey-link").dumps(survey_id)
    assert_refused_everywhere(client, forged, 404)
    # Nor does the right key with another salt (a token meant for something else) open it.
    other_purpose = URLSafeSerializer(services.settings.secret_key, salt="other").dumps(survey_id)
    assert_refused_everywhere(client, other_purpose, 404)
    assert answers_stored(services) == 0


def test_an_expired_link_is_closed_even_before_the_expiry_job_ran(client, send, services, clock):
    token = send()
    clock.advance(hours=72, seconds=1)
    assert_refused_everywhere(client, token, 410)
    assert answers_stored(services) == 0


def test_an_expired_link_is_closed_after_the_expiry_job_ran(client, send, services, clock, run_due):
    token = send()
    clock.advance(hours=73)
    run_due()
    assert_refused_everywhere(client, token, 410)
    assert answers_stored(services) == 0


def test_a_used_link_cannot_answer_again(client, send, services):
    token = send()
    assert client.post(f"/api/v1/surveys/{token}/response", json={"answers": ANSWERS}).status_code == 201
    changed = {**ANSWERS, "bond": 0}
    assert_refused_everywhere(client, token, 409)
    assert client.post(f"/api/v1/surveys/{token}/response", json={"answers": changed}).status_code == 409
    assert answers_stored(services) == 1
    with services.engine.begin() as conn:
        sealed = conn.execute(select(responses.c.sealed_answers)).scalar()
    assert services.vault.open(sealed)["bond"] == 8


def test_one_link_never_reaches_another_clients_survey(client, send, services):
    first, second = send(), send()
    assert client.post(f"/api/v1/surveys/{first}/response", json={"answers": ANSWERS}).status_code == 201
    assert client.get(f"/api/v1/surveys/{second}").status_code == 200
    with services.engine.begin() as conn:
        answered = conn.execute(select(surveys.c.session_id).where(surveys.c.status == "answered")).scalars()
        assert list(answered) == ["enc-tok-1"]
