"""End to end: the Canvas plugin, run as Canvas runs it (the SDK's sandbox loader, its Http),
against the real service on a loopback port. A locked note becomes a signed event (202) and a
survey; the answers open a rupture; the cron run puts the banner up with the service's words;
a repair takes it down; a revoked key changes nothing in Canvas."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from canvas_plugin.harness import PluginDriver
from sqlalchemy import select
from werkzeug.serving import make_server

from service import api_keys
from service.persistence.tables import webhook_events
from service.web import create_app
from support import DEMO_SECRET

pytestmark = pytest.mark.e2e
PHONE = "+15551234567"
LOW = {"bond": 1, "goals": 1, "approach": 1, "overall": 1, "tension": True, "tension_intensity": 5}
HIGH = {"bond": 9, "goals": 9, "approach": 9, "overall": 9, "tension": False}
ALERTS = "/api/v1/practices/northside/alerts"


@pytest.fixture
def live_service(services, practice):
    """The service's web app on a free loopback port (real HTTP, the wall clock for signatures)."""
    app = create_app(services=services)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", app.test_client()
    server.shutdown()


@pytest.fixture
def api_key(services, practice):
    with services.engine.begin() as conn:
        return api_keys.create(conn, "northside", services.clock())


@pytest.fixture
def plugin(canvas_bin, live_service, api_key, tmp_path):
    url, _client = live_service
    driver = PluginDriver(canvas_bin, {
        "ALLIANCE_SERVICE_URL": url, "ALLIANCE_PRACTICE_ID": "northside",
        "ALLIANCE_WEBHOOK_SECRET": DEMO_SECRET, "ALLIANCE_API_KEY": api_key.key,
        "ALLIANCE_SMART_ISS": "https://fumage-northside.canvasmedical.com",
    }, tmp_path / "driver.log")
    yield driver
    driver.close()


def on_schedule(clock) -> str:
    """A CRON event time on the plugin's five-minute schedule, just after the service's now."""
    when = clock.now.replace(second=0, microsecond=0) + timedelta(minutes=5)
    return when.replace(minute=when.minute - when.minute % 5).isoformat()


def answer_survey(client, channels, answers: dict) -> None:
    sent = channels["sms"].sent[-1]
    assert sent.to == PHONE
    token = sent.link.rsplit("/s/", 1)[1]
    assert client.post(f"/api/v1/surveys/{token}/response",
                       json={"answers": answers}).status_code == 201


def test_note_lock_to_survey_to_banner_and_back(plugin, live_service, services, channels,
                                               run_due, clock, api_key):
    url, client = live_service
    locked = plugin("lock", patient="client-a", phone=PHONE, note="n1")
    assert locked["http"] == [["POST", "/webhooks/northside/events", 202]]
    assert locked["effects"] == []
    patient_id = locked["patients"]["client-a"]
    with services.engine.begin() as conn:
        [event] = conn.execute(select(webhook_events)).mappings().all()
    assert (event["source"], event["patient_id"]) == ("native", patient_id)
    assert event["delivery_id"].startswith("canvas-note-")

    relocked = plugin("lock", patient="client-a", phone=PHONE, note="n1")
    assert relocked["http"] == [["POST", "/webhooks/northside/events", 200]]  # a duplicate

    run_due()
    assert len(channels["sms"].sent) == 1
    answer_survey(client, channels, LOW)
    run_due()

    cron = plugin("cron", at=on_schedule(clock))
    assert cron["http"] == [["GET", ALERTS, 200]]
    [alert] = client.get(ALERTS, headers={"Authorization": f"Bearer {api_key.key}"}
                         ).get_json()["alerts"]
    assert cron["effects"] == [{"type": "ADD_BANNER_ALERT", "payload": {
        "patient": patient_id, "patient_filter": None, "key": "alliance-rupture",
        "data": {"narrative": alert["summary"], "placement": ["chart", "appointment_card"],
                 "intent": "warning", "href": None}}}]
    assert alert["summary"].startswith("Alliance rupture after the session of ")

    [modal] = plugin("click", patient="client-a")["effects"]
    assert modal["type"] == "LAUNCH_MODAL"
    assert modal["payload"]["data"]["url"].startswith(f"{url}/smart/northside/launch?iss=")

    clock.advance(days=7)
    assert plugin("lock", patient="client-a", phone=PHONE)["http"][0][2] == 202
    run_due()
    answer_survey(client, channels, HIGH)
    run_due()
    repaired = plugin("cron", at=on_schedule(clock))
    assert repaired["effects"] == [{"type": "REMOVE_BANNER_ALERT", "payload": {
        "patient": patient_id, "patient_filter": None, "key": "alliance-rupture"}}]

    with services.engine.begin() as conn:
        api_keys.revoke(conn, "northside", api_key.key_id, services.clock())
    refused = plugin("cron", at=on_schedule(clock))
    assert refused == {"effects": [], "http": [["GET", ALERTS, 401]],
                       "patients": {"client-a": patient_id}}
