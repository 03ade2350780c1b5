"""Builders for the FHIR R4 resources we write back (CONTRACT §5): plain dicts, no I/O."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from integrations.ehr.records import AlertDocument, AllianceRecord, AnswerItem, TaskRequest

FHIR_BASE = "https://alliance-feedback.org/fhir"
# A FHIR id (R4 id datatype): what may follow "Patient/" in a literal reference or a URL.
FHIR_ID = r"[A-Za-z0-9\-.]{1,64}"
QUESTIONNAIRE_RESPONSE_SYSTEM = f"{FHIR_BASE}/sid/questionnaire-response"
OBSERVATION_SYSTEM = f"{FHIR_BASE}/sid/observation"
FLAG_SYSTEM = f"{FHIR_BASE}/sid/flag"
DOCUMENT_REFERENCE_SYSTEM = f"{FHIR_BASE}/sid/document-reference"
# A rupture's Tasks, by kind (`TaskRequest.kind`); the value is the episode id.
TASK_SYSTEMS = {"alert": f"{FHIR_BASE}/sid/rupture-task",
                "escalation": f"{FHIR_BASE}/sid/rupture-escalation-task"}
ALLIANCE_CODE_SYSTEM = f"{FHIR_BASE}/CodeSystem/alliance"
INTERPRETATION_CODE_SYSTEM = f"{FHIR_BASE}/CodeSystem/alliance-interpretation"

OBSERVATION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
FLAG_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/flag-category"
V3_INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
# The alert document's kind (docs/alerts.md says why): LOINC's mental health progress note (in
# the US Behavioral Health Profiles' note types; US Core takes any LOINC document type), and
# US Core's "Clinical Note" category, under which EHRs list notes a clinician should read.
DOCUMENT_TYPE = (LOINC, "34904-3", "Mental health Progress note")
DOCUMENT_CATEGORY = ("http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                     "clinical-note", "Clinical Note")
PDF = "application/pdf"

TOTAL_CODE = "alliance-total"
POMP_CODE = "alliance-pomp"
RUPTURE_CODE = "alliance-rupture"
REVIEW_CODE = "alliance-rupture-review"
TASK_TEXT = "Review therapeutic alliance rupture"
# Systems for the EHR's own patient and session ids when they cannot be FHIR ids (see
# `IdentifierSystems`); a practice names its EHR's real ones in ehr.identifier_systems.
PATIENT_ID_SYSTEM = f"{FHIR_BASE}/sid/ehr-patient-id"
ENCOUNTER_ID_SYSTEM = f"{FHIR_BASE}/sid/ehr-encounter-id"

# Low uses the standard v3 code so EHRs highlight it; watch and check-in have no standard code.
INTERPRETATIONS: Mapping[str, tuple[str, str, str, str]] = {
    "low": (V3_INTERPRETATION_SYSTEM, "L", "Low", "Low therapeutic alliance"),
    "watch": (
        INTERPRETATION_CODE_SYSTEM,
        "watch",
        "Watch",
        "Alliance slipping: watch at the next sessions",
    ),
    "check-in": (
        INTERPRETATION_CODE_SYSTEM,
        "check-in",
        "Check-in",
        "Check in with the client about how therapy is going",
    ),
}


@dataclass(frozen=True)
class IdentifierSystems:
    """Where an id that is not a FHIR id goes: `Reference.identifier` under these systems.

    EHRs send ids such as `MRN:00417` or `visit_2024/17 a`; `Patient/MRN:00417` is not a valid
    literal reference (a FHIR id is `[A-Za-z0-9-.]{1,64}`), so such an id is written as a
    logical reference, `{"type": "Patient", "identifier": {"system": …, "value": "MRN:00417"}}`.
    """

    patient: str = PATIENT_ID_SYSTEM
    encounter: str = ENCOUNTER_ID_SYSTEM

    @classmethod
    def from_settings(cls, settings: Mapping[str, str] | None) -> IdentifierSystems:
        """From a practice's ehr.identifier_systems; a system left out keeps its default."""
        given = {key: value for key, value in (settings or {}).items() if value}
        return cls(**{key: given[key] for key in ("patient", "encounter") if key in given})


def is_fhir_id(value: str) -> bool:
    """Whether a value can be the id part of a literal reference."""
    return re.fullmatch(FHIR_ID, value) is not None


def reference(resource_type: str, resource_id: str, system: str) -> dict:
    """A literal reference for a FHIR id, a logical one (by identifier) for anything else."""
    if is_fhir_id(resource_id):
        return {"reference": f"{resource_type}/{resource_id}"}
    return {"type": resource_type, "identifier": {"system": system, "value": resource_id}}


def identifier_query(system: str, value: str) -> str:
    """The If-None-Exist / search expression that finds a resource by its identifier."""
    return f"identifier={system}|{value}"


