"""The card builder (pure) and the state summary it reads, for every state a client can be in:
nothing known, returned surveys only, an open rupture, unresolved, repaired, acknowledged."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from service.clinician.cards import (
    SUMMARY_LIMIT,
    CardSettings,
    build_cards,
    info_card_uuid,
    rupture_card_uuid,
)
from service.clinician.clinician_state import summarise

T0 = datetime(2026, 11, 2, 16, 0, tzinfo=timezone.utc)
SETTINGS = CardSettings(info_cards=True, timezone="America/Chicago", total_max=40)
SMART = CardSettings(info_cards=True, timezone="America/Chicago", total_max=40,
                     smart_launch_url="https://surveys.test/smart/northside/launch")
RUPTURE_REASON = "the alliance total was 9 of 40, near the bottom of the scale"


def week(n: int) -> datetime:
    return T0 + timedelta(weeks=n)


def returned(*totals: float) -> list[dict]:
    return [{"total": total, "instrument_id": "brief-alliance-check", "session_at": week(i)}
            for i, total in enumerate(totals)]


def assessed(*rows: tuple) -> list[dict]:
    """(week, decision, reasons, episode_id, episode_status)"""
    return [{"decision": decision, "reasons": reasons, "episode_id": episode,
             "episode_status": status, "assessed_at": week(n) + timedelta(days=1),
             "session_at": week(n)} for n, decision, reasons, episode, status in rows]


def state(returned_rows, assessed_rows, **acknowledgment) -> dict:
    row = summarise("northside", "pat-17", returned_rows, assessed_rows, week(10))
    row.update(acknowledged_by=None, acknowledged_at=None, snoozed_until=None)
    row.update(acknowledgment)
    return row


def test_nothing_known_gives_no_card():
    assert build_cards(None, SETTINGS) == []


def test_a_client_with_no_survey_returned_gets_no_card():
    row = state([], assessed((0, "none", [], None, None)))
    assert build_cards(row, SETTINGS) == []


def test_returned_surveys_give_one_info_card_with_the_last_total_date_and_direction():
    row = state(returned(30, 34), assessed((0, "none", [], None, None),
                                           (1, "none", [], None, None)))
    (card,) = build_cards(row, SETTINGS)
    assert card["indicator"] == "info"
    assert card["summary"] == "Alliance 34 of 40 on 2026-11-09, up from 30"
    assert card["source"] == {"label": "alliance-feedback"}
    assert "Surveys returned: 2." in card["detail"]
    assert "overrideReasons" not in card and "links" not in card
    assert card["uuid"] == info_card_uuid("northside", "pat-17", week(1))


@pytest.mark.parametrize("totals, words", [
    ((30,), "the first survey returned"), ((34, 30), "down from 34"),
    ((30, 30), "unchanged from the survey before")])
def test_the_direction_in_plain_words(totals, words):
    row = state(returned(*totals), assessed((0, "none", [], None, None)))
    assert build_cards(row, SETTINGS)[0]["summary"].endswith(words)


def test_info_cards_can_be_switched_off():
    row = state(returned(30), assessed((0, "none", [], None, None)))
    settings = CardSettings(info_cards=False, timezone="UTC")
    assert build_cards(row, settings) == []


def test_an_open_rupture_gives_one_warning_card_with_the_reasons_and_the_session_date():
    row = state(returned(32, 9), assessed((0, "none", [], None, None),
                                          (1, "rupture", [RUPTURE_REASON], "ep-1", "open")))
    (card,) = build_cards(row, SETTINGS)
    assert card["indicator"] == "warning"
    assert card["summary"] == f"Alliance rupture after the session of 2026-11-09: {RUPTURE_REASON}"
    assert len(card["summary"]) <= SUMMARY_LIMIT
    assert card["detail"].startswith("Seen after the session of 2026-11-09:\n\n- ")
    assert f"- {RUPTURE_REASON}" in card["detail"]
    assert [r["code"] for r in card["overrideReasons"]] == ["acknowledged"]
    assert card["overrideReasons"][0]["display"]
    assert card["uuid"] == rupture_card_uuid("northside", "ep-1", "rupture")
    assert build_cards(row, SETTINGS)[0]["uuid"] == card["uuid"]  # stable


def test_the_trend_link_is_a_smart_link_when_the_practice_has_the_app():
    row = state(returned(9), assessed((0, "rupture", [RUPTURE_REASON], "ep-1", "open")))
    (card,) = build_cards(row, SMART)
    assert card["links"] == [{"label": "Alliance trend", "type": "smart",
                              "url": "https://surveys.test/smart/northside/launch"}]
    info = state(returned(30), assessed((0, "none", [], None, None)))
    assert build_cards(info, SMART)[0]["links"][0]["type"] == "smart"


def test_an_unresolved_rupture_is_critical_and_dated_from_its_start():
    lead = "not repaired 3 sessions after the rupture at session enc-1 (2026-11-09)"
    row = state(returned(32, 9, 10, 11, 12), assessed(
        (0, "none", [], None, None), (1, "rupture", [RUPTURE_REASON], "ep-1", "open"),
        (2, "watch", ["not repaired yet"], None, None), (3, "watch", ["…"], None, None),
        (4, "unresolved", [lead], "ep-1", "open")))
    (card,) = build_cards(row, SETTINGS)
    assert card["indicator"] == "critical"
    assert card["summary"] == "Unresolved alliance rupture, open since the session of 2026-11-09"
    assert lead in card["detail"]
    assert "Latest returned survey: alliance total 12 of 40 after the session of 2026-11-30." \
        in card["detail"]
    assert card["uuid"] == rupture_card_uuid("northside", "ep-1", "unresolved")


def test_a_repaired_rupture_leaves_only_the_info_card():
    repaired = "the rupture at session enc-1 (2026-11-09) looks repaired: bond is back to 9"
    row = state(returned(32, 9, 31), assessed(
        (0, "none", [], None, None), (1, "rupture", [RUPTURE_REASON], "ep-1", "open"),
        (2, "repaired", [repaired], "ep-1", "open")))
    (card,) = build_cards(row, SETTINGS)
    assert card["indicator"] == "info" and row["episode_id"] is None
    assert "looks repaired" in card["detail"]


def test_an_acknowledged_rupture_stays_as_info_and_says_who_and_when():
    row = state(returned(9), assessed((0, "rupture", [RUPTURE_REASON], "ep-1", "open")),
                acknowledged_by="Practitioner/prac-3", acknowledged_at=week(1))
    (card,) = build_cards(row, SETTINGS)
    assert card["indicator"] == "info"
    assert card["summary"].startswith("Acknowledged: alliance rupture after the session of")
    assert "Acknowledged by Practitioner/prac\\-3" not in card["detail"]  # no needless escapes
    assert "Acknowledged by Practitioner/prac-3 on 2026-11-09" in card["detail"]
    assert "overrideReasons" not in card
    via_cds = dict(row, acknowledged_by="cds-client:https://ehr.test")
    detail = build_cards(via_cds, SETTINGS)[0]["detail"]
    assert "a clinician in the EHR (CDS Hooks feedback)" in detail


def test_a_long_reason_is_cut_at_a_word_under_140_characters():
    reason = "the client reported tension with the therapist (strength 5 of 5); " * 4
    row = state(returned(9), assessed((0, "rupture", [reason], "ep-1", "open")))
    summary = build_cards(row, SETTINGS)[0]["summary"]
    assert len(summary) <= SUMMARY_LIMIT and summary.endswith("…")


def test_markdown_in_an_ehr_id_cannot_change_the_detail():
    reason = "not repaired after the rupture at session [x](https://evil.test) <img src=x> *b*"
    row = state(returned(9), assessed((0, "rupture", [reason], "ep-1", "open")))
    detail = build_cards(row, SETTINGS)[0]["detail"]
    for unescaped in (r"(?<!\\)\[x", r"(?<!\\)<img", r"(?<!\\)\*b"):
        assert not re.search(unescaped, detail), unescaped
    assert "\\[x\\](https://evil.test) \\<img src=x\\> \\*b\\*" in detail


def test_dates_are_the_practice_s_own():
    late = datetime(2026, 11, 10, 3, 0, tzinfo=timezone.utc)  # still the 9th in Chicago
    row = state([{"total": 30, "instrument_id": "brief-alliance-check", "session_at": late}],
                assessed((0, "none", [], None, None)))
    assert "on 2026-11-09" in build_cards(row, SETTINGS)[0]["summary"]


def test_the_summary_only_counts_totals_of_the_same_instrument():
    rows = returned(30, 34)
    rows[0]["instrument_id"] = "srs-style"
    row = state(rows, assessed((0, "none", [], None, None)))
    assert row["previous_total"] is None and row["returned_count"] == 2


def test_a_snoozed_rupture_gives_no_card_until_the_snooze_ends():
    row = state(returned(9), assessed((0, "rupture", [RUPTURE_REASON], "ep-1", "open")),
                snoozed_until=week(10) + timedelta(days=2))
    during = CardSettings(info_cards=True, timezone="America/Chicago", now=week(10))
    after = CardSettings(info_cards=True, timezone="America/Chicago",
                         now=week(10) + timedelta(days=2, seconds=1))

    assert build_cards(row, during) == []
    (card,) = build_cards(row, after)
    assert card["indicator"] == "warning"
