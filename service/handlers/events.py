"""Intake: record an arrival durably (one transaction, before the door answers), then, in a
worker, resolve what it means (reading the EHR where the door only named the session) and
schedule its survey."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog
from sqlalchemy import Connection

from integrations.delivery.port import Contact
from integrations.ehr.errors import EhrNotFound, EhrPermanentError, EhrTransientError
from service import practices
from service.handlers.ports import Ports
from service.handlers.runner import JobContext, PermanentFailure, RetryLater
from service.handlers.surveys import schedule_survey
from service.intake.facts import (
    Arrival,
    Completed,
    EhrRead,
    Ignored,
    NeedsRead,
)
from service.intake.healthie import session_from_appointment
from service.intake.payload import PayloadError
from service.intake.sessions import classify_resource, contact_from_patient
from service.metrics import EVENTS
from service.persistence import outbox
from service.persistence.queries import events
from service.persistence.queries.clients import ContactNotStorable
from service.practices import Practice

log = structlog.get_logger(__name__)

ACCEPTED, IGNORED, DUPLICATE_SESSION = "accepted", "ignored", "duplicate-session"
SCHEDULED, FAILED = "survey-scheduled", "failed"
ALREADY_SCHEDULED = "a survey for this session was already scheduled"
Resolved = Completed | Ignored


@dataclass(frozen=True)
class Recorded:
    event_id: str
    outcome: str          # accepted | ignored | duplicate-session | duplicate-delivery
    reason: str | None = None

    @property
    def duplicate(self) -> bool:
        return self.outcome in (DUPLICATE_SESSION, "duplicate-delivery")


def record_arrival(ports: Ports, practice: Practice, arrival: Arrival) -> Recorded:
    """Store the event and its outbox job in one transaction; never calls the broker."""
    recorded = _record(ports, practice, arrival)
    EVENTS.labels(arrival.source, recorded.outcome).inc()
    return recorded


def _record(ports: Ports, practice: Practice, arrival: Arrival) -> Recorded:
    now, event_id, outcome = ports.clock(), str(uuid.uuid4()), arrival.outcome
    state = IGNORED if isinstance(outcome, Ignored) else ACCEPTED
    with ports.engine.begin() as conn:
        if not events.insert(conn, ports.vault, event_id, practice.id, arrival, state=state,
                             now=now):
            return Recorded(events.id_of_delivery(conn, practice.id, arrival),
                            "duplicate-delivery")
        if isinstance(outcome, Ignored):
            return Recorded(event_id, IGNORED, outcome.reason)
        if isinstance(outcome, Completed) and not events.claim_session(
                conn, practice.id, outcome.facts.dedupe_keys, event_id):
            events.set_state(conn, event_id, DUPLICATE_SESSION, ALREADY_SCHEDULED)
            return Recorded(event_id, DUPLICATE_SESSION)
        outbox.enqueue(conn, "event.process", {"event_id": event_id}, now=now,
                       practice_id=practice.id)
    log.info("event recorded", event_id=event_id, practice_id=practice.id, source=arrival.source)
    return Recorded(event_id, ACCEPTED)


def process_event(ctx: JobContext) -> None:
    """Job `event.process`: resolve what the event means, then schedule the survey."""
    ports, event_id = ctx.services, ctx.job.payload["event_id"]
    try:
        event, practice = _load(ports, event_id)
        resolved = _resolve(ports, practice, event)
        with ports.engine.begin() as conn:
            _settle(ctx, conn, practice, event, resolved)
            ctx.complete(conn)
    except PermanentFailure as failure:
        # The job goes to the dead-letter store; the event log says why (replay fixes both).
        with ports.engine.begin() as conn:
            events.set_state(conn, event_id, FAILED, str(failure))
        raise


def _load(ports: Ports, event_id: str) -> tuple[events.StoredEvent, Practice]:
    with ports.engine.begin() as conn:
        try:
            event = events.load(conn, ports.vault, event_id)
        except PayloadError as error:
            raise PermanentFailure(str(error)) from None
        practice = practices.load(conn, ports.box, event.practice_id) if event else None
    if event is None or practice is None:
        raise PermanentFailure("event or practice no longer exists")
    return event, practice


def _resolve(ports: Ports, practice: Practice, event: events.StoredEvent) -> Resolved:
    """The session's facts and contact, reading the EHR where the event did not carry them."""
    outcome = event.outcome
    if isinstance(outcome, NeedsRead):
        reader = SESSION_READERS.get(event.source)
        if reader is None:
            raise PermanentFailure(f"no way to read a session announced by {event.source}")
        outcome = reader(ports, practice, outcome.read)
    if isinstance(outcome, Ignored):
        return outcome
    facts = outcome.facts
    if facts.contact is None and _needs_contact(practice):
        facts = replace(facts, contact=_read_contact(ports, practice, facts.patient_id))
    return Completed(facts)


