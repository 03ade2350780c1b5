"""CDS Hooks 2.0 over HTTP with signed JWTs, on the whole loop: sessions are completed, surveys
answered and assessed as in production, and the cards the EHR gets follow the client's state —
none, info, rupture, unresolved, repaired, acknowledged (by feedback) — with no EHR call on the
request path."""

from __future__ import annotations

import json

import pytest
from cds_support import ENCOUNTER_START, PATIENT_VIEW, Ehr, client_key, hook_body, save_practice
from sqlalchemy import select

from service.persistence.tables import alert_actions, cds_feedback, clinician_states
from support import TEST_SECRET_KEY, answer_one_survey

PATIENT = "pat-17"
LOW = {"bond": 2, "goals": 1, "approach": 2, "overall": 1, "tension": True, "tension_intensity": 5}
HIGH = {"bond": 9, "goals": 9, "approach": 8, "overall": 9, "tension": False}
TOP = {"bond": 10, "goals": 10, "approach": 10, "overall": 10, "tension": False}
SMART_APP = {"client_id": "alliance-trend", "client_secret": "s3cret",
             "issuers": ["https://ehr.northside.test/fhir"]}


@pytest.fixture
def ehr(services):
    save_practice(services)
    return Ehr(services)


@pytest.fixture
def session(services, channels, run_due):
    """A completed session whose survey the client answers; assessed and written back."""
    count = iter(range(1, 100))

    def complete(answers: dict, patient_id: str = PATIENT) -> None:
        answer_one_survey(services, channels, run_due, answers,
                          session_id=f"enc-{patient_id}-{next(count)}", patient_id=patient_id)
        run_due()

    return complete


def test_discovery_lists_both_services_with_a_patient_prefetch(ehr):
    answer = ehr.discovery()
    assert answer.status_code == 200
    services = {s["id"]: s for s in answer.get_json()["services"]}
    assert {sid: s["hook"] for sid, s in services.items()} == {
        PATIENT_VIEW: "patient-view", ENCOUNTER_START: "encounter-start"}
    for service in services.values():
        assert service["prefetch"] == {"patient": "Patient/{{context.patientId}}"}
        assert service["title"] and service["description"]
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_a_patient_the_service_does_not_know_gets_no_cards(ehr):
    assert ehr.cards("never-seen") == []
    assert ehr.cards("never-seen", "encounter-start") == []


def test_a_returned_survey_gives_an_info_card(ehr, session):
    session(HIGH)
    (card,) = ehr.cards(PATIENT)
    assert card["indicator"] == "info"
    assert card["summary"].startswith("Alliance 35 of 40 on ")
    assert card["summary"].endswith("the first survey returned")
    session(HIGH | {"bond": 8})
    assert ehr.cards(PATIENT)[0]["summary"].endswith("down from 35")


def test_info_cards_can_be_switched_off(services, session):
    save_practice(services, info_cards=False)
    session(HIGH)
    assert Ehr(services).cards(PATIENT) == []


def test_a_rupture_gives_a_warning_card_on_both_hooks(ehr, session, fake_ehr):
    session(HIGH)
    session(LOW)
    calls_before = len(fake_ehr.calls)
    (card,) = ehr.cards(PATIENT)
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Alliance rupture after the session of ")
    assert len(card["summary"]) < 140
    assert "near the bottom of the scale" in card["detail"]
    assert "tension with the therapist" in card["detail"]
    assert card["source"]["label"] == "alliance-feedback"
    assert card["overrideReasons"][0]["code"] == "acknowledged"
    assert "links" not in card  # the practice has no SMART app
    assert ehr.cards(PATIENT, "encounter-start") == [card]
    assert len(fake_ehr.calls) == calls_before  # cards come from stored state only


def test_the_card_links_to_the_trend_app_when_the_practice_has_one(services, session):
    save_practice(services, smart_app=SMART_APP)
    session(LOW)
    (card,) = Ehr(services).cards(PATIENT)
    assert card["links"] == [{"label": "Alliance trend", "type": "smart",
                              "url": "https://surveys.test/smart/northside/launch"}]


