"""Decide whether an Encounter/Appointment (and its notification topic) is a completed session.

The rule, in order:

1. A vendor topic (athena style ``Type.action``, e.g. ``Patient.update``, ``Encounter.check-in``)
   other than ``Appointment.check-out`` / ``Encounter.signoff`` is not a session event.
2. A visit that did not happen (status ``cancelled``, ``noshow``, ``entered-in-error``) is never
   a completed session, whatever the topic says.
3. athena's ``Appointment.check-out`` and ``Encounter.signoff`` are completed sessions: athena
   reports the check-out by the topic, not by a distinct Appointment status.
4. Otherwise (a standard topic such as the IG's encounter-complete or US Core's
   patient-data-feed, or no topic) the status decides: Encounter ``finished``, Appointment
   ``fulfilled``. Appointment ``checked-in`` means the client has *arrived*, so it is not a
   completed session: a checked-out visit is known only by athena's topic or by ``fulfilled``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from integrations.delivery.port import Contact
from service.intake.contact import checked_contact
from service.intake.facts import (
    UNSTORABLE_IDS,
    Completed,
    Ignored,
    Outcome,
    SessionFacts,
    storable_ids,
)
from service.intake.fhir_notifications import NotificationEvent, relative_reference

SESSION_TOPICS = frozenset({"Appointment.check-out", "Encounter.signoff"})
COMPLETED_STATUSES = {"Encounter": "finished", "Appointment": "fulfilled"}
DID_NOT_HAPPEN = frozenset({"cancelled", "noshow", "entered-in-error"})


@dataclass(frozen=True)
class SessionSignal:
    completed: bool
    reason: str
    session_id: str | None
    patient_id: str | None
    practitioner_id: str | None
    ended_at: datetime | None
    dedupe_keys: tuple[str, ...]
    contact: Contact | None

    def facts(self) -> SessionFacts | None:
        """The session's facts, if it names both the session and the client."""
        if not (self.session_id and self.patient_id):
            return None
        return SessionFacts(self.session_id, self.patient_id, self.practitioner_id,
                            self.ended_at, self.contact, self.dedupe_keys)

    def outcome(self) -> Outcome:
        """Completed with the facts, or Ignored with the reason (not a completed session, ids
        that cannot be stored, no patient named)."""
        if not storable_ids(self.session_id, self.patient_id):
            return Ignored(UNSTORABLE_IDS)
        if not self.completed:
            return Ignored(self.reason, self.session_id, self.patient_id)
        facts = self.facts()
        if facts is None:
            return Ignored("the session names no patient", self.session_id, self.patient_id)
        return Completed(facts)


def classify_resource(
    resource: dict, topic: str | None = None, included: Mapping[str, dict] | None = None
) -> SessionSignal:
    """Classify a focus resource (with its topic and the bundle's other resources)."""
    included = included or {}
    resource_type, status = _text(resource.get("resourceType")), _text(resource.get("status"))
    completed, reason = _decide(resource_type, status, topic_name(topic))
    if resource_type not in COMPLETED_STATUSES:
        return SessionSignal(completed, reason, None, None, None, None, (), None)
    patient = patient_reference(resource)
    patient_resource = included.get(patient) if patient else None
    keys = _dedupe_keys(resource, included)
    return SessionSignal(
        completed=completed,
        reason=reason,
        session_id=_session_id(keys),
        patient_id=_reference_id(patient),
        practitioner_id=_reference_id(_practitioner_reference(resource)),
        ended_at=_ended_at(resource),
        dedupe_keys=keys,
        contact=contact_from_patient(patient_resource) if patient_resource else None,
    )


def needs_fetch(event: NotificationEvent) -> bool:
    """True for an id-only event: the focus must be read from the EHR before classifying."""
    named = event.focus is not None or event.focus_identifier is not None
    return event.resource is None and named


def topic_name(topic: str | None) -> str | None:
    """The topic's last segment: ".../SubscriptionTopic/Encounter.signoff" ->
    "Encounter.signoff"."""
    if not topic:
        return None
    return topic.split("|", 1)[0].rstrip("/").rsplit("/", 1)[-1] or None


def patient_reference(resource: dict) -> str | None:
    """The "Patient/id" an Encounter (subject) or Appointment (participant actor) is about."""
    candidates = [resource.get("subject")]
    participants = [p for p in _list(resource.get("participant")) if isinstance(p, dict)]
    candidates += [p.get("actor") for p in participants]
    return _first_of_type(candidates, "Patient")