def _settle(ctx: JobContext, conn: Connection, practice: Practice, event: events.StoredEvent,
            resolved: Resolved) -> None:
    """Record what the event turned out to be, and schedule its survey."""
    if isinstance(resolved, Ignored):
        return events.set_state(conn, event.id, IGNORED, resolved.reason)
    facts = resolved.facts
    if isinstance(event.outcome, NeedsRead):
        # Only known to be a completion now: the event log names the session, and dedupe is
        # done here instead of at intake.
        events.name_session(conn, event.id, facts.session_id, facts.patient_id)
        if not events.claim_session(conn, practice.id, facts.dedupe_keys, event.id):
            return events.set_state(conn, event.id, DUPLICATE_SESSION, ALREADY_SCHEDULED)
    try:
        why_not = schedule_survey(ctx, conn, practice, event.id, facts)
    except ContactNotStorable as error:
        log.error("contact value not storable", field=error.field, event_id=event.id,
                  practice_id=practice.id)
        raise PermanentFailure(str(error), {"field": error.field}) from None
    events.set_state(conn, event.id, SCHEDULED if why_not is None else IGNORED, why_not)


def _read_fhir_session(ports: Ports, practice: Practice, read: EhrRead) -> Resolved:
    """Read an id-only notification's focus from the FHIR server, and classify it."""
    try:
        resource = _fetch(ports.ehr_for(practice.ehr), read)
    except EhrNotFound:
        resource = None  # deleted since, or never there: nothing to survey, nothing to retry
    except EhrTransientError as error:
        raise RetryLater("EHR unavailable while reading the session", error.retry_after) from None
    except EhrPermanentError as error:
        raise PermanentFailure("EHR refused to read the session",
                               {"http_status": error.status}) from None
    if resource is None:
        return Ignored("the session named by the notification was not found in the EHR")
    return classify_resource(resource, read.topic).outcome()


def _fetch(gateway, read: EhrRead) -> dict | None:
    """Read the focus by reference, or (athena) search it by its identifier."""
    if read.resource_id:
        return gateway.read(read.resource_type, read.resource_id)
    if not read.identifier:
        return None
    system, value = read.identifier
    token = f"{system}|{value}" if system else value
    found = gateway.search(read.resource_type, {"identifier": token})
    return found[0] if found else None


def _read_healthie_session(ports: Ports, practice: Practice, read: EhrRead) -> Resolved:
    """Healthie's webhooks are thin: read the appointment over GraphQL, then apply the rule."""
    if not practice.healthie:
        raise PermanentFailure("the practice has no healthie section to read the appointment with")
    try:
        appointment = ports.healthie_for(practice.healthie).appointment(read.resource_id)
    except EhrTransientError as error:
        raise RetryLater("Healthie unavailable while reading the appointment",
                         error.retry_after) from error
    except EhrPermanentError as error:
        raise PermanentFailure("Healthie refused to read the appointment",
                               {"http_status": error.status}) from error
    return session_from_appointment(appointment)


# How each door's NeedsRead is read; a door that sends only ids adds its reader here.
SESSION_READERS: dict[str, Callable[[Ports, Practice, EhrRead], Resolved]] = {
    "fhir": _read_fhir_session,
    "healthie": _read_healthie_session,
}


def _needs_contact(practice: Practice) -> bool:
    if not practice.ehr.readable:  # nothing to read the Patient from
        return False
    return any(channel in ("sms", "email") for channel in practice.delivery.channels)


def _read_contact(ports: Ports, practice: Practice, patient_id: str) -> Contact | None:
    try:
        patient = ports.ehr_for(practice.ehr).read("Patient", patient_id)
    except EhrTransientError as error:
        raise RetryLater("EHR unavailable while reading the client's contact",
                         error.retry_after) from None
    except EhrPermanentError as error:
        log.warning("client contact not readable", http_status=error.status)
        return None
    return contact_from_patient(patient)
