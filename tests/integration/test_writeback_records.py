"""What the write-back puts in the record, through the whole loop: ids that are not FHIR ids
become identifiers under the practice's systems, and the scores written are the ones stored
when the client answered (computed once)."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from sqlalchemy import select, update

from service import practices
from service.persistence.tables import assessments, responses
from support import answer_one_survey, practice_document

LOW = {"bond": 1, "goals": 2, "approach": 1, "overall": 1}
HIGH = {"bond": 9, "goals": 9, "approach": 9, "overall": 10}
SYSTEMS = {"patient": "urn:oid:2.16.840.1.113883.19.5", "encounter": "https://ehr.example/visits"}


def store_practice(services, **ehr):
    base = {"type": "fhir-r4", "base_url": "https://ehr.test/fhir", "auth": {"type": "none"}}
    document = practices.validate_document(practice_document(ehr={**base, **ehr}))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())


def test_ids_that_are_not_fhir_ids_are_written_as_identifiers(services, channels, fake_ehr,
                                                              run_due):
    store_practice(services, identifier_systems=SYSTEMS)
    answer_one_survey(services, channels, run_due, LOW, session_id="visit_2024/17 a",
                      patient_id="MRN:00417")
    run_due()

    [response] = fake_ehr.resources("QuestionnaireResponse")
    [observation] = fake_ehr.resources("Observation")
    [flag] = fake_ehr.resources("Flag")
    for model, resource in ((QuestionnaireResponse, response), (Observation, observation),
                            (Flag, flag)):
        model.model_validate(resource)
        assert resource["subject"] == {"type": "Patient", "identifier": {
            "system": "urn:oid:2.16.840.1.113883.19.5", "value": "MRN:00417"}}
        assert resource["encounter"] == {"type": "Encounter", "identifier": {
            "system": "https://ehr.example/visits", "value": "visit_2024/17 a"}}


def test_valid_ids_stay_literal_references_whatever_the_systems(services, channels, fake_ehr,
                                                                run_due):
    store_practice(services, identifier_systems=SYSTEMS)
    answer_one_survey(services, channels, run_due, LOW, session_id="enc-7", patient_id="pat-17")
    run_due()

    [flag] = fake_ehr.resources("Flag")
    assert flag["subject"] == {"reference": "Patient/pat-17"}
    assert flag["encounter"] == {"reference": "Encounter/enc-7"}


def test_a_bad_identifier_system_is_refused_naming_the_field():
    base = {"type": "fhir-r4", "base_url": "https://ehr.test/fhir"}
    document = practice_document(ehr={**base, "identifier_systems": {"patient": "MRN numbers",
                                                                      "visit": "urn:x:y"}})

    with pytest.raises(practices.InvalidPractice) as refused:
        practices.validate_document(document)

    problems = " ".join(refused.value.problems)
    assert "ehr.identifier_systems.patient: must be an absolute URI" in problems
    assert "ehr.identifier_systems.visit" in problems


def test_the_scores_written_and_assessed_are_the_stored_ones(services, practice, channels,
                                                             fake_ehr, run_due):
    answer_one_survey(services, channels, run_due, HIGH)
    # Whatever the answers say, what was scored on arrival is what counts: here, the bottom.
    with services.engine.begin() as conn:
        conn.execute(update(responses).values(
            total=4.0, subscales={"bond": 1.0, "goals": 1.0, "tasks": 1.0}, pomp=10.0))
    run_due()

    [observation] = fake_ehr.resources("Observation")
    assert observation["valueQuantity"]["value"] == 4
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
                  for c in observation["component"]}
    assert components == {"subscale-bond": 1, "subscale-goals": 1, "subscale-tasks": 1,
                          "alliance-pomp": 10}
    with services.engine.begin() as conn:
        decision = conn.execute(select(assessments.c.decision)).scalar_one()
    assert decision == "rupture"
    assert len(fake_ehr.resources("Flag")) == 1
