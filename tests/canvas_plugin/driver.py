"""Runs the Canvas plugin as Canvas would, for tests in the service's suite.

Started with the Canvas SDK's Python (.venv-canvas/bin/python), not the service's: it sets up
the SDK's Django models on a throw-away test database, loads the plugin's handlers with the
plugin runner's own sandbox loader, and then answers commands, one JSON object per line on
stdin, with one line `RESULT {json}` on stdout:

  {"do": "lock", "patient": "p1", "phone": "+1…", "note": "n1"}
                                                    a visit note (new, or the one called n1)
                                                    locked for that patient
  {"do": "cron", "at": "2026-11-26T15:05:00+00:00"}  a CRON event
  {"do": "click", "patient": "p1"}                  the Alliance trend button clicked

Each result holds the effects the handler returned and the HTTP calls it made (method, path,
status), which go to wherever the variables (argv[1], JSON) point: the real service.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

PLUGIN = (Path(__file__).resolve().parents[2] / "integrations" / "canvas_plugin"
          / "alliance_feedback")
os.environ.setdefault("IS_TESTING", "1")  # the SDK's settings: SQLite, local caches
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")


def main() -> None:
    import canvas_sdk  # noqa: F401  (sets Django up, as pytest-canvas does)
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    variables = json.loads(sys.argv[1])
    calls = _record_http()
    handlers = _sandboxed_handlers()
    patients: dict = {}
    for line in sys.stdin:
        command = json.loads(line)
        calls.clear()
        effects = COMMANDS[command["do"]](handlers, variables, patients, command)
        result = {"effects": [_effect(e) for e in effects], "http": list(calls),
                  "patients": {alias: p.id for alias, p in patients.items()}}
        print("RESULT " + json.dumps(result), flush=True)


def _sandboxed_handlers() -> dict:
    from plugin_runner.plugin_runner import sandbox_plugin_handlers

    declared = json.loads((PLUGIN / "CANVAS_MANIFEST.json").read_text())["components"]["handlers"]
    results = sandbox_plugin_handlers("alliance_feedback", PLUGIN, declared)
    failed = [str(r.error) for r in results if r.error is not None]
    if failed:
        raise SystemExit("handlers failed to load in the sandbox: " + "; ".join(failed))
    return {r.handler_class: r.scope[r.handler_class] for r in results}


def _record_http() -> list:
    """The (method, path, status) of every request the plugin makes: a spy, not a stand-in."""
    from urllib.parse import urlsplit

    import requests

    calls: list = []
    send = requests.Session.request

    def recording(self, method, url, *args, **kwargs):
        response = send(self, method, url, *args, **kwargs)
        calls.append([method, urlsplit(url).path, response.status_code])
        return response

    requests.Session.request = recording
    return calls


def _event(event_type: str, target: str, context: dict | None = None, target_type: str = ""):
    from canvas_generated.messages.events_pb2 import Event as EventRequest
    from canvas_sdk.events import Event, EventType

    return Event(EventRequest(type=EventType.Value(event_type), target=target,
                              target_type=target_type, context=json.dumps(context or {})))


def lock(handlers: dict, variables: dict, patients: dict, command: dict) -> list:
    from canvas_sdk.test_utils.factories import (
        NoteFactory,
        NoteStateChangeEventFactory,
        NoteTypeFactory,
        PatientFactory,
    )
    from canvas_sdk.v1.data.note import NoteStates
    from canvas_sdk.v1.data.patient import PatientContactPoint

    patient = patients.get(command["patient"])
    if patient is None:
        patient = patients[command["patient"]] = PatientFactory.create()
        PatientContactPoint.objects.create(
            patient=patient, system="phone", value=command["phone"], use="mobile", use_notes="",
            rank=1, state="active", has_consent=True, verification_token="", opted_out=False)
    note = NOTES.get(command.get("note"))
    if note is None:
        note_type = NoteTypeFactory.create(name="Therapy session", category="encounter")
        note = NoteFactory.create(patient=patient, note_type_version=note_type)
        NOTES[command.get("note")] = note
    change = NoteStateChangeEventFactory.create(note=note, state=NoteStates.LOCKED)
    event = _event("NOTE_STATE_CHANGE_EVENT_CREATED", str(change.id),
                   {"note_id": str(note.id), "patient_id": patient.id, "state": "LKD"},
                   "NoteStateChangeEvent")
    return handlers["SessionCompletedOnLock"](event, variables).compute()


def cron(handlers: dict, variables: dict, patients: dict, command: dict) -> list:
    return handlers["RuptureBanners"](_event("CRON", command["at"]), variables).compute()


def click(handlers: dict, variables: dict, patients: dict, command: dict) -> list:
    event = _event("ACTION_BUTTON_CLICKED", patients[command["patient"]].id,
                   {"key": "alliance_feedback_trend"})
    return handlers["AllianceTrendButton"](event, variables).compute()


def _effect(effect) -> dict:
    from canvas_sdk.effects import EffectType

    return {"type": EffectType.Name(effect.type), "payload": json.loads(effect.payload)}


COMMANDS = {"lock": lock, "cron": cron, "click": click}
NOTES: dict = {}

if __name__ == "__main__":
    main()
