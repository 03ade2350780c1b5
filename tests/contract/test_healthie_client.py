"""The Healthie GraphQL client against the tests' own Healthie (tests/healthie_graphql.py: a
schema built from Healthie's documented shapes, executed by graphql-core, behind
pytest-httpserver): auth headers, operation names and variables, and every failure mapped onto
the EHR error classes."""

from __future__ import annotations

import pytest
from healthie_graphql import HealthieGraphqlFake
from werkzeug import Response

from integrations.ehr.errors import (
    EhrAuthError,
    EhrNotFound,
    EhrPermanentError,
    EhrTransientError,
)
from integrations.healthie.client import HealthieGraphqlClient, build_healthie_api
from support import loopback_network

KEY = "gh_sbox_test-key"


@pytest.fixture
def fake(httpserver):
    fake = HealthieGraphqlFake(KEY)
    httpserver.expect_request("/graphql", method="POST").respond_with_handler(fake.handle)
    return fake


@pytest.fixture
def api(httpserver, fake):
    return build_healthie_api({"api_url": httpserver.url_for("/graphql"), "api_key": KEY},
                              loopback_network())


def test_every_call_carries_the_api_key_and_the_api_source(api, fake):
    api.appointment("1")
    [sent] = fake.requests
    assert sent["headers"]["Authorization"] == f"Basic {KEY}"
    assert sent["headers"]["Authorizationsource"] == "API"
    assert sent["headers"]["Content-Type"] == "application/json"


def test_the_appointment_read_asks_for_the_fields_of_the_completion_rule(api, fake):
    fake.appointments["4321"] = {
        "id": "4321",
        "pm_status": "Occurred",
        "date": "2026-11-26T15:00:00-06:00",
        "length": 50,
        "user": {"id": "77", "email": "client@example.org", "phone_number": "+15551234567"},
        "attendees": [{"id": "77"}],
        "provider": {"id": "9"},
    }
    appointment = api.appointment(4321)
    assert appointment["pm_status"] == "Occurred" and appointment["user"]["id"] == "77"
    assert appointment["provider"] == {"id": "9"} and appointment["length"] == 50
    [sent] = fake.requests
    assert sent["operation"] == "allianceAppointment" and sent["variables"] == {"id": 4321}
    assert api.appointment("404") is None


def test_form_answer_group_lookup_and_create_use_external_id(api, fake):
    assert api.form_answer_group_id("alliance-r1") is None
    created = api.create_form_answer_group(
        {
            "user_id": "77",
            "custom_module_form_id": "300",
            "finished": True,
            "external_id": "alliance-r1",
            "appointment_id": "4321",
            "name": "x",
            "form_answers": [{"custom_module_id": "301", "answer": "27"}],
        }
    )
    assert api.form_answer_group_id("alliance-r1") == created
    assert fake.form_answer_groups[created]["finished"] is True
    assert [r["operation"] for r in fake.requests] == [
        "allianceFormAnswerGroup",
        "allianceCreateFormAnswerGroup",
        "allianceFormAnswerGroup",
    ]
    assert fake.requests[1]["variables"]["input"]["external_id"] == "alliance-r1"


def test_care_alerts_create_list_update_delete(api, fake):
    alert_id = api.create_care_alert(
        {
            "patient_id": "77",
            "content": "Alliance rupture",
            "priority": "HIGH",
            "expires_on": "2099-01-01",
        }
    )
    assert api.active_care_alerts("77") == [{"id": alert_id, "content": "Alliance rupture"}]
    api.update_care_alert({"id": alert_id, "content": "Still strained", "expires_on": "2099-02-01"})
    assert fake.care_alerts[alert_id]["content"] == "Still strained"
    assert fake.care_alerts[alert_id]["priority"] == "HIGH"
    api.delete_care_alert(alert_id)
    assert api.active_care_alerts("77") == []
    with pytest.raises(EhrNotFound):
        api.delete_care_alert(alert_id)


def test_every_page_of_care_alerts_is_read(api, fake):
    for number in range(130):
        fake.care_alerts[str(number)] = {
            "patient_id": "77",
            "content": f"a{number}",
            "priority": "NORMAL",
            "deleted_at": None,
        }
    assert len(api.active_care_alerts("77")) == 130
    assert fake.operations() == ["allianceCareAlerts", "allianceCareAlerts"]
    assert fake.requests[1]["variables"]["after"] == "100"


@pytest.mark.parametrize(
    "answer, error",
    [
        (Response("busy", status=503), EhrTransientError),
        (Response("slow down", status=429, headers={"Retry-After": "7"}), EhrTransientError),
        (Response("no", status=401), EhrAuthError),
        (Response("<html>proxy</html>", status=200, mimetype="text/html"), EhrTransientError),
        (
            {"message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}},
            EhrTransientError,
        ),
        (
            {"message": "You are not authorized", "extensions": {"code": "UNAUTHENTICATED"}},
            EhrAuthError,
        ),
        ({"message": "Variable $input is invalid"}, EhrPermanentError),
    ],
)
def test_failures_map_onto_transient_and_permanent(api, fake, answer, error):
    fake.fail_next(answer)
    with pytest.raises(error) as raised:
        api.create_care_alert({"patient_id": "77", "content": "x", "priority": "HIGH"})
    if isinstance(answer, dict):  # a GraphQL error: HTTP 200, the message kept
        assert answer["message"] in str(raised.value)
    if error is EhrTransientError and isinstance(answer, Response) and answer.status_code == 429:
        assert raised.value.retry_after == 7


def test_a_wrong_key_is_an_auth_error_not_a_retry(httpserver, fake):
    api = HealthieGraphqlClient(httpserver.url_for("/graphql"), "wrong-key",
                                network=loopback_network())
    with pytest.raises(EhrAuthError):
        api.appointment("1")


def test_field_messages_of_a_mutation_are_a_permanent_refusal(api, fake):
    with pytest.raises(EhrPermanentError, match="custom_module_form_id: can't be blank") as raised:
        api.create_form_answer_group({"user_id": "77", "finished": True})
    assert not isinstance(raised.value, EhrNotFound)
    assert fake.form_answer_groups == {}


def test_an_unreachable_api_is_transient():
    api = HealthieGraphqlClient("http://127.0.0.1:9/graphql", KEY, timeout=(0.5, 0.5),
                                network=loopback_network())
    with pytest.raises(EhrTransientError):
        api.appointment("1")


def test_a_section_without_key_is_refused():
    with pytest.raises(ValueError, match="api_key"):
        build_healthie_api({"api_url": "https://api.gethealthie.com/graphql"})


def test_the_fake_refuses_fields_the_documented_schema_lacks(api, fake):
    # What keeps the client's queries honest: a misspelt field fails here as on Healthie.
    with pytest.raises(EhrPermanentError, match="Cannot query field 'status'"):
        api.execute("bad", "query bad($id: ID) { appointment(id: $id) { id status } }", {"id": "1"})
