"""The alert document's writes (alerts.write document) against an EHR played by
pytest-httpserver: the conditional create, the replace on repair (the new document relates to
the old, the old is set superseded with If-Match), a 412 re-read and retried, a refusal raised
with what the EHR said. Every DocumentReference sent validates as FHIR R4."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.documentreference import DocumentReference
from pypdf import PdfReader
from werkzeug import Response

from integrations.ehr.auth import NoAuth
from integrations.ehr.errors import EhrConflict, EhrPermanentError
from integrations.ehr.fhir_client import FhirGateway
from integrations.ehr.records import AlertDocument, AllianceRecord, DocumentRef
from integrations.ehr.writer import AllianceRecordWriter
from support import loopback_network

FHIR_JSON = "application/fhir+json"
SYSTEM = "https://alliance-feedback.org/fhir/sid/document-reference"
CREATED = datetime(2026, 4, 7, 15, 30, tzinfo=UTC)
OUTCOME = {"resourceType": "OperationOutcome", "issue": [
    {"severity": "error", "code": "invalid", "diagnostics": "context.encounter is not known",
     "expression": ["DocumentReference.context.encounter[0]"]}]}


def a_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text="Alliance rupture: bond fell from 9 to 4")
    return bytes(pdf.output())


PDF = a_pdf()
RECORD = AllianceRecord(
    practice_id="northside", patient_id="pat-17", session_id="enc-6", response_id="resp-6",
    instrument_url="https://alliance-feedback.org/fhir/Questionnaire/brief-alliance-check",
    instrument_version="1.0.0", instrument_title="Brief Alliance Check", authored=CREATED,
    answers=(), total=19, total_max=40, subscales={"bond": 4}, pomp=47.5, decision="rupture",
    reasons=("bond fell from 10 to 4",), interpretation="low")


def document(number: int = 1, replaces: str | None = None) -> AlertDocument:
    return AlertDocument(identifier=f"ep-1.{number}", title="Therapeutic alliance report",
                         description="Alliance rupture: bond fell from 9 to 4", pdf=PDF,
                         created=CREATED, replaces=replaces)


@pytest.fixture
def writer(httpserver) -> AllianceRecordWriter:
    gateway = FhirGateway(httpserver.url_for("/fhir"), NoAuth(), network=loopback_network())
    return AllianceRecordWriter(gateway)


def stored(resource_id: str, version: str, **changes) -> dict:
    return {"resourceType": "DocumentReference", "id": resource_id,
            "meta": {"versionId": version}, "status": "current", "docStatus": "final",
            "subject": {"reference": "Patient/pat-17"},
            "content": [{"attachment": {"contentType": "application/pdf"}}], **changes}


def sent(httpserver, index: int = -1) -> tuple[object, dict]:
    request = httpserver.log[index][0]
    return request, json.loads(request.get_data())


def test_the_document_is_created_once_with_if_none_exist_and_validates_as_r4(httpserver, writer):
    httpserver.expect_request("/fhir/DocumentReference", method="POST").respond_with_json(
        stored("doc-1", "1"), status=201)

    written = writer.write_document(RECORD, document())

    assert written == DocumentRef("doc-1", "1", "ep-1.1")
    request, body = sent(httpserver)
    assert request.headers["If-None-Exist"] == f"identifier={SYSTEM}|ep-1.1"
    DocumentReference.model_validate(body)
    assert (body["status"], body["docStatus"]) == ("current", "final")
    assert body["identifier"] == [{"system": SYSTEM, "value": "ep-1.1"}]
    assert body["type"]["coding"] == [{"system": "http://loinc.org", "code": "34904-3",
                                       "display": "Mental health Progress note"}]
    assert body["category"][0]["coding"][0]["code"] == "clinical-note"
    assert body["subject"] == {"reference": "Patient/pat-17"}
    assert body["context"] == {"encounter": [{"reference": "Encounter/enc-6"}]}
    assert body["date"] == "2026-04-07T15:30:00Z" and "relatesTo" not in body
    attachment = body["content"][0]["attachment"]
    data = base64.b64decode(attachment["data"])
    assert (attachment["contentType"], attachment["creation"]) == ("application/pdf",
                                                                   "2026-04-07T15:30:00Z")
    assert attachment["title"] == "Therapeutic alliance report"
    assert attachment["size"] == len(data)
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert "bond fell from 9 to 4" in PdfReader(io.BytesIO(data)).pages[0].extract_text()


def test_a_retried_job_finds_the_document_instead_of_duplicating_it(httpserver, writer):
    # The EHR already holds ep-1.1: a conditional create answers 200 with it, nothing new.
    httpserver.expect_request("/fhir/DocumentReference", method="POST",
                              headers={"If-None-Exist": f"identifier={SYSTEM}|ep-1.1"}
                              ).respond_with_json(stored("doc-1", "1"), status=200)

    assert writer.write_document(RECORD, document()) == DocumentRef("doc-1", "1", "ep-1.1")
    assert len(httpserver.log) == 1


def test_on_repair_the_new_document_replaces_the_old_which_is_superseded(httpserver, writer):
    httpserver.expect_ordered_request("/fhir/DocumentReference", method="POST").respond_with_json(
        stored("doc-2", "1"), status=201)
    httpserver.expect_ordered_request("/fhir/DocumentReference/doc-1", method="GET"
                                      ).respond_with_json(stored("doc-1", "1"))
    httpserver.expect_ordered_request("/fhir/DocumentReference/doc-1", method="PUT",
                                      headers={"If-Match": 'W/"1"'}).respond_with_json(
        stored("doc-1", "2", status="superseded"))

    new = writer.write_document(RECORD, document(2, replaces="doc-1"))
    old = writer.supersede_document(DocumentRef("doc-1", "1", "ep-1.1"))

    _, created = sent(httpserver, 0)
    DocumentReference.model_validate(created)
    assert created["relatesTo"] == [{"code": "replaces",
                                     "target": {"reference": "DocumentReference/doc-1"}}]
    assert created["identifier"][0]["value"] == "ep-1.2"
    _, superseded = sent(httpserver, 2)
    DocumentReference.model_validate(superseded)
    assert superseded == {**stored("doc-1", "1"), "status": "superseded"}
    assert (new.id, old.version_id) == ("doc-2", "2")


def test_a_412_is_read_again_and_retried_on_the_new_version(httpserver, writer):
    reads = iter([stored("doc-1", "1"), stored("doc-1", "2", description="edited in the EHR")])
    httpserver.expect_request("/fhir/DocumentReference/doc-1", method="GET").respond_with_handler(
        lambda _request: Response(json.dumps(next(reads)), content_type=FHIR_JSON))
    httpserver.expect_request("/fhir/DocumentReference/doc-1", method="PUT",
                              headers={"If-Match": 'W/"1"'}).respond_with_json(
        {"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "conflict", "diagnostics": "version moved"}]},
        status=412)
    httpserver.expect_request("/fhir/DocumentReference/doc-1", method="PUT",
                              headers={"If-Match": 'W/"2"'}).respond_with_json(
        stored("doc-1", "3", status="superseded"))

    old = writer.supersede_document(DocumentRef("doc-1", "1", "ep-1.1"))

    assert old.version_id == "3"
    puts = [(r.headers["If-Match"], json.loads(r.get_data())) for r, _ in httpserver.log
            if r.method == "PUT"]
    assert [if_match for if_match, _ in puts] == ['W/"1"', 'W/"2"']
    puts = [body for _, body in puts]
    assert puts[-1]["description"] == "edited in the EHR"  # what the EHR holds now, kept
    assert puts[-1]["status"] == "superseded"


def test_an_already_superseded_document_is_left_alone(httpserver, writer):
    httpserver.expect_request("/fhir/DocumentReference/doc-1", method="GET").respond_with_json(
        stored("doc-1", "2", status="superseded"))

    assert writer.supersede_document(DocumentRef("doc-1", "1", "ep-1.1")).version_id == "2"
    assert [r.method for r, _ in httpserver.log] == ["GET"]


def test_a_conflict_that_does_not_settle_reaches_the_job(httpserver, writer):
    httpserver.expect_request("/fhir/DocumentReference/doc-1", method="GET").respond_with_json(
        stored("doc-1", "1"))
    httpserver.expect_request("/fhir/DocumentReference/doc-1", method="PUT").respond_with_json(
        {"resourceType": "OperationOutcome", "issue": []}, status=412)

    with pytest.raises(EhrConflict):
        writer.supersede_document(DocumentRef("doc-1", "1", "ep-1.1"))


def test_a_refused_document_raises_with_what_the_ehr_said(httpserver, writer):
    httpserver.expect_request("/fhir/DocumentReference", method="POST").respond_with_json(
        OUTCOME, status=422)

    with pytest.raises(EhrPermanentError) as refused:
        writer.write_document(RECORD, document())

    assert refused.value.status == 422
    assert "context.encounter is not known" in str(refused.value)
    assert "DocumentReference.context.encounter[0]" in str(refused.value)