def test_an_unresolved_rupture_is_critical(ehr, session):
    for answers in (LOW, LOW, LOW, LOW):
        session(answers)
    (card,) = ehr.cards(PATIENT)
    assert card["indicator"] == "critical"
    assert card["summary"].startswith("Unresolved alliance rupture, open since the session of")
    assert "not repaired 3 sessions after the rupture" in card["detail"]


def test_a_repaired_rupture_leaves_the_info_card(ehr, session):
    session(LOW)
    assert ehr.cards(PATIENT)[0]["indicator"] == "warning"
    session(TOP)
    (card,) = ehr.cards(PATIENT)
    assert card["indicator"] == "info"
    assert "looks repaired" in card["detail"]


def test_acknowledged_feedback_marks_the_rupture_acknowledged_once(ehr, session, services):
    session(LOW)
    (card,) = ehr.cards(PATIENT)
    comment = "Discussed with supervisor; raising it with the client on Tuesday"
    answer = ehr.feedback(card["uuid"], comment=comment)
    assert answer.status_code == 200
    assert answer.get_json() == {"stored": 1, "acknowledged": 1}
    with services.engine.connect() as conn:
        (action,) = conn.execute(select(alert_actions)).mappings().all()
        feedback = conn.execute(select(cds_feedback)).mappings().one()
    assert action["action"] == "acknowledge" and action["source"] == "cds-feedback"
    assert action["actor"] == "cds-client:https://ehr.northside.test/fhir"
    assert action["at"] == services.clock()
    assert comment not in json.dumps(dict(feedback), default=str)  # sealed at rest
    assert services.vault.open(action["note"]) == {"text": comment}  # as client data is
    assert services.vault.open(feedback["comment"]) == {"text": comment}
    (after,) = ehr.cards(PATIENT)
    assert after["indicator"] == "info" and after["summary"].startswith("Acknowledged: ")
    assert "Acknowledged by a clinician in the EHR" in after["detail"]
    assert "overrideReasons" not in after


def test_a_repeated_feedback_delivery_adds_nothing(ehr, session, services):
    session(LOW)
    (card,) = ehr.cards(PATIENT)
    for _ in range(2):
        assert ehr.feedback(card["uuid"]).status_code == 200
    with services.engine.connect() as conn:
        assert len(conn.execute(select(alert_actions)).all()) == 1
        assert len(conn.execute(select(cds_feedback)).all()) == 1


def test_an_acknowledged_rupture_that_turns_unresolved_is_critical_again(ehr, session, clock):
    session(LOW)
    (card,) = ehr.cards(PATIENT)
    ehr.feedback(card["uuid"])
    assert ehr.cards(PATIENT)[0]["indicator"] == "info"
    for answers in (LOW, LOW, LOW):
        clock.advance(days=7)
        session(answers)
    (unresolved,) = ehr.cards(PATIENT)
    assert unresolved["indicator"] == "critical" and unresolved["uuid"] != card["uuid"]
    assert ehr.feedback(card["uuid"]).get_json() == {"stored": 1, "acknowledged": 0}
    assert ehr.cards(PATIENT)[0]["indicator"] == "critical"  # an old card acknowledges nothing


def test_other_feedback_is_stored_without_acknowledging(ehr, session, services):
    session(LOW)
    (card,) = ehr.cards(PATIENT)
    assert ehr.feedback(card["uuid"], outcome="accepted").get_json() == {
        "stored": 1, "acknowledged": 0}
    assert ehr.feedback(card["uuid"], reason_code="not-relevant").get_json()["acknowledged"] == 0
    assert ehr.feedback("9368d37b-283f-44a0-93ea-547cebab93ed").get_json() == {
        "stored": 1, "acknowledged": 0}
    assert ehr.cards(PATIENT)[0]["indicator"] == "warning"
    with services.engine.connect() as conn:
        assert len(conn.execute(select(cds_feedback)).all()) == 3


def test_the_specs_feedback_example_is_accepted(ehr):
    from support import PAYLOADS

    body = json.loads((PAYLOADS / "cds-hooks" / "feedback-overridden-with-reason.json").read_text())
    call = _signed(ehr, PATIENT_VIEW, "/feedback")
    answer = ehr.client.post(call[0], headers=call[1], json=body)
    assert answer.status_code == 200 and answer.get_json() == {"stored": 1, "acknowledged": 0}


