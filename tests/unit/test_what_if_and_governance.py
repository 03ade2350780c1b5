"""The what-if replay and the governance figures as pure functions, and the CLI's parsing and
tables (the commands over a real database: tests/integration/test_alert_governance.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import click
import pytest
from trend_history import DIP, GOOD, SILENT, STORY

from service.cli_alerts import parse_settings, report_table, what_if_table
from service.domain import RuptureRules, SessionObservation, builtin_instruments
from service.domain.governance import EpisodeActivity, governance_report, percentile
from service.domain.what_if import EpisodeCounts, ReplayedSession, proposed_rules, what_if

INSTRUMENT = builtin_instruments()["brief-alliance-check"]
# A rupture, four surveys not returned, then a good one: unresolved after the 3-session window.


def history(answers: list[dict | None]) -> list[ReplayedSession]:
    return [ReplayedSession(INSTRUMENT, SessionObservation(f"s{number}", None, answer))
            for number, answer in enumerate(answers)]


def replay(changes: dict, *answers: list[dict | None]):
    return what_if([history(each) for each in answers], RuptureRules(),
                   proposed_rules({}, changes))


def test_the_rules_in_force_count_each_episode_once():
    result = replay({}, STORY, SILENT)

    # STORY: a rupture repaired, a new one still open; SILENT: a rupture that went unresolved
    # and was repaired late.
    assert result.current == EpisodeCounts(alerts=3, repairs=2, unresolved=1, open_at_end=1,
                                           clients_affected=2)
    assert result.proposed == result.current and result.difference == EpisodeCounts()
    assert (result.clients, result.sessions, result.returned) == (2, 20, 15)


def test_a_longer_repair_window_leaves_no_episode_unresolved():
    result = replay({"repair_window": 6}, STORY, SILENT)

    assert result.proposed.unresolved == 0 and result.current.unresolved == 1
    assert result.difference == EpisodeCounts(unresolved=-1)


def test_higher_rupture_thresholds_raise_fewer_alerts():
    result = replay({"tension_rupture_intensity": 5, "rupture_sd": 4}, STORY, SILENT)

    # STORY's last session (tension 4, a fall under 4 SD) no longer opens an episode.
    assert result.difference == EpisodeCounts(alerts=-1, open_at_end=-1)


def test_one_client_has_one_open_episode_whichever_instrument_spoke():
    other = [ReplayedSession(replace(INSTRUMENT, id="brief-alliance-check-2"),
                             SessionObservation("x", None, DIP))]
    alone = what_if([other], RuptureRules(), RuptureRules())
    assert alone.current.alerts == 1  # its own tracker sees a rupture

    result = what_if([history([GOOD, GOOD, GOOD, DIP]) + other], RuptureRules(), RuptureRules())

    # … which belongs to the client's episode opened by the first instrument.
    assert result.current == EpisodeCounts(alerts=1, open_at_end=1, clients_affected=1)


def test_a_client_without_sessions_is_not_counted():
    assert replay({}, [], STORY).clients == 1


def test_proposed_changes_go_through_the_rules_own_validation():
    with pytest.raises(ValueError) as refused:
        proposed_rules({"repair_window": 2}, {"nope": 1, "repair_window": 9, "watch_sd": "x"})
    assert str(refused.value) == ("nope: unknown rule; repair_window: must be from 1 to 6; "
                                  "watch_sd: must be a number")
    with pytest.raises(ValueError, match="watch_sd: must not be above rupture_sd"):
        proposed_rules({}, {"watch_sd": 3})
    assert proposed_rules({"repair_window": 2}, {"rupture_sd": 3}) == RuptureRules(
        repair_window=2, rupture_sd=3)


def test_settings_are_read_as_json_values_and_refused_when_malformed():
    assert parse_settings(("repair_window=4", "rupture_sd = 2.5", "check_subscales=false",
                           "watch_sd=lots")) == {
        "repair_window": 4, "rupture_sd": 2.5, "check_subscales": False, "watch_sd": "lots"}
    for bad in (("repair_window",), ("=3",), ("repair_window=",)):
        with pytest.raises(click.BadParameter, match="expected NAME=VALUE"):
            parse_settings(bad)
    with pytest.raises(click.BadParameter, match="repair_window: set twice"):
        parse_settings(("repair_window=4", "repair_window=5"))


def test_the_what_if_table_puts_both_settings_side_by_side():
    result = replay({"repair_window": 6}, STORY, SILENT)

    table = what_if_table("northside", result, RuptureRules(), RuptureRules(repair_window=6))

    assert "2 client(s), 20 session(s) replayed (15 returned, 5 not returned)" in table
    assert "proposed: repair_window 3 → 6" in table
    rows = {line[:26].strip(): line[26:].split() for line in table.splitlines()[4:]}
    assert rows == {"alerts (episodes opened)": ["3", "3", "0"], "repairs": ["2", "2", "0"],
                    "unresolved episodes": ["1", "0", "-1"],
                    "still open at the end": ["1", "1", "0"],
                    "clients affected": ["2", "2", "0"]}


OPENED = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def episode(practice="northside", acknowledged_after=None, **flags):
    acknowledged = None if acknowledged_after is None else OPENED + acknowledged_after
    return EpisodeActivity(practice, OPENED, flags.get("repaired", False), acknowledged,
                           flags.get("snoozed", False), flags.get("escalated", False))


def test_governance_figures_per_practice_and_overall():
    found = governance_report([
        episode(acknowledged_after=timedelta(hours=2), repaired=True),
        episode(acknowledged_after=timedelta(hours=10), snoozed=True),
        episode(escalated=True),
        episode(acknowledged_after=timedelta(hours=30)),
        episode("eastside", acknowledged_after=timedelta(minutes=20), repaired=True),
    ])

    northside = found.by_practice["northside"]
    assert (northside.ruptures, northside.acknowledged, northside.snoozed, northside.escalated,
            northside.repaired, northside.open_now) == (4, 3, 1, 1, 1, 3)
    assert northside.share(northside.acknowledged) == 0.75
    assert northside.ack_median_seconds == 10 * 3600 and northside.ack_p90_seconds == 30 * 3600
    assert list(found.by_practice) == ["eastside", "northside"]
    assert (found.overall.ruptures, found.overall.acknowledged, found.overall.repaired) == (5, 4, 2)
    assert found.overall.ack_median_seconds == (2 + 10) / 2 * 3600
    table = report_table(found)
    assert table.splitlines()[0].split()[:3] == ["practice", "ruptures", "acknowledged"]
    assert "3 (75%)" in table and "10.0 h" in table and "20 min" in table
    assert table.splitlines()[-1].startswith("all practices")


def test_nothing_acknowledged_has_no_waiting_time():
    found = governance_report([episode(), episode(repaired=True)])

    assert found.overall.ack_median_seconds is None and found.overall.ack_p90_seconds is None
    assert found.overall.share(found.overall.repaired) == 0.5
    assert governance_report([]).overall.share(0) is None


def test_the_90th_percentile_is_a_value_that_was_seen():
    assert percentile([5.0], 90) == 5.0
    assert percentile(list(map(float, range(1, 11))), 90) == 9.0
    assert percentile(list(map(float, range(1, 21))), 90) == 18.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_alert_counts_become_gauges_and_a_database_failure_leaves_them_out():
    from prometheus_client import CollectorRegistry, generate_latest

    from service.metrics import AlertCounts

    rows = [("ruptures", "northside", "open", "", 2), ("ruptures", "northside", "resolved", "", 5),
            ("actions", "northside", "acknowledge", "smart-view", 4)]
    asked = []

    def counts(limit):
        asked.append(limit)
        return rows

    working = CollectorRegistry()
    working.register(AlertCounts(counts))
    text = generate_latest(working).decode()
    assert 'alliance_ruptures{practice="northside",state="open"} 2.0' in text
    assert 'alliance_ruptures{practice="northside",state="repaired"} 5.0' in text
    assert ('alliance_alert_actions{action="acknowledge",practice="northside",'
            'source="smart-view"} 4.0') in text
    assert "alliance_alert_counts_up 1.0" in text and asked == [AlertCounts.LIMIT]

    def broken(_limit):
        raise ConnectionError("database down")

    failing = CollectorRegistry()
    failing.register(AlertCounts(broken))
    text = generate_latest(failing).decode()
    assert "alliance_alert_counts_up 0.0" in text and "alliance_ruptures{" not in text
