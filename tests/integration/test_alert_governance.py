"""Alert governance on SQLite and PostgreSQL, over a history stored by the real pipeline:
`alliance ruptures what-if` replays it under other thresholds (counts only, one audit row),
`alliance alerts report` and /metrics count the episodes and the actions taken on them."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from trend_history import SILENT, STORY, seed_history

from service import practices
from service.persistence.queries import alert_actions as alert_actions_queries
from service.persistence.queries import audit, episodes
from service.web import create_app
from support import own_inbound_secrets, practice_document

# A rupture, four surveys not returned (unresolved after the 3-session window), then repair.


@pytest.fixture
def alliance(alliance_cli, practice):
    return lambda *args: alliance_cli(*args, USER="dana", ALLIANCE_LOG_LEVEL="INFO")


@pytest.fixture
def history(services, practice, channels, run_due, clock):
    """pat-17: a rupture repaired, a new one open; pat-23: a rupture unresolved, then repaired."""
    client = create_app(services=services).test_client()

    def later():  # each episode opens at its own time (well before any reminder falls due)
        clock.advance(minutes=30)
        return run_due()

    seed_history(client, later, channels, "pat-17", STORY)
    seed_history(client, later, channels, "pat-23", SILENT)
    with services.engine.begin() as conn:
        stored = {patient: [episode.status for episode in _stored(conn, services, patient)]
                  for patient in ("pat-17", "pat-23")}
    assert stored == {"pat-17": ["resolved", "open"], "pat-23": ["resolved"]}
    return stored


def table_rows(output: str) -> dict[str, list[str]]:
    rows = {}
    for line in output.splitlines():
        if line.startswith("{"):
            continue  # a log line
        name, numbers = line[:26].strip(), line[26:].split()
        if len(numbers) == 3 and numbers[0].isdigit():
            rows[name] = numbers
    return rows


def audit_rows(services) -> list[dict]:
    with services.engine.begin() as conn:
        return audit.recent(conn, "northside", None, None, 100)


def test_what_if_replays_the_stored_history_and_counts_only(alliance, services, history):
    before = len(audit_rows(services))

    result = alliance("ruptures", "what-if", "--practice", "northside", "--set", "repair_window=6",
                      "--set", "tension_rupture_intensity=5", "--set", "rupture_sd=4")

    assert result.exit_code == 0, result.output
    assert ("northside: 2 client(s), 20 session(s) replayed (15 returned, 5 not returned)"
            in result.output)
    assert ("proposed: rupture_sd 2 → 4; tension_rupture_intensity 3 → 5; repair_window 3 → 6"
            in result.output)
    # The rules in force give what the pipeline stored.
    stored = [status for statuses in history.values() for status in statuses]
    current = {name: int(numbers[0]) for name, numbers in table_rows(result.output).items()}
    assert (current["alerts (episodes opened)"], current["repairs"],
            current["still open at the end"]) == (len(stored), stored.count("resolved"),
                                                  stored.count("open"))
    assert table_rows(result.output) == {
        "alerts (episodes opened)": ["3", "2", "-1"], "repairs": ["2", "2", "0"],
        "unresolved episodes": ["1", "0", "-1"], "still open at the end": ["1", "0", "-1"],
        "clients affected": ["2", "2", "0"]}
    for secret in ("pat-17", "pat-23", "enc-", "tension_intensity", "bond"):
        assert secret not in result.output  # counts only, in the table and the log lines
    rows = audit_rows(services)
    assert len(rows) == before + 1
    assert {key: rows[0][key] for key in ("practice_id", "patient_id", "actor", "channel",
                                          "action", "what")} == {
        "practice_id": "northside", "patient_id": None, "actor": "cli:dana", "channel": "cli",
        "action": "read", "what": "rupture what-if"}


def test_one_raised_threshold_changes_one_count(alliance, history):
    result = alliance("ruptures", "what-if", "--practice", "northside", "--set", "repair_window=6")

    assert result.exit_code == 0, result.output
    assert table_rows(result.output)["unresolved episodes"] == ["1", "0", "-1"]
    assert table_rows(result.output)["alerts (episodes opened)"] == ["3", "3", "0"]


def test_bad_settings_are_refused_by_name_and_nothing_is_read(alliance, services, history):
    before = len(audit_rows(services))

    unknown = alliance("ruptures", "what-if", "--practice", "northside", "--set", "nope=1",
                       "--set", "repair_window=9")
    malformed = alliance("ruptures", "what-if", "--practice", "northside", "--set", "repair")
    no_practice = alliance("ruptures", "what-if", "--practice", "nowhere", "--set",
                           "repair_window=4")
    no_setting = alliance("ruptures", "what-if", "--practice", "northside")

    assert unknown.exit_code == 1
    assert ("--set refused, nothing was replayed: nope: unknown rule; repair_window: must be "
            "from 1 to 6") in unknown.output
    assert malformed.exit_code == 2 and "expected NAME=VALUE" in malformed.output
    assert no_practice.exit_code == 1 and "unknown practice 'nowhere'" in no_practice.output
    assert no_setting.exit_code == 2 and "--set" in no_setting.output
    assert len(audit_rows(services)) == before


def test_a_practice_without_history_says_so(alliance, services):
    document = practices.validate_document(practice_document(
        id="eastside", **own_inbound_secrets("eastside")))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())

    result = alliance("ruptures", "what-if", "--practice", "eastside", "--set", "repair_window=4")

    assert result.exit_code == 1
    assert "practice 'eastside' has no stored survey history to replay yet" in result.output


def _act(conn, episode_id: str, action: str, source: str, at) -> None:
    alert_actions_queries.add(conn, {
        "id": str(uuid.uuid4()), "practice_id": "northside", "episode_id": episode_id,
        "action": action, "actor": "Practitioner/dr-ana" if source != "escalation" else "service",
        "source": source, "note": None, "at": at, "dedupe_key": str(uuid.uuid4())})


@pytest.fixture
def actions(services, history):
    """pat-17's repaired episode acknowledged in the view after 2 h; its open one snoozed, then
    acknowledged by CDS feedback after 30 h; pat-23's escalated and never acknowledged."""
    with services.engine.begin() as conn:
        repaired, open_now = _stored(conn, services, "pat-17")
        (escalated,) = _stored(conn, services, "pat-23")
        _act(conn, repaired.id, "acknowledge", "smart-view", repaired.opened_at + timedelta(hours=2))
        _act(conn, open_now.id, "snooze", "smart-view", open_now.opened_at + timedelta(hours=1))
        _act(conn, open_now.id, "acknowledge", "cds-feedback",
             open_now.opened_at + timedelta(hours=30))
        _act(conn, open_now.id, "acknowledge", "smart-view",
             open_now.opened_at + timedelta(hours=40))  # a later one: not the first
        _act(conn, escalated.id, "escalate", "escalation", escalated.opened_at + timedelta(hours=72))
        _act(conn, escalated.id, "complete-escalation", "escalation",
             escalated.opened_at + timedelta(hours=80))
    return repaired, open_now, escalated


