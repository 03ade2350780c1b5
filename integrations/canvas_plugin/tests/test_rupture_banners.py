"""The cron handler turns the service's alerts into banner effects, one per client."""

import json

import pytest
from alliance_feedback.handlers.rupture_banners import BANNER_KEY, RuptureBanners
from canvas_sdk.effects import EffectType

AT = "2026-11-26T15:05:00+00:00"  # on the five-minute schedule


def run(make_event, variables, at=AT):
    return RuptureBanners(make_event("CRON", at), variables).compute()


def alert(patient_id, status="open", summary="Alliance rupture after the session of 2026-11-26"):
    return {"id": f"r-{patient_id}-{status}", "patient_id": patient_id, "status": status,
            "summary": summary}


def effects_of(effects):
    return [(EffectType.Name(e.type), json.loads(e.payload)) for e in effects]


def test_open_ruptures_get_a_warning_banner_and_repaired_ones_lose_it(service, variables,
                                                                      make_event):
    service.answer(200, {"alerts": [alert("p1"), alert("p2", "resolved"),
                                    alert("p3", "resolved"), alert("p3")], "next_cursor": None})
    effects = effects_of(run(make_event, variables))
    assert effects == [
        ("ADD_BANNER_ALERT", {"data": {
            "narrative": "Alliance rupture after the session of 2026-11-26",
            "placement": ["chart", "appointment_card"], "intent": "warning", "href": None},
            "patient": "p1", "patient_filter": None, "key": BANNER_KEY}),
        ("ADD_BANNER_ALERT", {"data": {
            "narrative": "Alliance rupture after the session of 2026-11-26",
            "placement": ["chart", "appointment_card"], "intent": "warning", "href": None},
            "patient": "p3", "patient_filter": None, "key": BANNER_KEY}),
        ("REMOVE_BANNER_ALERT", {"patient": "p2", "patient_filter": None, "key": BANNER_KEY}),
    ]


def test_entries_that_name_no_patient_are_passed_over(service, variables, make_event):
    service.answer(200, {"alerts": ["junk", {"status": "open"}, {"patient_id": 7},
                                    alert("p1")]})
    assert [e["patient"] for _, e in effects_of(run(make_event, variables))] == ["p1"]


def test_the_alerts_are_asked_for_a_week_back_from_the_run(service, variables, make_event):
    service.answer(200, {"alerts": []})
    assert run(make_event, variables) == []
    assert service.requests[0].query["since"] == ["2026-11-19T15:05:00Z"]


def test_a_long_summary_is_cut_to_the_banner_limit(service, variables, make_event):
    service.answer(200, {"alerts": [alert("p1", summary="word " * 40)]})
    [(_, payload)] = effects_of(run(make_event, variables))
    narrative = payload["data"]["narrative"]
    assert len(narrative) == 90 and narrative.endswith("…")


def test_off_schedule_the_handler_does_nothing(service, variables, make_event):
    assert run(make_event, variables, at="2026-11-26T15:07:00+00:00") == []
    assert service.requests == []


@pytest.mark.parametrize("status", [401, 503])
def test_when_the_alerts_cannot_be_read_no_banner_changes(service, variables, make_event, status):
    service.answer(status)
    assert run(make_event, variables) == []


def test_without_an_api_key_nothing_is_asked(service, variables, make_event):
    variables["ALLIANCE_API_KEY"] = ""
    assert run(make_event, variables) == []
    assert service.requests == []
