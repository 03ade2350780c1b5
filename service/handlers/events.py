"""Intake: record an arriving event durably (one transaction, before the HTTP answer), then, in
a worker, decide whether it is a completed session and schedule its survey."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Mapping

import structlog
from sqlalchemy import Connection, select, update

from service import practices
from service.bootstrap import Services
from service.handlers.runner import JobContext, PermanentFailure, RetryLater
from service.handlers.surveys import schedule_survey
from service.metrics import EVENTS
from service.persistence import outbox
from service.persistence.sql import insert_all_if_absent, insert_if_absent
from service.persistence.tables import session_keys, webhook_events
from service.practices import Practice

log = structlog.get_logger(__name__)

ACCEPTED, IGNORED, DUPLICATE_SESSION = "accepted", "ignored", "duplicate-session"
SCHEDULED, FAILED = "survey-scheduled", "failed"
MAX_ID = 200  # the delivery_id, session_id and patient_id columns
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Recorded:
    event_id: str
    outcome: str          # accepted | ignored | duplicate-session | duplicate-delivery
    reason: str | None = None

    @property
    def duplicate(self) -> bool:
        return self.outcome in (DUPLICATE_SESSION, "duplicate-delivery")


@dataclass(frozen=True)
class Arrival:
    """What the web layer hands over after verifying and parsing a request."""

    source: str                      # native | fhir | healthie
    delivery_id: str
    event_type: str
    payload: dict                    # what the worker needs later (no raw headers)
    completed: bool | None           # None: not known yet (FHIR id-only: read the EHR first)
    reason: str | None = None        # why it is not a completed session
    session_id: str | None = None
    patient_id: str | None = None
    dedupe_keys: tuple[str, ...] = ()


def record_arrival(services: Services, practice: Practice, arrival: Arrival) -> Recorded:
    """Store the event and its outbox job in one transaction; never calls the broker."""
    recorded = _record(services, practice, arrival)
    EVENTS.labels(arrival.source, recorded.outcome).inc()
    return recorded


def _record(services: Services, practice: Practice, arrival: Arrival) -> Recorded:
    now = services.clock()
    event_id = str(uuid.uuid4())
    with services.engine.begin() as conn:
        row = dict(
            id=event_id, practice_id=practice.id, source=arrival.source,
            delivery_id=arrival.delivery_id, event_type=_clip(arrival.event_type, 100),
            session_id=arrival.session_id, patient_id=arrival.patient_id,
            outcome=ACCEPTED, reason=_clip(arrival.reason, 300), payload=arrival.payload,
            received_at=now,
        )
        if not insert_if_absent(conn, webhook_events, row):
            return Recorded(_existing_event(conn, practice.id, arrival), "duplicate-delivery")
        if arrival.completed is False:
            _set_outcome(conn, event_id, IGNORED, arrival.reason)
            return Recorded(event_id, IGNORED, arrival.reason)
        if arrival.completed and not claim_session(conn, practice.id, arrival.dedupe_keys, event_id):
            _set_outcome(conn, event_id, DUPLICATE_SESSION, "a survey for this session was already scheduled")
            return Recorded(event_id, DUPLICATE_SESSION)
        outbox.enqueue(conn, "event.process", {"event_id": event_id}, now=now,
                       practice_id=practice.id)
    log.info("event recorded", event_id=event_id, practice_id=practice.id, source=arrival.source)
    return Recorded(event_id, ACCEPTED)


def claim_session(conn: Connection, practice_id: str, keys: tuple[str, ...], event_id: str) -> bool:
    """True if no earlier completion claimed any of these keys (all are claimed now).

    One statement: every key is inserted unless present. When some were present, the visit was
    seen before; the keys that were new now point at this duplicate event, which is harmless:
    they describe the same visit, and a later notification sharing them is a duplicate too.
    """
    if not keys:
        return True
    rows = [{"practice_id": practice_id, "key": key, "event_id": event_id} for key in keys]
    return insert_all_if_absent(conn, session_keys, rows) == len(keys)


def process_event(ctx: JobContext) -> None:
    """Job `event.process`: resolve what the event means, then schedule the survey."""
    services = ctx.services
    with services.engine.begin() as conn:
        event = conn.execute(select(webhook_events).where(
            webhook_events.c.id == ctx.job.payload["event_id"])).mappings().first()
        practice = practices.load(conn, services.box, event["practice_id"]) if event else None
    if event is None or practice is None:
        raise PermanentFailure("event or practice no longer exists")
    try:
        session = _resolve_session(services, practice, dict(event))
    except PermanentFailure as failure:
        # The job goes to the dead-letter store; the event log says why (replay fixes both).
        with services.engine.begin() as conn:
            _set_outcome(conn, event["id"], FAILED, str(failure))
        raise
    with services.engine.begin() as conn:
        if session.get("ignored"):
            _set_outcome(conn, event["id"], IGNORED, session["ignored"])
        elif session.get("late_claim") and not claim_session(
                conn, practice.id, tuple(session["dedupe_keys"]), event["id"]):
            # id-only notifications are only known to be completions now, so dedupe here.
            _set_outcome(conn, event["id"], DUPLICATE_SESSION, "a survey for this session was already scheduled")
        else:
            outcome = schedule_survey(ctx, conn, practice, event["id"], session)
            _set_outcome(conn, event["id"], SCHEDULED if outcome is None else IGNORED, outcome)
        if session.get("late_claim"):
            # The event log shows which session an id-only notification turned out to be.
            conn.execute(update(webhook_events).where(webhook_events.c.id == event["id"]).values(
                session_id=session["session_id"], patient_id=session["patient_id"]))
        ctx.complete(conn)


def _resolve_session(services: Services, practice: Practice, event: Mapping) -> dict:
    """The session facts and contact, reading the EHR where the event did not carry them."""
    payload = event["payload"]
    if event["source"] in ("fhir", "healthie") and not payload.get("session"):
        read = _read_appointment if event["source"] == "healthie" else _read_focus
        session = read(services, practice, payload)
        if session.get("ignored"):
            return session
        session["late_claim"] = True
    else:
        session = dict(payload["session"])
        session.setdefault("dedupe_keys", [])
    if not session.get("patient_id") or not session.get("session_id"):
        return {"ignored": "the session names no patient"}
    if not storable_ids(session["patient_id"], session["session_id"]):
        return {"ignored": f"the session or patient id is longer than {MAX_ID} characters or holds control characters"}
    if not session.get("contact") and _needs_contact(practice):
        session["contact"] = _read_contact(services, practice, session["patient_id"])
    return session


def _read_focus(services: Services, practice: Practice, payload: dict) -> dict:
    from integrations.ehr.errors import EhrNotFound, EhrPermanentError, EhrTransientError
    from service.intake.sessions import classify_resource

    gateway = services.ehr_for(practice.ehr)
    try:
        resource = _fetch_focus(gateway, payload)
    except EhrNotFound:
        resource = None  # deleted since, or never there: nothing to survey, nothing to retry
    except EhrTransientError as error:
        raise RetryLater("EHR unavailable while reading the session", error.retry_after)
    except EhrPermanentError as error:
        raise PermanentFailure("EHR refused to read the session", {"http_status": error.status})
    if resource is None:
        return {"ignored": "the session named by the notification was not found in the EHR"}
    signal = classify_resource(resource, payload.get("topic"))
    if not signal.completed:
        return {"ignored": signal.reason}
    return _session_from_signal(signal)


def _read_appointment(services: Services, practice: Practice, payload: dict) -> dict:
    """Healthie's webhooks are thin: read the appointment over GraphQL, then apply the rule."""
    from integrations.ehr.errors import EhrPermanentError, EhrTransientError
    from service.intake.healthie import session_from_appointment

    if not practice.healthie:
        raise PermanentFailure("the practice has no healthie section to read the appointment with")
    try:
        api = services.healthie_for(practice.healthie)
        appointment = api.appointment(payload["appointment_id"])
    except EhrTransientError as error:
        raise RetryLater("Healthie unavailable while reading the appointment",
                         error.retry_after) from error
    except EhrPermanentError as error:
        raise PermanentFailure("Healthie refused to read the appointment",
                               {"http_status": error.status}) from error
    return session_from_appointment(appointment)