def test_the_specs_request_example_is_accepted(ehr):
    from support import PAYLOADS

    body = json.loads((PAYLOADS / "cds-hooks" / "patient-view-request.json").read_text())
    path, headers = _signed(ehr, PATIENT_VIEW)
    answer = ehr.client.post(path, headers=headers, json=body)
    assert answer.status_code == 200 and answer.get_json() == {"cards": []}


def _signed(ehr: Ehr, service_id: str, suffix: str = "") -> tuple[str, dict]:
    from service.clinician.cds_client import sign_cds_jwt

    url = ehr.url(service_id) + suffix
    raw = sign_cds_jwt(client_key("ES384"), iss=ehr.iss, aud=url, now=ehr.services.clock())
    return url[len(ehr.base):], {"Authorization": f"Bearer {raw}"}


@pytest.mark.parametrize("body, status, field", [
    (hook_body(hook="encounter-start"), 422, "hook"),
    (hook_body(hook="order-sign"), 422, "hook"),
    ({"hook": "patient-view", "hookInstance": "x", "context": {}}, 422, "context.patientId"),
    ({"hook": "patient-view", "context": {"patientId": "p"}}, 422, "hookInstance"),
    (hook_body(patient_id="x" * 201), 422, "context.patientId"),
    (hook_body(patient_id="pat\n17"), 422, "context.patientId"),
    ([1, 2], 422, "(body)"),
])
def test_a_bad_hook_request_is_refused_naming_the_field(ehr, body, status, field):
    path, headers = _signed(ehr, PATIENT_VIEW)
    answer = ehr.client.post(path, headers=headers, json=body)
    assert answer.status_code == status and answer.mimetype == "application/problem+json"
    assert field in answer.get_json()["errors"]


def test_a_body_that_is_not_json_is_refused(ehr):
    path, headers = _signed(ehr, PATIENT_VIEW)
    answer = ehr.client.post(path, headers={**headers, "Content-Type": "application/json"},
                             data=b"{not json")
    assert answer.status_code == 400
    path, headers = _signed(ehr, PATIENT_VIEW)
    answer = ehr.client.post(path, headers=headers, data=b"hook=patient-view")
    assert answer.status_code == 415


def test_an_unknown_service_is_404_once_authenticated(ehr):
    path, headers = _signed(ehr, "order-echo")
    answer = ehr.client.post(path, headers=headers, json=hook_body())
    assert answer.status_code == 404 and "alliance-patient-view" in answer.get_json()["detail"]


def test_a_bad_feedback_is_refused_naming_the_field(ehr):
    path, headers = _signed(ehr, PATIENT_VIEW, "/feedback")
    answer = ehr.client.post(path, headers=headers, json={"feedback": [
        {"card": "c", "outcome": "ignored", "outcomeTimestamp": "2026-11-26T15:00:00Z"}]})
    assert answer.status_code == 422 and "feedback.0.outcome" in answer.get_json()["errors"]


def test_the_state_is_recomputed_by_the_rebuild_command_as_by_the_assessment(
        ehr, session, services):
    from service.clinician.clinician_state import refresh_all

    session(LOW)
    with services.engine.begin() as conn:
        before = dict(conn.execute(select(clinician_states)).mappings().one())
        conn.execute(clinician_states.delete())
        assert refresh_all(conn, before["updated_at"]) == 1
        after = dict(conn.execute(select(clinician_states)).mappings().one())
    assert after == before


def test_hook_logs_hold_ids_only(services, session, capsys):
    from service.web import create_app

    save_practice(services)
    session(LOW)
    ehr = Ehr(services, app=create_app(services=services))
    capsys.readouterr()
    (card,) = ehr.cards(PATIENT)
    ehr.feedback(card["uuid"], comment="private words about the client")
    logged = capsys.readouterr().out
    assert '"cards": ["warning"]' in logged
    for secret in (PATIENT, "private words", "near the bottom", card["uuid"]):
        assert secret not in logged


