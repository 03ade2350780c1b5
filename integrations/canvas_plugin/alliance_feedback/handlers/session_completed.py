"""A locked visit note is a completed session: tell alliance-feedback, which sends the survey.

Canvas has no "checked out" event; a note moving to Locked (or Relocked) is the closest sign
that the session happened and was documented. The POST is signed with the practice's webhook
secret (Standard Webhooks). Canvas does not retry a plugin's HTTP call, so a failure is logged
and left; a repeat (the note unlocked and locked again) carries the same webhook-id and the
same session id, which the service answers as a duplicate.
"""

from datetime import UTC, datetime

from canvas_sdk.effects import Effect
from canvas_sdk.events import EventType
from canvas_sdk.handlers.base import BaseHandler
from canvas_sdk.v1.data.note import Note, NoteStateChangeEvent, NoteStates, NoteTypeCategories
from canvas_sdk.v1.data.patient import ContactPointState, ContactPointSystem, PatientContactPoint
from logger import log

from alliance_feedback.service_client import NotDelivered, Settings, post_event

SESSION_STATES = (NoteStates.LOCKED, NoteStates.RELOCKED)


class SessionCompletedOnLock(BaseHandler):
    """Posts a signed `session.completed` to alliance-feedback when a visit note is locked."""

    RESPONDS_TO = EventType.Name(EventType.NOTE_STATE_CHANGE_EVENT_CREATED)

    def compute(self) -> list[Effect]:
        """Send the event when the note's new state is Locked; no effect in Canvas."""
        if self.note_state() not in SESSION_STATES:
            return []
        settings = Settings(self.secrets)
        missing = settings.missing("service_url", "practice_id", "webhook_secret")
        if missing:
            log.error("alliance-feedback: variables not set: " + ", ".join(missing))
            return []
        note = Note.objects.select_related("note_type_version").filter(
            id=self.event.context.get("note_id")).first()
        if note is None or not self.is_session_note(note, settings):
            return []
        try:
            response = post_event(settings, "canvas-note-" + str(note.id), session_event(note))
        except NotDelivered as error:
            log.error("alliance-feedback: session.completed for note " + str(note.id)
                      + " not delivered: " + str(error))
            return []
        log.info("alliance-feedback: session.completed for note " + str(note.id)
                 + " answered " + str(response.status_code))
        return []

    def note_state(self) -> str | None:
        """The new state: from the event's context, else from the state change it names."""
        state = self.event.context.get("state")
        if state:
            return state
        change = NoteStateChangeEvent.objects.filter(id=self.event.target.id).first()
        return change.state if change else None

    def is_session_note(self, note: Note, settings: Settings) -> bool:
        """A visit note with a patient; of one of ALLIANCE_NOTE_TYPES when that is set."""
        if note.patient_id is None:
            return False
        note_type = note.note_type_version
        if settings.note_types:
            return (note_type.name or "").strip().lower() in settings.note_types
        return note_type.category == NoteTypeCategories.ENCOUNTER


def session_event(note: Note) -> dict:
    """The native `session.completed` event (CONTRACT §3.1) for a locked note."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {
        "session_id": str(note.id),
        "patient_id": str(note.patient.id),
        "ended_at": now,
        "status": "completed",
    }
    if note.provider_id is not None:
        data["practitioner_id"] = str(note.provider.id)
    contact = patient_contact(note.patient)
    if contact:
        data["contact"] = contact
    return {"type": "session.completed", "timestamp": now, "data": data}


def patient_contact(patient) -> dict:
    """The client's mobile phone and e-mail from the chart: active, not opted out, by rank."""
    points = PatientContactPoint.objects.filter(
        patient=patient, state=ContactPointState.ACTIVE, opted_out=False).order_by("rank")
    contact: dict = {}
    for point in points:
        mobile = point.system == ContactPointSystem.PHONE and point.use == "mobile"
        if mobile and "phone" not in contact:
            contact["phone"] = point.value
        elif point.system == ContactPointSystem.EMAIL and "email" not in contact:
            contact["email"] = point.value
    return contact