def _fetch_focus(gateway, payload: dict) -> dict | None:
    """Read the focus by reference, or (athena) search it by its identifier."""
    if payload.get("focus"):
        resource_type, _, resource_id = payload["focus"].partition("/")
        return gateway.read(resource_type, resource_id)
    identifier = payload.get("focus_identifier")
    if not identifier or not payload.get("focus_type"):
        return None
    system, value = identifier
    token = f"{system}|{value}" if system else value
    found = gateway.search(payload["focus_type"], {"identifier": token})
    return found[0] if found else None


def _session_from_signal(signal) -> dict:
    return {
        "session_id": signal.session_id, "patient_id": signal.patient_id,
        "practitioner_id": signal.practitioner_id, "ended_at": signal.ended_at,
        "contact": dict(signal.contact) if signal.contact else None,
        "dedupe_keys": list(signal.dedupe_keys),
    }


def _needs_contact(practice: Practice) -> bool:
    if practice.ehr["type"] != "fhir-r4":  # nothing to read the Patient from
        return False
    return any(channel in ("sms", "email") for channel in practice.delivery["channels"])


def _read_contact(services: Services, practice: Practice, patient_id: str) -> dict | None:
    from integrations.ehr.errors import EhrPermanentError, EhrTransientError
    from service.intake.sessions import contact_from_patient

    try:
        patient = services.ehr_for(practice.ehr).read("Patient", patient_id)
    except EhrTransientError as error:
        raise RetryLater("EHR unavailable while reading the client's contact", error.retry_after)
    except EhrPermanentError as error:
        log.warning("client contact not readable", http_status=error.status)
        return None
    return contact_from_patient(patient)


def _existing_event(conn: Connection, practice_id: str, arrival: Arrival) -> str:
    return conn.execute(select(webhook_events.c.id).where(
        webhook_events.c.practice_id == practice_id, webhook_events.c.source == arrival.source,
        webhook_events.c.delivery_id == arrival.delivery_id)).scalar_one()


def storable_ids(*identifiers: str | None) -> bool:
    """Whether ids can be stored as they are: short enough, no NUL (PostgreSQL) or control characters."""
    return all(value is None or (len(value) <= MAX_ID and not CONTROL.search(value))
               for value in identifiers)


def _clip(text: str | None, length: int) -> str | None:
    """Fit free text (topics, reasons) to its column, without control characters (PostgreSQL
    refuses NUL); ids are checked by the web layer instead."""
    if text is None:
        return None
    text = CONTROL.sub(" ", text)
    return text if len(text) <= length else text[: length - 1] + "…"


def _set_outcome(conn: Connection, event_id: str, outcome: str, reason: str | None) -> None:
    conn.execute(update(webhook_events).where(webhook_events.c.id == event_id)
                 .values(outcome=outcome, reason=_clip(reason, 300)))

