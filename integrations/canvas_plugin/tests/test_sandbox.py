"""The handlers as Canvas runs them: loaded by the plugin runner's own loader under the strict
sandbox (RestrictedPython), then run. `canvas validate` only imports the modules; this also
runs each handler's code, where a construct the sandbox refuses would fail."""

import json
import sys
from pathlib import Path

import pytest
from canvas_sdk.effects import EffectType
from canvas_sdk.test_utils.factories import (
    NoteFactory,
    NoteStateChangeEventFactory,
    NoteTypeFactory,
)
from canvas_sdk.v1.data.note import NoteStates
from plugin_runner.plugin_runner import sandbox_plugin_handlers

PLUGIN = Path(__file__).resolve().parents[1] / "alliance_feedback"


@pytest.fixture
def sandboxed():
    """Handler classes by name, loaded in the sandbox; the plain imports are put back after."""
    saved = {name: module for name, module in sys.modules.items()
             if name == "alliance_feedback" or name.startswith("alliance_feedback.")}
    handlers = json.loads((PLUGIN / "CANVAS_MANIFEST.json").read_text())["components"]["handlers"]
    results = sandbox_plugin_handlers("alliance_feedback", PLUGIN, handlers)
    assert [r.error for r in results] == [None] * len(handlers)
    yield {r.handler_class: r.scope[r.handler_class] for r in results}
    for name in [n for n in sys.modules if n.startswith("alliance_feedback")]:
        del sys.modules[name]
    sys.modules.update(saved)


def test_every_handler_runs_in_the_sandbox(sandboxed, service, variables, make_event):
    note = NoteFactory.create(note_type_version=NoteTypeFactory.create(category="encounter"))
    change = NoteStateChangeEventFactory.create(note=note, state=NoteStates.LOCKED)
    locked = make_event("NOTE_STATE_CHANGE_EVENT_CREATED", str(change.id),
                        {"note_id": str(note.id), "state": "LKD"}, "NoteStateChangeEvent")
    assert sandboxed["SessionCompletedOnLock"](locked, variables).compute() == []
    assert service.requests[0].headers["webhook-signature"].startswith("v1,")

    service.answer(200, {"alerts": [{"id": "r1", "patient_id": "p1", "status": "open",
                                     "summary": "Alliance rupture"}], "next_cursor": None})
    cron = make_event("CRON", "2026-11-26T15:05:00+00:00")
    [banner] = sandboxed["RuptureBanners"](cron, variables).compute()
    assert EffectType.Name(banner.type) == "ADD_BANNER_ALERT"

    click = make_event("ACTION_BUTTON_CLICKED", "p1", {"key": "alliance_feedback_trend"})
    [modal] = sandboxed["AllianceTrendButton"](click, variables).compute()
    assert EffectType.Name(modal.type) == "LAUNCH_MODAL"