def contact_from_patient(patient: dict) -> Contact | None:
    """Phone (mobile/sms first), e-mail and preferred locale from a Patient, checked and capped
    (`service/intake/contact.py`); None without a usable phone or e-mail address."""
    telecom = [t for t in _list(patient.get("telecom")) if _usable_telecom(t)]
    phones = [t for t in telecom if t.get("system") in ("phone", "sms")]
    phones.sort(key=lambda t: (t.get("use") != "mobile" and t.get("system") != "sms", _rank(t)))
    emails = sorted((t for t in telecom if t.get("system") == "email"), key=_rank)
    return checked_contact([t["value"] for t in phones], [t["value"] for t in emails],
                           _preferred_language(patient))


def _decide(resource_type: str | None, status: str | None, topic: str | None) -> tuple[bool, str]:
    if _is_vendor_topic(topic) and topic not in SESSION_TOPICS:
        return False, f"topic {topic} is not a session event"
    if resource_type not in COMPLETED_STATUSES:
        named = resource_type or "a resource without resourceType"
        return False, f"{named} is not a session resource"
    described = f"{resource_type} status {status}" if status else f"{resource_type} has no status"
    if status in DID_NOT_HAPPEN:
        return False, f"{described}: not a completed session"
    if topic in SESSION_TOPICS:
        return True, f"topic {topic}"
    if status == COMPLETED_STATUSES[resource_type]:
        return True, described
    return False, f"{described}: not a completed session"


def _is_vendor_topic(name: str | None) -> bool:
    """athena names topics "Type.action"; standard canonicals end in a lower-case slug."""
    prefix, dot, action = (name or "").partition(".")
    return bool(dot and action) and prefix[:1].isupper() and prefix.isalpha()


def _dedupe_keys(resource: dict, included: Mapping[str, dict]) -> tuple[str, ...]:
    """Every "Type/id" naming this visit: athena announces one visit by both resources."""
    resource_id = _text(resource.get("id"))
    own = f"{resource['resourceType']}/{resource_id}" if resource_id else None
    if resource["resourceType"] == "Encounter":
        appointments = [relative_reference(_reference(r))
                        for r in _list(resource.get("appointment"))]
        keys = [own, *appointments]
    else:
        encounters = [key for key, other in included.items() if _encounter_of(other, own)]
        keys = [*encounters, own]
    return tuple(dict.fromkeys(key for key in keys if key))


def _encounter_of(candidate: dict, appointment: str | None) -> bool:
    if not appointment or candidate.get("resourceType") != "Encounter":
        return False
    linked = (relative_reference(_reference(r)) for r in _list(candidate.get("appointment")))
    return appointment in linked


def _session_id(keys: tuple[str, ...]) -> str | None:
    """The Encounter id when known (write-back targets Encounter/{id}), else the Appointment id."""
    encounter = next((key for key in keys if key.startswith("Encounter/")), None)
    return _reference_id(encounter or (keys[0] if keys else None))


def _practitioner_reference(resource: dict) -> str | None:
    participants = [p for p in _list(resource.get("participant")) if isinstance(p, dict)]
    references = [p.get("individual") or p.get("actor") for p in participants]
    return _first_of_type(references, "Practitioner")


def _ended_at(resource: dict) -> datetime | None:
    """When the visit ended, if the resource says so to the second with a zone (a FHIR dateTime
    may be a bare date, or have no zone: then the survey takes the moment it is scheduled)."""
    period = resource.get("period") if isinstance(resource.get("period"), dict) else {}
    end = period.get("end") if resource["resourceType"] == "Encounter" else resource.get("end")
    if not isinstance(end, str) or "T" not in end:
        return None
    try:
        moment = datetime.fromisoformat(end)
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None


def _first_of_type(references: list, resource_type: str) -> str | None:
    for value in references:
        reference = relative_reference(_reference(value))
        if reference and reference.startswith(f"{resource_type}/"):
            return reference
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _reference(value: object) -> str | None:
    return value.get("reference") if isinstance(value, dict) else None


def _reference_id(reference: str | None) -> str | None:
    return reference.split("/", 1)[1] if reference else None


def _list(value: object) -> list:
    """R4 lists some elements that R5 makes single (Encounter.appointment); accept both."""
    if isinstance(value, list):
        return value
    return [value] if value is not None else []


def _usable_telecom(telecom: object) -> bool:
    return (
        isinstance(telecom, dict)
        and isinstance(telecom.get("value"), str)
        and bool(telecom["value"].strip())
        and telecom.get("use") != "old"
    )


def _rank(telecom: dict) -> int:
    rank = telecom.get("rank")
    return rank if isinstance(rank, int) and not isinstance(rank, bool) else 1_000_000


def _preferred_language(patient: dict) -> str | None:
    communications = [c for c in _list(patient.get("communication")) if isinstance(c, dict)]
    communications.sort(key=lambda c: c.get("preferred") is not True)
    for communication in communications:
        language = communication.get("language")
        codings = _list(language.get("coding")) if isinstance(language, dict) else []
        for coding in codings:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str) and coding["code"]:
                return coding["code"]
    return None
