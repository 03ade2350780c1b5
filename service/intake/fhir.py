"""The FHIR door (CONTRACT §3.2): a verified notification Bundle becomes one Arrival per event.

A full-resource event is classified at once; an id-only one becomes NeedsRead (the worker reads
the focus from the EHR), unless no status of its focus could make it a completed session.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from service.intake.facts import (
    Arrival,
    EhrRead,
    Ignored,
    NeedsRead,
    Outcome,
    Refused,
    storable_ids,
)
from service.intake.fhir_notifications import (
    Notification,
    NotificationError,
    NotificationEvent,
    parse_notification,
)
from service.intake.sessions import COMPLETED_STATUSES, classify_resource, topic_name

SOURCE = "fhir"
EVENT_KINDS = ("event-notification", "query-event")


@dataclass(frozen=True)
class FhirDelivery:
    kind: str  # handshake, heartbeat, event-notification, …
    arrivals: tuple[Arrival, ...]  # none for a handshake or heartbeat: nothing to store

    @property
    def has_events(self) -> bool:
        """False for handshakes and heartbeats: they only prove the channel works."""
        return self.kind in EVENT_KINDS


def fhir_arrivals(body: bytes) -> FhirDelivery:
    """What a notification Bundle says; raises Refused naming what is wrong with it."""
    try:
        notification = parse_notification(body)
    except NotificationError as error:
        unparseable = str(error).startswith(("not JSON", "not UTF-8"))
        raise Refused("unparseable" if unparseable else "invalid", str(error)) from None
    if notification.kind not in EVENT_KINDS:
        return FhirDelivery(notification.kind, ())
    topic = (notification.topic or "unknown topic")
    arrivals = tuple(
        Arrival(SOURCE, _delivery_id(notification, event, body, index), topic,
                _outcome(notification, event))
        for index, event in enumerate(notification.events))
    return FhirDelivery(notification.kind, arrivals)


def _outcome(notification: Notification, event: NotificationEvent) -> Outcome:
    if event.resource is None:
        return _id_only(notification, event)
    signal = classify_resource(event.resource, notification.topic, notification.included)
    return signal.outcome()


def _id_only(notification: Notification, event: NotificationEvent) -> Outcome:
    """Read the focus in the worker, unless no status could make it a completed session."""
    focus_type = (event.focus or topic_name(notification.topic) or "").split("/")[0]
    focus_type = focus_type.split(".")[0]
    patient_id = event.patient.split("/", 1)[1] if event.patient else None
    patient_id = patient_id if storable_ids(patient_id) else None
    if not event.focus and not event.focus_identifier:
        return Ignored("the notification names no focus resource")
    # Classify the best case (the focus in its completed status): if even that is no completed
    # session (a Patient focus, athena's Appointment.schedule topic), the EHR need not be asked.
    best_case = classify_resource(
        {"resourceType": focus_type, "status": COMPLETED_STATUSES.get(focus_type)},
        notification.topic)
    if not best_case.completed:
        return Ignored(best_case.reason, patient_id=patient_id)
    resource_id = event.focus.partition("/")[2] if event.focus else None
    read = EhrRead(focus_type, resource_id or None, event.focus_identifier, notification.topic)
    return NeedsRead(read, patient_id)


def _delivery_id(notification: Notification, event: NotificationEvent, body: bytes,
                 index: int) -> str:
    if event.event_id:  # athena asks receivers to dedupe on notificationEvent.id
        delivery_id = f"event:{event.event_id}"
    elif notification.subscription and event.event_number:
        delivery_id = f"{notification.subscription}#{event.event_number}"
    else:
        return f"sha256:{hashlib.sha256(body).hexdigest()}#{index}"
    if storable_ids(delivery_id):
        return delivery_id
    return f"sha256:{hashlib.sha256(delivery_id.encode()).hexdigest()}"