def has_identifier(resource: dict, token: str) -> bool:
    """Whether a resource matches an identifier search token ("system|value" or "value")."""
    system, _, value = token.rpartition("|")
    identifiers = resource.get("identifier") or []
    if isinstance(identifiers, dict):  # QuestionnaireResponse has a single identifier
        identifiers = [identifiers]
    return any(
        identifier.get("value") == value and (not system or identifier.get("system") == system)
        for identifier in identifiers
    )


def fhir_datetime(moment: datetime) -> str:
    """A FHIR dateTime (UTC, 'Z') for an aware datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("FHIR dateTime needs a timezone-aware datetime")
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_questionnaire_response(
    record: AllianceRecord, systems: IdentifierSystems = IdentifierSystems()
) -> dict:
    """The client's answers as a completed QuestionnaireResponse."""
    return {
        "resourceType": "QuestionnaireResponse",
        "identifier": {"system": QUESTIONNAIRE_RESPONSE_SYSTEM, "value": record.response_id},
        "questionnaire": f"{record.instrument_url}|{record.instrument_version}",
        "status": "completed",
        "subject": _patient(record, systems),
        "encounter": _encounter(record, systems),
        "authored": fhir_datetime(record.authored),
        "author": _patient(record, systems),
        "item": [_answered_item(answer) for answer in record.answers if answer.value is not None],
    }


def build_observation(
    record: AllianceRecord,
    questionnaire_response_id: str,
    systems: IdentifierSystems = IdentifierSystems(),
) -> dict:
    """The scored alliance: total, one component per subscale, derived from the response."""
    observation = {
        "resourceType": "Observation",
        "identifier": [{"system": OBSERVATION_SYSTEM, "value": record.response_id}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": OBSERVATION_CATEGORY_SYSTEM, "code": "survey", "display": "Survey"}
                ]
            }
        ],
        "code": {
            "coding": [
                {
                    "system": ALLIANCE_CODE_SYSTEM,
                    "code": TOTAL_CODE,
                    "display": "Therapeutic alliance total score",
                }
            ],
            "text": f"{record.instrument_title} total score",
        },
        "subject": _patient(record, systems),
        "encounter": _encounter(record, systems),
        "effectiveDateTime": fhir_datetime(record.authored),
        "valueQuantity": _score(record.total),
        "derivedFrom": [{"reference": f"QuestionnaireResponse/{questionnaire_response_id}"}],
        "component": [_subscale_component(name, value) for name, value in record.subscales.items()]
        + [_pomp_component(record)],
    }
    if record.interpretation is not None:
        observation["interpretation"] = [_interpretation(record.interpretation)]
    if record.reasons:
        observation["note"] = [{"text": " ".join(record.reasons)}]
    return observation


def build_flag(
    record: AllianceRecord,
    text: str,
    episode_id: str,
    systems: IdentifierSystems = IdentifierSystems(),
) -> dict:
    """An active rupture Flag whose code.text says in plain words what was seen."""
    return {
        "resourceType": "Flag",
        "identifier": [{"system": FLAG_SYSTEM, "value": episode_id}],
        "status": "active",
        "category": [
            {
                "coding": [
                    {"system": FLAG_CATEGORY_SYSTEM, "code": "behavioral", "display": "Behavioral"}
                ]
            }
        ],
        "code": {
            "coding": [
                {
                    "system": ALLIANCE_CODE_SYSTEM,
                    "code": RUPTURE_CODE,
                    "display": "Therapeutic alliance rupture",
                }
            ],
            "text": text,
        },
        "subject": _patient(record, systems),
        "encounter": _encounter(record, systems),
        "period": {"start": fhir_datetime(record.authored)},
    }


def resolved_flag(flag: dict, ended_at: datetime) -> dict:
    """A copy of the Flag set inactive with period.end (never before period.start)."""
    if flag.get("status") == "inactive" and (flag.get("period") or {}).get("end"):
        return flag  # already resolved: a replay keeps the first end
    end = fhir_datetime(ended_at)
    start = (flag.get("period") or {}).get("start")
    if start and _instant(start) > _instant(end):
        end = start  # a clock skew must not produce an invalid period
    return {**flag, "status": "inactive", "period": {**(flag.get("period") or {}), "end": end}}


def flag_with_text(flag: dict, text: str) -> dict:
    """A copy of the Flag whose code.text is replaced, codings kept."""
    return {**flag, "code": {**(flag.get("code") or {}), "text": text}}


