"""A locked visit note posts one signed session.completed; anything else posts nothing."""

import pytest
from alliance_feedback.handlers.session_completed import SessionCompletedOnLock
from canvas_sdk.test_utils.factories import (
    NoteFactory,
    NoteStateChangeEventFactory,
    NoteTypeFactory,
)
from canvas_sdk.v1.data.note import NoteStates
from canvas_sdk.v1.data.patient import PatientContactPoint

EVENT = "NOTE_STATE_CHANGE_EVENT_CREATED"


def visit_note(**note_type):
    return NoteFactory.create(note_type_version=NoteTypeFactory.create(
        **{"name": "Therapy session", "category": "encounter", **note_type}))


def contact_point(patient, system, value, **overrides):
    fields = dict(use="mobile", use_notes="", rank=1, state="active", has_consent=True,
                  verification_token="", opted_out=False)
    PatientContactPoint.objects.create(patient=patient, system=system, value=value,
                                       **{**fields, **overrides})


def lock(make_event, note, variables, state=NoteStates.LOCKED, with_state=True):
    change = NoteStateChangeEventFactory.create(note=note, state=state)
    context = {"note_id": str(note.id), "patient_id": str(note.patient.id)}
    if with_state:
        context["state"] = state
    handler = SessionCompletedOnLock(make_event(EVENT, str(change.id), context,
                                                "NoteStateChangeEvent"), variables)
    return handler.compute()


def test_a_locked_visit_note_posts_the_session_with_the_clients_contact(service, variables,
                                                                        make_event):
    note = visit_note()
    contact_point(note.patient, "phone", "+15550001111", use="home", rank=1)
    contact_point(note.patient, "phone", "+15551234567", rank=2)
    contact_point(note.patient, "email", "old@example.org", rank=3, state="deleted")
    contact_point(note.patient, "email", "client@example.org", rank=4)
    assert lock(make_event, note, variables) == []
    [request] = service.requests
    assert request.path == "/webhooks/northside/events"
    assert request.headers["webhook-id"] == f"canvas-note-{note.id}"
    event = request.json()
    assert event["type"] == "session.completed"
    assert event["data"] == {
        "session_id": str(note.id), "patient_id": str(note.patient.id),
        "practitioner_id": str(note.provider.id), "status": "completed",
        "ended_at": event["timestamp"],
        "contact": {"phone": "+15551234567", "email": "client@example.org"}}


def test_a_client_who_opted_out_of_a_channel_is_not_given_it(service, variables, make_event):
    note = visit_note()
    contact_point(note.patient, "phone", "+15551234567", opted_out=True)
    lock(make_event, note, variables)
    assert "contact" not in service.requests[0].json()["data"]


def test_locking_again_sends_the_same_webhook_id_so_the_service_answers_a_duplicate(
        service, variables, make_event):
    note = visit_note()
    lock(make_event, note, variables)
    lock(make_event, note, variables, state=NoteStates.RELOCKED)
    first, second = service.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.json()["data"]["session_id"] == second.json()["data"]["session_id"]


def test_the_state_is_read_from_the_state_change_when_the_context_lacks_it(service, variables,
                                                                           make_event):
    lock(make_event, visit_note(), variables, with_state=False)
    assert len(service.requests) == 1


@pytest.mark.parametrize("state", [NoteStates.NEW, NoteStates.UNLOCKED, NoteStates.SIGNED,
                                   NoteStates.DELETED, NoteStates.CANCELLED, NoteStates.NOSHOW])
def test_other_states_send_nothing(service, variables, make_event, state):
    assert lock(make_event, visit_note(), variables, state=state) == []
    assert service.requests == []


def test_notes_that_are_not_visits_send_nothing(service, variables, make_event):
    lock(make_event, visit_note(category="message"), variables)
    lock(make_event, visit_note(category="review"), variables)
    assert service.requests == []


def test_note_types_named_in_the_variable_are_the_only_sessions(service, variables, make_event):
    variables["ALLIANCE_NOTE_TYPES"] = "Therapy session, Couples session"
    lock(make_event, visit_note(name="Office visit"), variables)
    assert service.requests == []
    lock(make_event, visit_note(name="couples session", category="appointment"), variables)
    assert len(service.requests) == 1


def test_without_its_variables_the_handler_sends_nothing(service, variables, make_event):
    del variables["ALLIANCE_WEBHOOK_SECRET"]
    assert lock(make_event, visit_note(), variables) == []
    assert service.requests == []


def test_a_refusal_by_the_service_is_logged_not_raised(service, variables, make_event):
    service.answer(401, {"title": "Bad signature"})
    assert lock(make_event, visit_note(), variables) == []
    assert len(service.requests) == 1


def test_a_service_that_cannot_be_reached_is_logged_not_raised(variables, make_event):
    variables["ALLIANCE_SERVICE_URL"] = "http://127.0.0.1:9"
    assert lock(make_event, visit_note(), variables) == []