def _stored(conn, services, patient_id: str) -> list:
    from service.persistence.queries import erasure

    found = erasure.export_client(conn, services.vault, "northside", patient_id, [])
    return sorted((episodes.load(conn, e["id"]) for e in found["rupture_episodes"]),
                  key=lambda episode: episode.opened_at)


def test_the_report_counts_the_actions_on_each_episode(alliance, actions):
    result = alliance("alerts", "report", "--practice", "northside", "--json")

    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["overall"] == found["practices"]["northside"] == {
        "ruptures": 3, "acknowledged": 2, "snoozed": 1, "escalated": 1, "repaired": 2,
        "open_now": 1, "ack_median_seconds": 16 * 3600.0, "ack_p90_seconds": 30 * 3600.0}
    table = alliance("alerts", "report")
    lines = [line for line in table.output.splitlines() if not line.startswith("{")]
    assert lines[0].split()[:2] == ["practice", "ruptures"]
    assert lines[1].split() == ["northside", "3", "2", "(67%)", "1", "(33%)", "1", "(33%)", "2",
                                "(67%)", "1", "16.0", "h", "30.0", "h"]
    assert lines[2].startswith("all practices")
    assert "pat-" not in table.output


def test_the_report_takes_the_episodes_opened_since_a_date(alliance, actions):
    _repaired, open_now, _escalated = actions
    since = (open_now.opened_at - timedelta(seconds=1)).isoformat()

    found = json.loads(alliance("alerts", "report", "--since", since, "--json").output)

    # pat-17's open episode, and pat-23's (seeded after it), not pat-17's first
    assert {key: found["overall"][key] for key in ("ruptures", "acknowledged", "escalated",
                                                   "ack_median_seconds")} == {
        "ruptures": 2, "acknowledged": 1, "escalated": 1, "ack_median_seconds": 30 * 3600}
    nothing = alliance("alerts", "report", "--since", "2100-01-01")
    assert nothing.exit_code == 0 and "no rupture episodes opened since 2100-01-01" in nothing.output
    refused = alliance("alerts", "report", "--since", "last tuesday")
    assert refused.exit_code == 2 and "'last tuesday' is not an ISO 8601 date" in refused.output


def test_metrics_count_episodes_and_actions_from_the_database(services, actions):
    text = create_app(services=services).test_client().get("/metrics").get_data(as_text=True)

    assert 'alliance_ruptures{practice="northside",state="open"} 1.0' in text
    assert 'alliance_ruptures{practice="northside",state="repaired"} 2.0' in text
    assert ('alliance_alert_actions{action="acknowledge",practice="northside",'
            'source="smart-view"} 2.0') in text
    assert ('alliance_alert_actions{action="acknowledge",practice="northside",'
            'source="cds-feedback"} 1.0') in text
    assert ('alliance_alert_actions{action="complete-escalation",practice="northside",'
            'source="escalation"} 1.0') in text
    assert "alliance_alert_counts_up 1.0" in text
    assert "pat-17" not in text and "pat-23" not in text
    assert "alliance_jobs_total" in text  # the process's own metrics are still there
