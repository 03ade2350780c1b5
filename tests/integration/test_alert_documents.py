"""The alert document through the whole loop (alerts.write document, CONTRACT §9.2): a client
answers low, then high a week later; the rupture is written as a DocumentReference with the
trend as PDF, and the repair as a new one that replaces it. Every combination of targets
writes only valid R4; a 412 is retried with backoff; a refusal is dead-lettered, saying why,
and changes nothing else."""

from __future__ import annotations

import base64
import io
import itertools

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir_http_support import FhirHttpServer
from pypdf import PdfReader
from sqlalchemy import select

from integrations.ehr.auth import NoAuth
from integrations.ehr.errors import EhrConflict
from integrations.ehr.fhir_client import FhirGateway
from service import practices
from service.bootstrap import bootstrap
from service.persistence.tables import outbox, rupture_episodes
from support import answer_one_survey, due_jobs_runner, loopback_network, practice_document

LOW = {"bond": 1, "goals": 2, "approach": 1, "overall": 1}
HIGH = {"bond": 9, "goals": 9, "approach": 9, "overall": 10}
SYSTEM = "https://alliance-feedback.org/fhir/sid/document-reference"
CONFLICT = {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "conflict", "diagnostics": "version moved"}]}


def store_practice(services, write: list[str]) -> None:
    document = practices.validate_document(practice_document(alerts={"write": write}))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())


def rupture_then_repair(services, channels, run_due, clock) -> None:
    answer_one_survey(services, channels, run_due, LOW)
    assert [outcome for kind, outcome in run_due() if kind == "response.writeback"] == ["done"]
    clock.advance(days=7)
    answer_one_survey(services, channels, run_due, HIGH, session_id="enc-8")


def episode_row(services):
    with services.engine.begin() as conn:
        return conn.execute(select(rupture_episodes)).mappings().one()


def pdf_text(document: dict) -> tuple[int, str]:
    data = base64.b64decode(document["content"][0]["attachment"]["data"])
    reader = PdfReader(io.BytesIO(data))
    return len(reader.pages), " ".join(reader.pages[0].extract_text().split())


def writeback_jobs(services):
    with services.engine.begin() as conn:
        return conn.execute(select(outbox).where(outbox.c.kind == "response.writeback")
                            .order_by(outbox.c.created_at)).mappings().all()


TARGETS = ("flag", "task", "document")
COMBINATIONS = [list(combo) for size in (1, 2, 3) for combo in itertools.combinations(TARGETS, size)]


@pytest.mark.parametrize("write", COMBINATIONS, ids=["+".join(c) for c in COMBINATIONS])
def test_every_combination_of_targets_writes_valid_r4(write, services, channels, fake_ehr,
                                                      run_due, clock):
    store_practice(services, write)
    rupture_then_repair(services, channels, run_due, clock)
    run_due()

    written = [resource for kind in ("QuestionnaireResponse", "Observation", "Flag",
                                     "DocumentReference", "Task")
               for resource in fake_ehr.resources(kind)]
    for resource in written:  # every version, not only the current ones
        for version in fake_ehr.history(resource["resourceType"], resource["id"]):
            get_fhir_model_class(version["resourceType"]).model_validate(version)
    assert len(fake_ehr.resources("Flag")) == (1 if "flag" in write else 0)
    assert len(fake_ehr.resources("DocumentReference")) == (2 if "document" in write else 0)
    assert len(fake_ehr.resources("QuestionnaireResponse")) == 2

    # Erasing the client names every alert resource that stays in the EHR (the latest document
    # links the earlier one by relatesTo).
    from service.handlers.privacy import erase_client

    _counts, kept = erase_client(services, "northside", "pat-17", "cli:test")
    current = [d for d in fake_ehr.resources("DocumentReference") if d["status"] == "current"]
    assert sorted(kept) == sorted(
        [f"Flag/{flag['id']}" for flag in fake_ehr.resources("Flag")]
        + [f"DocumentReference/{document['id']}" for document in current]
        + [f"Task/{task['id']}" for task in fake_ehr.resources("Task")])


