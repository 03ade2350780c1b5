"""The FHIR resources we write back: shape per CONTRACT §5, and valid FHIR (R4B models)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from integrations.ehr.resources import (
    ALLIANCE_CODE_SYSTEM,
    ENCOUNTER_ID_SYSTEM,
    FLAG_SYSTEM,
    OBSERVATION_SYSTEM,
    PATIENT_ID_SYSTEM,
    QUESTIONNAIRE_RESPONSE_SYSTEM,
    IdentifierSystems,
    build_flag,
    build_observation,
    build_questionnaire_response,
    fhir_datetime,
    flag_with_text,
    identifier_query,
    resolved_flag,
)
from integrations.ehr.writer import AllianceRecord, AnswerItem

AUTHORED = datetime(2026, 11, 26, 15, 30, tzinfo=timezone.utc)


def make_record(**changes) -> AllianceRecord:
    record = AllianceRecord(
        practice_id="northside",
        patient_id="pat-17",
        session_id="enc-1001",
        response_id="5f0c8a52-1d2e-4b7c-9a61-0d4c2a8f1e33",
        instrument_url="https://alliance-feedback.org/fhir/Questionnaire/brief-alliance-check",
        instrument_version="1.0.0",
        instrument_title="Brief Alliance Check",
        authored=AUTHORED,
        answers=(
            AnswerItem("bond", "Item one", 9),
            AnswerItem("goals", "Item two", 7.5),
            AnswerItem("tension", "Item three", False),
            AnswerItem("comment", "Anything else?", "free words"),
        ),
        total=16.5,
        total_max=20.0,
        subscales={"bond": 9.0, "goals": 7.5},
        pomp=82.5,
        decision="none",
        reasons=(),
        interpretation=None,
    )
    return replace(record, **changes)


def test_questionnaire_response_carries_the_answers_and_links():
    resource = build_questionnaire_response(make_record())

    QuestionnaireResponse.model_validate(resource)
    assert resource["status"] == "completed"
    assert resource["questionnaire"] == (
        "https://alliance-feedback.org/fhir/Questionnaire/brief-alliance-check|1.0.0"
    )
    assert resource["identifier"] == {
        "system": QUESTIONNAIRE_RESPONSE_SYSTEM,
        "value": "5f0c8a52-1d2e-4b7c-9a61-0d4c2a8f1e33",
    }
    assert resource["subject"] == {"reference": "Patient/pat-17"}
    assert resource["encounter"] == {"reference": "Encounter/enc-1001"}
    assert resource["authored"] == "2026-11-26T15:30:00Z"
    assert [item["answer"] for item in resource["item"]] == [
        [{"valueInteger": 9}],
        [{"valueDecimal": 7.5}],
        [{"valueBoolean": False}],
        [{"valueString": "free words"}],
    ]


def test_unanswered_items_are_left_out():
    record = make_record(answers=(AnswerItem("bond", "Item one", 3), AnswerItem("x", "", None)))

    resource = build_questionnaire_response(record)

    QuestionnaireResponse.model_validate(resource)
    assert [item["linkId"] for item in resource["item"]] == ["bond"]


def test_an_answer_of_an_unknown_type_is_refused():
    with pytest.raises(TypeError):
        build_questionnaire_response(make_record(answers=(AnswerItem("a", "", [1]),)))


def test_observation_has_total_components_and_derives_from_the_response():
    resource = build_observation(make_record(), questionnaire_response_id="qr-9")

    Observation.model_validate(resource)
    assert resource["status"] == "final"
    assert resource["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
        "code": "survey",
        "display": "Survey",
    }
    assert resource["code"]["coding"][0]["system"] == ALLIANCE_CODE_SYSTEM
    assert resource["code"]["text"] == "Brief Alliance Check total score"
    assert resource["valueQuantity"]["value"] == 16.5
    assert resource["derivedFrom"] == [{"reference": "QuestionnaireResponse/qr-9"}]
    assert resource["identifier"] == [
        {"system": OBSERVATION_SYSTEM, "value": "5f0c8a52-1d2e-4b7c-9a61-0d4c2a8f1e33"}
    ]
    assert resource["effectiveDateTime"] == "2026-11-26T15:30:00Z"
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in resource["component"]}
    assert components["subscale-bond"]["value"] == 9
    assert components["subscale-goals"]["value"] == 7.5
    assert components["alliance-pomp"] == {
        "value": 82.5, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"
    }
    assert "interpretation" not in resource
    assert "note" not in resource


@pytest.mark.parametrize(
    ("interpretation", "system", "code"),
    [
        ("low", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "L"),
        ("watch", "https://alliance-feedback.org/fhir/CodeSystem/alliance-interpretation", "watch"),
        (
            "check-in",
            "https://alliance-feedback.org/fhir/CodeSystem/alliance-interpretation",
            "check-in",
        ),
    ],
)
def test_observation_interpretation(interpretation, system, code):
    record = make_record(interpretation=interpretation, reasons=("Bond fell from 9 to 5.",))

    resource = build_observation(record, questionnaire_response_id="qr-9")

    Observation.model_validate(resource)
    (concept,) = resource["interpretation"]
    assert concept["coding"][0]["system"] == system
    assert concept["coding"][0]["code"] == code
    assert concept["text"]
    assert resource["note"] == [{"text": "Bond fell from 9 to 5."}]


def test_an_unknown_interpretation_is_refused():
    with pytest.raises(ValueError, match="interpretation"):
        build_observation(make_record(interpretation="great"), questionnaire_response_id="q")


def test_flag_is_active_behavioral_with_plain_text():
    text = "Alliance rupture: bond fell from 9 to 5, more than the reliable-change threshold of 2.1"

    resource = build_flag(make_record(), text, episode_id="ep-1")

    Flag.model_validate(resource)
    assert resource["status"] == "active"
    assert resource["identifier"] == [{"system": FLAG_SYSTEM, "value": "ep-1"}]
    assert resource["category"][0]["coding"][0]["code"] == "behavioral"
    assert resource["category"][0]["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/flag-category"
    )
    assert resource["code"]["text"] == text
    assert resource["subject"] == {"reference": "Patient/pat-17"}
    assert resource["encounter"] == {"reference": "Encounter/enc-1001"}
    assert resource["period"] == {"start": "2026-11-26T15:30:00Z"}


def test_resolving_a_flag_sets_inactive_and_period_end():
    flag = build_flag(make_record(), "seen", episode_id="ep-1")

    resolved = resolved_flag(flag, AUTHORED + timedelta(days=14))

    Flag.model_validate(resolved)
    assert resolved["status"] == "inactive"
    assert resolved["period"] == {"start": "2026-11-26T15:30:00Z", "end": "2026-12-10T15:30:00Z"}
    assert flag["status"] == "active", "the input must not be mutated"


def test_resolving_twice_keeps_the_first_end():
    once = resolved_flag(build_flag(make_record(), "seen", "ep-1"), AUTHORED + timedelta(days=1))

    assert resolved_flag(once, AUTHORED + timedelta(days=9)) == once


def test_a_period_end_is_never_before_its_start():
    flag = build_flag(make_record(), "seen", episode_id="ep-1")

    resolved = resolved_flag(flag, AUTHORED - timedelta(minutes=5))

    assert resolved["period"]["end"] == resolved["period"]["start"]


def test_changing_flag_text_keeps_the_coding():
    flag = build_flag(make_record(), "first words", episode_id="ep-1")

    changed = flag_with_text(flag, "Unresolved: the alliance stayed low for 2 sessions")

    Flag.model_validate(changed)
    assert changed["code"]["text"] == "Unresolved: the alliance stayed low for 2 sessions"
    assert changed["code"]["coding"] == flag["code"]["coding"]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2026-01-02T03:04:05Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=timezone.utc), "2026-01-02T03:04:05Z"),
        (
            datetime(2026, 1, 1, 22, 0, tzinfo=timezone(timedelta(hours=-6))),
            "2026-01-02T04:00:00Z",
        ),
    ],
)
def test_fhir_datetime_is_utc(moment, expected):
    assert fhir_datetime(moment) == expected


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        fhir_datetime(datetime(2026, 1, 1, 12, 0))


def test_identifier_query_is_a_token_search():
    assert identifier_query("https://x.org/sid", "abc") == "identifier=https://x.org/sid|abc"


# --- ids that are not FHIR ids ----------------------------------------------------------------

NOT_FHIR_IDS = {"patient_id": "MRN:00417", "session_id": "visit_2024/17 a"}


DEFAULT_SYSTEMS = IdentifierSystems()


def all_three(record: AllianceRecord, systems: IdentifierSystems = DEFAULT_SYSTEMS):
    return [
        (QuestionnaireResponse, build_questionnaire_response(record, systems)),
        (Observation, build_observation(record, "qr-9", systems)),
        (Flag, build_flag(record, "seen", "ep-1", systems)),
    ]


def test_ids_that_are_not_fhir_ids_are_written_as_identifiers():
    for model, resource in all_three(make_record(**NOT_FHIR_IDS)):
        model.model_validate(resource)
        assert resource["subject"] == {
            "type": "Patient",
            "identifier": {"system": PATIENT_ID_SYSTEM, "value": "MRN:00417"},
        }
        assert resource["encounter"] == {
            "type": "Encounter",
            "identifier": {"system": ENCOUNTER_ID_SYSTEM, "value": "visit_2024/17 a"},
        }


def test_the_practice_names_its_ehrs_identifier_systems():
    systems = IdentifierSystems.from_settings(
        {"patient": "urn:oid:2.16.840.1.113883.19.5", "encounter": "https://ehr.example/visits"}
    )

    for model, resource in all_three(make_record(**NOT_FHIR_IDS), systems):
        model.model_validate(resource)
        assert resource["subject"]["identifier"]["system"] == "urn:oid:2.16.840.1.113883.19.5"
        assert resource["encounter"]["identifier"]["system"] == "https://ehr.example/visits"
    response = build_questionnaire_response(make_record(**NOT_FHIR_IDS), systems)
    assert response["author"] == response["subject"]


@pytest.mark.parametrize(
    ("patient_id", "literal"),
    [
        ("pat-17", True),
        ("A.b-9", True),
        ("x" * 64, True),
        ("x" * 65, False),  # longer than a FHIR id may be
        ("pat_17", False),
        ("MRN:00417", False),
        ("../Patient/1", False),
    ],
)
def test_only_valid_fhir_ids_become_literal_references(patient_id, literal):
    subject = build_flag(make_record(patient_id=patient_id), "seen", "ep-1")["subject"]

    assert ("reference" in subject) is literal
    if literal:
        assert subject == {"reference": f"Patient/{patient_id}"}


def test_one_system_given_keeps_the_default_for_the_other():
    systems = IdentifierSystems.from_settings({"patient": "urn:oid:1.2.3"})

    assert systems == IdentifierSystems(patient="urn:oid:1.2.3")
    assert IdentifierSystems.from_settings(None) == IdentifierSystems()