def build_document_reference(
    record: AllianceRecord,
    document: AlertDocument,
    systems: IdentifierSystems = IdentifierSystems(),
) -> dict:
    """A current, final DocumentReference holding the alert's PDF; it replaces the previous
    document of the episode when there is one."""
    system, code, display = DOCUMENT_TYPE
    category_system, category_code, category_display = DOCUMENT_CATEGORY
    created = fhir_datetime(document.created)
    resource = {
        "resourceType": "DocumentReference",
        "identifier": [{"system": DOCUMENT_REFERENCE_SYSTEM, "value": document.identifier}],
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": system, "code": code, "display": display}],
                 "text": "Therapeutic alliance report"},
        "category": [{"coding": [{"system": category_system, "code": category_code,
                                  "display": category_display}]}],
        "subject": _patient(record, systems),
        "date": created,
        "description": document.description,
        "content": [{"attachment": {
            "contentType": PDF,
            "data": base64.b64encode(document.pdf).decode("ascii"),
            "size": len(document.pdf),
            "hash": _sha1(document.pdf),
            "title": document.title,
            "creation": created,
        }}],
        "context": {"encounter": [_encounter(record, systems)]},
    }
    if document.replaces:
        target = {"reference": f"DocumentReference/{document.replaces}"}
        resource["relatesTo"] = [{"code": "replaces", "target": target}]
    return resource


def superseded_document(document: dict) -> dict:
    """A copy of the DocumentReference set superseded (a newer one replaces it)."""
    return {**document, "status": "superseded"}


def _sha1(data: bytes) -> str:
    """Attachment.hash: the SHA-1 of the data, base64 (what FHIR R4 specifies)."""
    return base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode("ascii")


def build_task(request: TaskRequest, systems: IdentifierSystems = IdentifierSystems()) -> dict:
    """A requested Task (intent order) to review a rupture: for the patient, owned by the
    supervisor (when named), its focus the episode's Flag (when written)."""
    task = {
        "resourceType": "Task",
        "identifier": [{"system": TASK_SYSTEMS[request.kind], "value": request.episode_id}],
        "status": "requested",
        "intent": "order",
        "code": {
            "coding": [{"system": ALLIANCE_CODE_SYSTEM, "code": REVIEW_CODE, "display": TASK_TEXT}],
            "text": TASK_TEXT,
        },
        "description": request.description,
        "for": reference("Patient", request.patient_id, systems.patient),
        "authoredOn": fhir_datetime(request.authored),
    }
    if request.flag_id:
        task["focus"] = {"reference": f"Flag/{request.flag_id}"}
    if request.owner:
        task["owner"] = {"reference": request.owner}
    return task


def completed_task(task: dict, completed_at: datetime) -> dict:
    """A copy of the Task set completed (a replay of a completed one changes nothing)."""
    if task.get("status") == "completed":
        return task
    return {**task, "status": "completed", "lastModified": fhir_datetime(completed_at)}


def _answered_item(answer: AnswerItem) -> dict:
    item: dict = {"linkId": answer.link_id}
    if answer.text:
        item["text"] = answer.text
    item["answer"] = [_answer_value(answer.value)]
    return item


def _answer_value(value: object) -> dict:
    # bool first: it is a subclass of int.
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueDecimal": value}
    if isinstance(value, str):
        return {"valueString": value}
    raise TypeError(f"unsupported answer value type: {type(value).__name__}")


def _subscale_component(name: str, value: float) -> dict:
    return {
        "code": {
            "coding": [
                {
                    "system": ALLIANCE_CODE_SYSTEM,
                    "code": f"subscale-{name}",
                    "display": f"Alliance subscale: {name}",
                }
            ],
            "text": f"{name.replace('-', ' ').replace('_', ' ').capitalize()} subscale",
        },
        "valueQuantity": _score(value),
    }


def _pomp_component(record: AllianceRecord) -> dict:
    return {
        "code": {
            "coding": [
                {
                    "system": ALLIANCE_CODE_SYSTEM,
                    "code": POMP_CODE,
                    "display": "Alliance total as percent of maximum possible",
                }
            ],
            "text": f"Total as percent of the maximum of {record.total_max:g}",
        },
        "valueQuantity": {
            "value": record.pomp,
            "unit": "%",
            "system": UCUM,
            "code": "%",
        },
    }


def _interpretation(kind: str) -> dict:
    try:
        system, code, display, text = INTERPRETATIONS[kind]
    except KeyError:
        raise ValueError(f"unknown interpretation {kind!r}") from None
    return {"coding": [{"system": system, "code": code, "display": display}], "text": text}


def _score(value: float) -> dict:
    return {"value": value, "unit": "score", "system": UCUM, "code": "{score}"}


def _patient(record: AllianceRecord, systems: IdentifierSystems) -> dict:
    return reference("Patient", record.patient_id, systems.patient)


def _encounter(record: AllianceRecord, systems: IdentifierSystems) -> dict:
    return reference("Encounter", record.session_id, systems.encounter)


def _instant(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    # A date-only or zone-less value from the server: read it as UTC to stay comparable.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
