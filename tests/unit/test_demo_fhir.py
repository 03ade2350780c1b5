"""The demo FHIR store: FHIR interactions over Flask's test client, the HTML index, and the
real FhirGateway + record writer against it over HTTP."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from flask import Flask
from werkzeug.serving import make_server

from integrations.ehr.auth import NoAuth
from integrations.ehr.errors import EhrConflict
from integrations.ehr.fhir_client import FhirGateway
from integrations.ehr.writer import AllianceRecord, AllianceRecordWriter, AnswerItem
from service.web.demo_fhir import create_demo_fhir_blueprint
from support import loopback_network

FHIR_JSON = "application/fhir+json"
IDENTIFIER = "https://alliance-feedback.org/fhir/sid/flag|ep-1"
FLAG = {
    "resourceType": "Flag",
    "identifier": [{"system": "https://alliance-feedback.org/fhir/sid/flag", "value": "ep-1"}],
    "status": "active",
    "code": {"text": "Alliance rupture: <bond> fell from 9 to 5"},
    "subject": {"reference": "Patient/pat-17"},
}


@pytest.fixture
def app(tmp_path) -> Flask:
    app = Flask(__name__)
    app.register_blueprint(create_demo_fhir_blueprint(tmp_path / "fhir"), url_prefix="/demo/fhir")
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def post(client, resource: dict, condition: str | None = None):
    headers = {"Content-Type": FHIR_JSON}
    if condition:
        headers["If-None-Exist"] = condition
    return client.post(
        f"/demo/fhir/{resource['resourceType']}", data=json.dumps(resource), headers=headers
    )


def test_create_stores_version_1_with_location_and_etag(client, tmp_path):
    response = post(client, FLAG)

    assert response.status_code == 201
    assert response.content_type == FHIR_JSON
    created = response.get_json(force=True)
    assert created["meta"]["versionId"] == "1"
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"] == (
        f"http://localhost/demo/fhir/Flag/{created['id']}/_history/1"
    )
    assert (tmp_path / "fhir" / "Flag" / created["id"] / "1.json").is_file()


def test_conditional_create_returns_the_existing_resource(client):
    first = post(client, FLAG, condition=f"identifier={IDENTIFIER}").get_json(force=True)

    again = post(client, FLAG, condition=f"identifier={IDENTIFIER}")

    assert again.status_code == 200
    assert again.get_json(force=True)["id"] == first["id"]
    bundle = client.get("/demo/fhir/Flag", query_string={"identifier": IDENTIFIER}).get_json(
        force=True
    )
    assert bundle["total"] == 1


def test_read_and_version_aware_update(client):
    created = post(client, FLAG).get_json(force=True)
    url = f"/demo/fhir/Flag/{created['id']}"
    resolved = {**created, "status": "inactive"}

    stale = client.put(url, data=json.dumps(resolved), headers={"If-Match": 'W/"7"'})
    fresh = client.put(url, data=json.dumps(resolved), headers={"If-Match": 'W/"1"'})

    assert stale.status_code == 412
    assert stale.get_json(force=True)["resourceType"] == "OperationOutcome"
    assert fresh.status_code == 200
    assert fresh.headers["ETag"] == 'W/"2"'
    current = client.get(url)
    assert current.get_json(force=True)["status"] == "inactive"
    assert current.headers["ETag"] == 'W/"2"'
    first = client.get(f"{url}/_history/1").get_json(force=True)
    assert first["status"] == "active"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/demo/fhir/Flag/unknown-id", None, 404),
        ("get", "/demo/fhir/Flag/x/_history/9", None, 404),
        ("get", "/demo/fhir/Flag/a%20b", None, 404),
        ("get", "/demo/fhir/Flag/" + "x" * 65, None, 404),
        ("get", "/demo/fhir/flag/x", None, 404),
        ("post", "/demo/fhir/Flag", "not json", 400),
        ("post", "/demo/fhir/Flag", json.dumps({"resourceType": "Observation"}), 400),
        ("put", "/demo/fhir/Flag/other", json.dumps({**FLAG, "id": "f1"}), 400),
        ("get", "/demo/fhir/Flag?status=active", None, 400),
    ],
)
def test_refusals_are_operation_outcomes(client, method, path, body, status):
    response = getattr(client, method)(path, data=body)

    assert response.status_code == status
    assert response.get_json(force=True)["resourceType"] == "OperationOutcome"


def test_any_patient_is_a_synthetic_demo_patient(client):
    response = client.get("/demo/fhir/Patient/pat-17")

    patient = response.get_json(force=True)
    Patient.model_validate(patient)
    assert patient["id"] == "pat-17"
    phones = [t["value"] for t in patient["telecom"] if t["system"] == "phone"]
    assert phones == ["+15555550100"]


def test_the_index_lists_what_was_written(client):
    flag = post(client, FLAG).get_json(force=True)
    client.put(
        f"/demo/fhir/Flag/{flag['id']}",
        data=json.dumps({**flag, "status": "inactive"}),
    )

    page = client.get("/demo/fhir/").get_data(as_text=True)

    assert "This is a demo, not an EHR" in page
    assert flag["id"] in page
    assert "inactive: Alliance rupture: &lt;bond&gt; fell from 9 to 5" in page, "escaped"
    assert f"/demo/fhir/Flag/{flag['id']}/_history/1" in page
    assert f"/demo/fhir/Flag/{flag['id']}/_history/2" in page


def test_the_index_says_when_nothing_was_written(client):
    assert "Nothing has been written yet" in client.get("/demo/fhir/").get_data(as_text=True)


def test_metadata_is_a_capability_statement(client):
    statement = client.get("/demo/fhir/metadata").get_json(force=True)

    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"


@pytest.fixture
def served_gateway(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FhirGateway(f"http://127.0.0.1:{server.server_port}/demo/fhir", NoAuth(),
                      network=loopback_network())
    server.shutdown()
    thread.join()


def make_record(response_id: str, session_id: str, total: float) -> AllianceRecord:
    return AllianceRecord(
        practice_id="demo",
        patient_id="pat-17",
        session_id=session_id,
        response_id=response_id,
        instrument_url="https://alliance-feedback.org/fhir/Questionnaire/brief-alliance-check",
        instrument_version="1.0.0",
        instrument_title="Brief Alliance Check",
        authored=datetime(2026, 11, 26, 15, 30, tzinfo=timezone.utc),
        answers=(AnswerItem("bond", "Item one", int(total)),),
        total=total,
        total_max=10.0,
        subscales={"bond": total},
        pomp=total * 10,
        decision="none",
        reasons=(),
        interpretation="low" if total < 4 else None,
    )


def test_the_writer_over_http_against_the_demo_store(served_gateway, client):
    writer = AllianceRecordWriter(served_gateway)
    low = make_record("r1", "s1", total=3)

    scores = writer.write_scores(low)
    assert writer.write_scores(low) == scores, "a replay finds the same resources"
    flag = writer.raise_flag(low, "Alliance rupture: bond at 3 of 10", episode_id="ep-1")
    assert writer.raise_flag(low, "Alliance rupture: bond at 3 of 10", "ep-1") == flag
    unresolved = writer.update_flag_text(flag, "Unresolved: bond still at 3 of 10")
    resolved = writer.resolve_flag(unresolved, low.authored + timedelta(days=14))

    assert (flag.version_id, unresolved.version_id, resolved.version_id) == ("1", "2", "3")
    QuestionnaireResponse.model_validate(
        served_gateway.read("QuestionnaireResponse", scores.questionnaire_response_id)
    )
    Observation.model_validate(served_gateway.read("Observation", scores.observation_id))
    stored_flag = served_gateway.read("Flag", flag.id)
    Flag.model_validate(stored_flag)
    assert stored_flag["status"] == "inactive"
    assert stored_flag["code"]["text"] == "Unresolved: bond still at 3 of 10"
    assert len(served_gateway.search("Flag", {})) == 1
    with pytest.raises(EhrConflict):
        served_gateway.update(stored_flag, if_match="1")


def test_the_demo_store_takes_the_escalation_task_and_lists_it(served_gateway, client):
    from fhir.resources.R4B.task import Task

    from integrations.ehr.records import TaskRequest

    writer = AllianceRecordWriter(served_gateway)
    when = datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc)
    request = TaskRequest("escalation", "ep-1", "pat-17", "Unresolved alliance rupture",
                          "Practitioner/demo-supervisor", "flag-1", when)
    task = writer.create_task(request)
    assert writer.create_task(request) == task, "a retry finds the same Task"
    done = writer.complete_task(task, when + timedelta(hours=1))

    stored = served_gateway.read("Task", task.id)
    Task.model_validate(stored)
    assert (stored["status"], done.version_id) == ("completed", "2")
    page = client.get("/demo/fhir/").get_data(as_text=True)
    assert ("completed: Review therapeutic alliance rupture (Practitioner/demo-supervisor)"
            in page)
