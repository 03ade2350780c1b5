"""The demo FHIR store takes the alert documents (alerts.write document) and lets a newcomer
open their PDF: the real record writer over HTTP, the index's PDF links, the PDF served as
application/pdf, and clear refusals for what holds no PDF."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime

import pytest
from alert_history import RUPTURE_STORY, replay
from fhir.resources.R4B.documentreference import DocumentReference
from flask import Flask
from pypdf import PdfReader
from werkzeug.serving import make_server

from integrations.ehr.auth import NoAuth
from integrations.ehr.fhir_client import FhirGateway
from integrations.ehr.records import AlertDocument, AllianceRecord
from integrations.ehr.writer import AllianceRecordWriter
from service.clinician.trend_pdf import AlertFacts, render_trend_pdf
from service.web.demo_fhir import create_demo_fhir_blueprint
from support import loopback_network

CREATED = datetime(2026, 4, 7, 15, 30, tzinfo=UTC)
RECORD = AllianceRecord(
    practice_id="demo", patient_id="pat-17", session_id="enc-6", response_id="resp-6",
    instrument_url="https://alliance-feedback.org/fhir/Questionnaire/brief-alliance-check",
    instrument_version="1.0.0", instrument_title="Brief Alliance Check", authored=CREATED,
    answers=(), total=19, total_max=40, subscales={}, pomp=47.5, decision="rupture",
    reasons=(), interpretation="low")


@pytest.fixture
def app(tmp_path) -> Flask:
    app = Flask(__name__)
    app.register_blueprint(create_demo_fhir_blueprint(tmp_path / "fhir"), url_prefix="/demo/fhir")
    return app


@pytest.fixture
def gateway(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FhirGateway(f"http://127.0.0.1:{server.server_port}/demo/fhir", NoAuth(),
                      network=loopback_network())
    server.shutdown()
    thread.join()


def a_document(number: int, state: str, replaces: str | None = None) -> AlertDocument:
    trend, rows = replay(RUPTURE_STORY)
    facts = AlertFacts(state, "Alliance rupture: the alliance total fell", "enc-6",
                       rows[5].reasons, CREATED, "America/Chicago")
    return AlertDocument(f"ep-1.{number}", "Therapeutic alliance report", facts.title,
                         render_trend_pdf(trend, facts), CREATED, replaces)


def test_documents_are_stored_replaced_and_their_pdf_opens(app, gateway):
    writer = AllianceRecordWriter(gateway)
    first = writer.write_document(RECORD, a_document(1, "open"))
    assert writer.write_document(RECORD, a_document(1, "open")) == first, "found, not copied"
    second = writer.write_document(RECORD, a_document(2, "repaired", replaces=first.id))
    writer.supersede_document(first)

    old, new = gateway.read("DocumentReference", first.id), gateway.read("DocumentReference",
                                                                         second.id)
    for resource in (old, new):
        DocumentReference.model_validate(resource)
    assert (old["status"], old["meta"]["versionId"], new["status"]) == ("superseded", "2",
                                                                         "current")
    client = app.test_client()
    page = client.get("/demo/fhir/").get_data(as_text=True)
    assert f"replaces DocumentReference/{first.id}" in page
    link = f"/demo/fhir/DocumentReference/{second.id}/_history/1/pdf"
    assert f'href="{link}"' in page

    served = client.get(link)
    assert served.status_code == 200 and served.mimetype == "application/pdf"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Disposition"].startswith("inline")
    reader = PdfReader(io.BytesIO(served.data))
    assert len(reader.pages) == 1
    assert "Alliance rupture repaired" in reader.pages[0].extract_text()


def post(client, resource: dict) -> dict:
    response = client.post(f"/demo/fhir/{resource['resourceType']}", data=json.dumps(resource),
                           headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 201
    return response.get_json(force=True)


@pytest.mark.parametrize(("attachment", "status", "says"), [
    ({"contentType": "text/plain", "data": "aGk="}, 404, "no inline PDF"),
    ({"contentType": "application/pdf", "url": "https://elsewhere.example/a.pdf"}, 404,
     "no inline PDF"),
    ({"contentType": "application/pdf", "data": "not base64!"}, 422, "not base64"),
])
def test_what_holds_no_pdf_is_refused_with_an_operation_outcome(app, attachment, status, says):
    client = app.test_client()
    stored = post(client, {"resourceType": "DocumentReference", "status": "current",
                           "content": [{"attachment": attachment}]})

    answer = client.get(f"/demo/fhir/DocumentReference/{stored['id']}/_history/1/pdf")

    assert answer.status_code == status
    outcome = answer.get_json(force=True)
    assert outcome["resourceType"] == "OperationOutcome"
    assert says in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize("path", ["DocumentReference/nope/_history/1/pdf",
                                  "DocumentReference/bad id!/_history/1/pdf",
                                  "DocumentReference/x/_history/one/pdf"])
def test_unknown_documents_and_versions_are_not_found(app, path):
    assert app.test_client().get(f"/demo/fhir/{path}").status_code == 404
