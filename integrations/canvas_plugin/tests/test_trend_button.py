"""The chart header button opens the SMART trend view in the right pane, where configured."""

import base64
import json
from urllib.parse import parse_qs, urlsplit

from alliance_feedback.handlers.trend_button import AllianceTrendButton
from canvas_sdk.effects import EffectType


def button(make_event, variables, event_type, context=None):
    return AllianceTrendButton(make_event(event_type, "pat-17", context), variables)


def test_the_button_is_shown_in_the_chart_header(make_event, variables):
    [effect] = button(make_event, variables, "SHOW_CHART_PATIENT_HEADER_BUTTON").compute()
    assert EffectType.Name(effect.type) == "SHOW_ACTION_BUTTON"
    assert json.loads(effect.payload)["data"]["title"] == "Alliance trend"


def test_it_is_not_shown_where_the_practice_has_no_trend_app(make_event, variables):
    variables["ALLIANCE_SMART_ISS"] = ""
    assert button(make_event, variables, "SHOW_CHART_PATIENT_HEADER_BUTTON").compute() == []


def test_a_click_opens_the_smart_launch_for_the_charts_patient(make_event, variables, service):
    [effect] = button(make_event, variables, "ACTION_BUTTON_CLICKED",
                      {"key": "alliance_feedback_trend"}).compute()
    assert EffectType.Name(effect.type) == "LAUNCH_MODAL"
    data = json.loads(effect.payload)["data"]
    assert data["target"] == "right_chart_pane_large" and data["title"] == "Alliance trend"
    url = urlsplit(data["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{service.url}/smart/northside/launch"
    query = parse_qs(url.query)
    assert query["iss"] == ["https://fumage-northside.canvasmedical.com"]
    assert json.loads(base64.b64decode(query["launch"][0])) == {"patient": "pat-17"}


def test_another_plugins_button_is_not_ours(make_event, variables):
    assert button(make_event, variables, "ACTION_BUTTON_CLICKED", {"key": "other"}).compute() == []