def test_the_rupture_is_a_pdf_document_and_the_repair_replaces_it(services, channels, fake_ehr,
                                                                  run_due, clock):
    store_practice(services, ["document"])
    # The client's phone (+15551234567, from the event) and a free-text comment are stored
    # with the answers; neither may reach the document.
    answer_one_survey(services, channels, run_due, {**LOW, "comment": "call me on 555 0100"})
    run_due()

    [opened] = fake_ehr.resources("DocumentReference")
    episode = episode_row(services)
    assert opened["identifier"] == [{"system": SYSTEM, "value": f"{episode['id']}.1"}]
    assert (opened["status"], opened["context"]) == (
        "current", {"encounter": [{"reference": "Encounter/enc-7"}]})
    assert (episode["document_id"], episode["document_number"]) == (opened["id"], 1)
    assert episode["flag_id"] is None and fake_ehr.resources("Flag") == []
    pages, text = pdf_text(opened)
    assert pages == 1 and "Patient pat-17" in text and "enc-7" in text
    assert "555" not in text and "call me" not in text and "@" not in text
    # the alert's words: whole in the resource, the PDF's heading and why (its reasons)
    heading, reasons = opened["description"].split(": ", 1)
    assert heading == "Alliance rupture" and text.count(heading) >= 1
    assert reasons.split("; ")[0] in text

    clock.advance(days=7)
    answer_one_survey(services, channels, run_due, HIGH, session_id="enc-8")
    run_due()

    old = fake_ehr.history("DocumentReference", opened["id"])
    assert [version["status"] for version in old] == ["current", "superseded"]
    [repaired] = [d for d in fake_ehr.resources("DocumentReference") if d["id"] != opened["id"]]
    assert repaired["status"] == "current"
    assert repaired["relatesTo"] == [{"code": "replaces",
                                      "target": {"reference": f"DocumentReference/{opened['id']}"}}]
    assert repaired["identifier"][0]["value"] == f"{episode['id']}.2"
    assert repaired["context"] == {"encounter": [{"reference": "Encounter/enc-8"}]}
    _, text = pdf_text(repaired)
    assert "Alliance rupture repaired" in text and "looks repaired" in text
    episode = episode_row(services)
    assert (episode["status"], episode["document_id"], episode["document_number"]) == (
        "resolved", repaired["id"], 2)


def test_a_412_on_superseding_is_retried_with_backoff_and_nothing_is_written_twice(
        services, channels, fake_ehr, run_due, clock):
    store_practice(services, ["flag", "document"])
    answer_one_survey(services, channels, run_due, LOW)
    run_due()
    clock.advance(days=7)
    answer_one_survey(services, channels, run_due, HIGH, session_id="enc-8")
    # Someone keeps editing the first document: the writer's three re-reads all lose the race.
    fake_ehr.fail_next(3, EhrConflict("DocumentReference changed", 412, CONFLICT),
                       operation="update", resource_type="DocumentReference")

    assert [o for k, o in run_due() if k == "response.writeback"] == ["retry"]
    job = writeback_jobs(services)[-1]
    assert (job["last_error"]["http_status"], job["last_error"]["resource_type"]) == (
        412, "DocumentReference")
    clock.advance(minutes=20)
    assert [o for k, o in run_due() if k == "response.writeback"] == ["done"]

    documents = fake_ehr.resources("DocumentReference")
    assert sorted(d["status"] for d in documents) == ["current", "superseded"]
    assert fake_ehr.calls.count(("create", "DocumentReference")) == 3  # 1 + 1 + the retry's find
    assert fake_ehr.resources("Flag")[0]["status"] == "inactive"


# -- a refusal, from an EHR over HTTP -------------------------------------------------------

def test_a_refused_document_is_dead_lettered_naming_the_problem_and_changes_nothing_else(
        database, settings_for, clock, channels, httpserver, fake_ehr):
    ehr = FhirHttpServer(httpserver, fake_ehr)
    refused = ehr.refuse("DocumentReference", 422,
                         "DocumentReference.type 34904-3 is not enabled for this facility")
    gateway = FhirGateway(ehr.base_url, NoAuth(), network=loopback_network())
    services = bootstrap(settings_for(database[0]), engine=database[1], clock=clock,
                         ehr_for=lambda _config: gateway,
                         channel_for=lambda name, _config: channels[name])
    store_practice(services, ["document"])
    run_due = due_jobs_runner(services)

    answer_one_survey(services, channels, run_due, LOW)
    assert [o for k, o in run_due() if k == "response.writeback"] == ["dead"]

    job = writeback_jobs(services)[-1]
    assert job["status"] == "dead"
    assert job["last_error"]["reason"] == "EHR refused DocumentReference"
    assert job["last_error"]["resource_type"] == "DocumentReference"
    assert job["last_error"]["http_status"] == 422
    assert job["last_error"]["operation_outcome"] == refused
    episode = episode_row(services)
    assert (episode["document_id"], episode["document_number"], episode["flag_id"]) == (
        None, 0, None)
    written = [kind for kind in ("QuestionnaireResponse", "Observation", "DocumentReference",
                                 "Flag") for _ in fake_ehr.resources(kind)]
    assert written == ["QuestionnaireResponse", "Observation"]