def test_the_refresh_command_rebuilds_the_card_state(ehr, session, services, database, tmp_path):
    from click.testing import CliRunner

    from service.cli import main

    session(LOW)
    with services.engine.begin() as conn:
        conn.execute(clinician_states.delete())
    assert ehr.cards(PATIENT) == []
    env = {"ALLIANCE_DATABASE_URL": database[0],
           "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY,
           "ALLIANCE_VAR_DIR": str(tmp_path / "cli-var"), "ALLIANCE_LOG_FORMAT": "console"}
    done = CliRunner().invoke(main, ["clinician", "refresh", "--practice", "northside"], env=env)
    assert done.exit_code == 0, done.output
    assert "refreshed 1 client(s)" in done.output
    assert ehr.cards(PATIENT)[0]["indicator"] == "warning"


@pytest.mark.parametrize("bad", ["card\x00", "card\udb20", "card\n"])
def test_feedback_that_cannot_be_stored_is_refused_not_a_server_error(ehr, bad):
    """Found by schemathesis: PostgreSQL refuses NUL in text, SQLite a lone surrogate."""
    path, headers = _signed(ehr, PATIENT_VIEW, "/feedback")
    items = [{"card": bad, "outcome": "accepted", "outcomeTimestamp": "2026-11-26T15:00:00Z"},
             {"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-26T15:00:00Z",
              "overrideReason": {"reason": {"code": bad}}, "acceptedSuggestions": [{"id": bad}]}]
    answer = ehr.client.post(path, headers=headers, json={"feedback": items})
    assert answer.status_code == 422
    assert {"feedback.0.card", "feedback.1.overrideReason.reason.code",
            "feedback.1.acceptedSuggestions.0.id"} <= set(answer.get_json()["errors"])


def test_a_patient_id_that_cannot_be_looked_up_is_refused(ehr):
    path, headers = _signed(ehr, PATIENT_VIEW)
    answer = ehr.client.post(path, headers=headers, json=hook_body(patient_id="pat\udb20"))
    assert answer.status_code == 422 and "context.patientId" in answer.get_json()["errors"]


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_a_feedback_time_off_the_calendar_is_refused(ehr, when):
    path, headers = _signed(ehr, PATIENT_VIEW, "/feedback")
    answer = ehr.client.post(path, headers=headers, json={"feedback": [
        {"card": "c", "outcome": "accepted", "outcomeTimestamp": when}]})
    assert answer.status_code == 422
    assert "feedback.0.outcomeTimestamp" in answer.get_json()["errors"]


def test_every_hook_call_is_in_the_audit_log_with_the_user_the_ehr_names(ehr, session, services):
    from service.persistence.queries import audit

    session(LOW)
    (card,) = ehr.cards(PATIENT)
    assert ehr.cards("never-seen") == []
    with services.engine.begin() as conn:
        rows = audit.recent(conn, "northside", None, None, 10)
    assert sorted((r["patient_id"], r["actor"], r["channel"], r["what"], r["ref"])
                  for r in rows) == [
        ("never-seen", f"Practitioner/demo via cds-client:{ehr.iss}", "cds", "cards", None),
        (PATIENT, f"Practitioner/demo via cds-client:{ehr.iss}", "cds", "cards", card["uuid"])]


def test_feedback_acknowledging_an_escalated_rupture_completes_its_task(services, session,
                                                                        clock, fake_ehr, run_due):
    from service.handlers.escalation import schedule_completions

    save_practice(services, alerts={"escalate_after_hours": 1, "escalate_to": "Practitioner/s1"})
    ehr = Ehr(services)
    for answers in (LOW, LOW, LOW, LOW):
        session(answers)
    clock.advance(hours=1, seconds=1)
    assert ("escalation.due", "done") in run_due()
    [task] = fake_ehr.resources("Task")
    assert task["status"] == "requested" and task["owner"] == {"reference": "Practitioner/s1"}

    (card,) = ehr.cards(PATIENT)
    assert ehr.feedback(card["uuid"]).get_json() == {"stored": 1, "acknowledged": 1}
    assert schedule_completions(services) == 1
    assert run_due() == [("escalation.complete", "done")]
    assert fake_ehr.resources("Task")[0]["status"] == "completed"
