"""Healthie end to end, on SQLite and PostgreSQL: a signed webhook → the worker reads the
appointment over GraphQL → survey sent → answered → a finished form answer group and a HIGH
CareAlert → repair → the CareAlert deleted. Healthie is the tests' own GraphQL API built from
Healthie's documented shapes (tests/healthie_graphql.py), reached by the real client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from healthie_graphql import HealthieGraphqlFake
from healthie_support import HEALTHIE_KEY, healthie_event, healthie_practice, signed
from sqlalchemy import select
from werkzeug import Response

from service import practices
from service.persistence.tables import surveys, webhook_events
from service.web import create_app

LOW = {"bond": 1, "goals": 2, "approach": 1, "overall": 1, "tension": True, "tension_intensity": 4}
HIGH = {"bond": 9, "goals": 9, "approach": 9, "overall": 10, "tension": False}
PHONE = "+15551234567"


@pytest.fixture
def healthie(httpserver, clock):
    fake = HealthieGraphqlFake(HEALTHIE_KEY, today=lambda: clock().date())
    httpserver.expect_request("/graphql", method="POST").respond_with_handler(fake.handle)
    return fake


@pytest.fixture
def client(services, healthie, httpserver):
    document = practices.validate_document(healthie_practice(httpserver.url_for("/graphql")))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())
    return create_app(services=services).test_client()


def appointment(healthie, clock, appointment_id: str, status: str = "Occurred") -> None:
    healthie.appointments[appointment_id] = {
        "id": appointment_id,
        "pm_status": status,
        "length": 50,
        "date": (clock() - timedelta(hours=1)).isoformat(),
        "deleted_at": None,
        "user": {"id": "77", "email": None, "phone_number": PHONE},
        "attendees": [{"id": "77"}],
        "provider": {"id": "9"},
    }


def webhook(client, appointment_id, **options):
    body, headers = signed(healthie_event(appointment_id, **options))
    return client.post("/webhooks/northside/healthie", data=body, headers=headers)


def answer(client, channels, answers):
    token = channels["sms"].sent[-1].link.rsplit("/s/", 1)[1]
    return client.post(f"/api/v1/surveys/{token}/response", json={"answers": answers})


def session(client, healthie, channels, run_due, clock, appointment_id, answers):
    appointment(healthie, clock, appointment_id)
    assert webhook(client, appointment_id).status_code == 202
    run_due()
    assert channels["sms"].sent[-1].to == PHONE
    assert answer(client, channels, answers).status_code == 201
    run_due()
    clock.advance(days=7)


def test_webhook_to_survey_to_form_and_care_alert_to_repair(
    client, healthie, channels, run_due, clock
):
    session(client, healthie, channels, run_due, clock, "4321", LOW)
    [(_, group)] = healthie.form_answer_groups.items()
    assert (
        group["finished"] is True and group["user_id"] == "77" and group["appointment_id"] == "4321"
    )
    assert group["custom_module_form_id"] == "300" and group["external_id"].startswith("alliance-")
    answers = {a["custom_module_id"]: a["answer"] for a in group["form_answers"]}
    assert answers["303"] == "rupture" and answers["301"].startswith("Alliance ")
    [alert] = healthie.active_alerts("77")
    assert alert["priority"] == "HIGH" and "rupture" in alert["content"].lower()
    assert (
        alert["expires_on"] == (clock().date() - timedelta(days=7) + timedelta(days=21)).isoformat()
    )

    session(client, healthie, channels, run_due, clock, "4322", HIGH)
    session(client, healthie, channels, run_due, clock, "4323", HIGH)
    assert healthie.active_alerts("77") == []
    assert len(healthie.care_alerts) == 1 and len(healthie.form_answer_groups) == 3
    operations = healthie.operations()
    assert operations[0] == "allianceAppointment"
    assert {
        "allianceCreateFormAnswerGroup",
        "allianceCreateCareAlert",
        "allianceDeleteCareAlert",
    } <= set(operations)
    for sent in healthie.requests:
        assert sent["headers"]["Authorization"] == f"Basic {HEALTHIE_KEY}"


def test_a_no_show_then_occurred_gets_one_survey_and_repeats_are_duplicates(
    client, services, healthie, channels, run_due, clock
):
    appointment(healthie, clock, "5000", status="No-Show")
    assert webhook(client, "5000").status_code == 202
    run_due()
    assert channels["sms"].sent == []
    appointment(healthie, clock, "5000")
    assert webhook(client, "5000", changed=("pm_status", "pm_status_changed_at")).status_code == 202
    run_due()
    assert webhook(client, "5000", changed=("pm_status", "notes")).status_code == 202
    run_due()
    assert len(channels["sms"].sent) == 1
    with services.engine.begin() as conn:
        outcomes = [
            r.outcome
            for r in conn.execute(
                select(webhook_events.c.outcome).order_by(webhook_events.c.received_at)
            )
        ]
        assert conn.execute(select(surveys.c.session_id)).scalars().all() == ["5000"]
    assert sorted(outcomes) == ["duplicate-session", "ignored", "survey-scheduled"]


def test_healthie_down_while_reading_is_retried(
    client, services, healthie, channels, run_due, clock
):
    appointment(healthie, clock, "6000")
    healthie.fail_next(Response("unavailable", status=503))
    assert webhook(client, "6000").status_code == 202
    assert run_due() == [("event.process", "retry")]
    clock.advance(minutes=5)
    run_due()
    assert len(channels["sms"].sent) == 1


def test_a_write_healthie_refuses_is_dead_lettered(
    client, services, healthie, channels, run_due, clock
):
    appointment(healthie, clock, "7000")
    assert webhook(client, "7000").status_code == 202
    run_due()
    healthie.fail_next(
        {"message": "Custom module form is invalid"}, "allianceCreateFormAnswerGroup"
    )
    assert answer(client, channels, HIGH).status_code == 201
    assert run_due() == [("response.writeback", "dead")]
    assert healthie.form_answer_groups == {}
