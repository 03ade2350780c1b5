"""The trend view's pure parts: the usual band (as the rupture rules use it), the chart geometry
and the table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from service.clinician.chart import (
    MAX_POINTS,
    SUBSCALE_FRAME,
    TOTAL_FRAME,
    X_INSET,
    build_chart,
    build_charts,
    nice_ticks,
    x_position,
)
from service.clinician.table import table_rows
from service.clinician.trend import build_trend
from service.domain import instrument_catalogue
from service.domain.ruptures import RuptureRules, SessionObservation, assess_series
from service.domain.session_rules import usual_level
from service.persistence.queries.trend import EpisodeRow, SurveyRow

INSTRUMENT = instrument_catalogue()["brief-alliance-check"]
RULES = RuptureRules()
START = datetime(2026, 3, 2, 18, 0, tzinfo=timezone.utc)


def answers_for(total: int) -> dict:
    """Four items adding up to `total` (0–40), as even as possible."""
    base, extra = divmod(total, 4)
    values = [base + (1 if i < extra else 0) for i in range(4)]
    return dict(zip(("bond", "goals", "approach", "overall"), values))


def row(number: int, total: int | None, decision: str | None = "none", reasons=(),
        episode_id=None) -> SurveyRow:
    subscales = None
    if total is not None:
        a = answers_for(total)
        subscales = {"bond": a["bond"], "goals": a["goals"], "tasks": a["approach"]}
    return SurveyRow(survey_id=f"s{number}", session_id=f"enc-{number}",
                     instrument_id=INSTRUMENT.id, status="answered" if total is not None
                     else "expired", session_ended_at=START + timedelta(weeks=number - 1),
                     created_at=START + timedelta(weeks=number - 1), total=total,
                     subscales=subscales, decision=decision, reasons=tuple(reasons),
                     episode_id=episode_id)


def trend_of(rows, episode=None):
    return build_trend("pat-17", rows, INSTRUMENT, RULES, "America/Chicago", episode)


# -- the usual band ------------------------------------------------------------------------

def test_each_session_is_drawn_against_the_band_the_rules_judged_it_by():
    rows = [row(1, 36), row(2, 38), row(3, None, "none"), row(4, 34), row(5, 37)]
    trend = trend_of(rows)

    assert trend.points[0].bands == {}  # nothing earlier: no usual level yet
    change = INSTRUMENT.reliable_change["total"]
    for point, earlier in zip(trend.points[1:], ([36], [36, 38], [36, 38], [36, 38, 34])):
        expected = usual_level(earlier, change, RULES)
        band = point.bands["total"]
        assert band.baseline == expected.baseline
        assert (band.low, band.high) == expected.band


@pytest.mark.parametrize("history", [[36, 38, 37, 39, 38], [30, 34, 31, 33, 32], [38, 38, 38]])
def test_falling_below_the_band_is_exactly_where_the_watch_starts(history):
    """The band's lower edge is the watch threshold of the drop rules (watch_sd = 1)."""
    level = usual_level(history, INSTRUMENT.reliable_change["total"], RULES)
    low = level.band[0]
    # Scores are whole numbers: the first total strictly below the edge, and the edge's ceiling.
    below, inside = int(low - 1e-9) if low != int(low) else int(low) - 1, int(low) + 1

    def total_decision(total: int) -> str:
        observations = [SessionObservation(f"e{i}", None, answers_for(v))
                        for i, v in enumerate(history + [total])]
        reasons = assess_series(observations, INSTRUMENT, RuptureRules(check_subscales=False))[-1]
        return reasons.reasons

    assert any("alliance total fell" in reason for reason in total_decision(below))
    assert not any("alliance total fell" in reason for reason in total_decision(inside))


def test_bands_can_be_limited_to_the_sessions_a_chart_draws():
    rows = [row(i, 36 + i % 3) for i in range(1, 41)]
    full = trend_of(rows)
    limited = build_trend("pat-17", rows, INSTRUMENT, RULES, "America/Chicago",
                          bands_for_last=MAX_POINTS)

    assert [p.bands for p in limited.points[-MAX_POINTS:]] == [
        p.bands for p in full.points[-MAX_POINTS:]]
    assert all(p.bands == {} for p in limited.points[:-MAX_POINTS])
    chart_full = build_chart(full, full.total_scale, with_events=True)
    assert build_chart(limited, limited.total_scale, with_events=True) == chart_full


# -- geometry ------------------------------------------------------------------------------

def test_sessions_are_spread_evenly_inside_the_inset():
    assert x_position(0, 1) == 50.0
    assert (x_position(0, 2), x_position(1, 2)) == (X_INSET, 100 - X_INSET)
    xs = [x_position(i, 7) for i in range(7)]
    steps = [b - a for a, b in zip(xs, xs[1:])]
    assert max(steps) - min(steps) < 0.02 and xs[0] == X_INSET and xs[-1] == 100 - X_INSET


def test_ticks_are_round_and_cover_the_scale():
    assert nice_ticks(0, 40) == (0, 10, 20, 30, 40)
    assert nice_ticks(0, 10, 3) == (0, 5, 10)
    assert nice_ticks(1, 5) == (1, 2, 3, 4, 5)
    assert nice_ticks(12, 60) == (20, 40, 60)


def test_values_map_to_pixel_rows_and_stay_inside_the_plot():
    scale = trend_of([row(1, 30)]).total_scale
    assert TOTAL_FRAME.y(0, scale) == TOTAL_FRAME.bottom
    assert TOTAL_FRAME.y(40, scale) == TOTAL_FRAME.top
    assert TOTAL_FRAME.y(20, scale) == (TOTAL_FRAME.top + TOTAL_FRAME.bottom) / 2
    assert TOTAL_FRAME.y(99, scale) == TOTAL_FRAME.top and TOTAL_FRAME.y(-5, scale) == \
        TOTAL_FRAME.bottom


def test_the_total_chart_marks_rupture_repair_and_surveys_not_returned():
    rows = [row(1, 38), row(2, 37), row(3, 20, "rupture", ["the alliance total fell"]),
            row(4, None, "unresolved"), row(5, 37, "repaired")]
    chart = build_chart(trend_of(rows), trend_of(rows).total_scale, with_events=True)

    kinds = [(marker.kind, round(marker.x)) for marker in chart.markers]
    assert kinds == [("dot", 4), ("dot", 27), ("rupture", 50), ("missing", 73),
                     ("unresolved", 73), ("repaired", 96)]
    missing = chart.markers[3]
    # In its own lane under the axis, never at a score of 0, and above the date labels.
    assert TOTAL_FRAME.bottom + 5 < missing.y < TOTAL_FRAME.date_row - 12
    assert "not returned" in missing.title
    rupture = chart.markers[2]
    assert rupture.y == TOTAL_FRAME.y(20, chart.scale) and "Rupture" in rupture.title
    # The line is unbroken where a survey was returned, dotted across the one that was not.
    assert [segment.across_gap for segment in chart.segments] == [False, False, True]
    assert chart.cutoff_y == TOTAL_FRAME.y(36, chart.scale)
    assert chart.summary.startswith("Alliance total over 5 sessions; latest 37 of 40")
    assert "1 rupture" in chart.summary and "1 repair" in chart.summary
    assert "1 survey not returned" in chart.summary


def test_subscale_charts_have_their_own_band_and_no_event_markers():
    rows = [row(1, 38), row(2, 37), row(3, 20, "rupture")]
    charts = build_charts(trend_of(rows))

    assert [chart.scale.name for chart in charts] == ["total", "bond", "goals", "tasks"]
    bond = charts[1]
    assert bond.frame == SUBSCALE_FRAME and bond.cutoff_y is None
    assert {marker.kind for marker in bond.markers} == {"dot"}
    assert len(bond.band) == 2 and [t.label for t in bond.ticks] == ["0", "5", "10"]
    step = bond.band[1]
    assert step.y == SUBSCALE_FRAME.y(trend_of(rows).points[2].bands["bond"].high, bond.scale)


def test_the_band_steps_tile_the_plot_without_overlap():
    chart = build_chart(trend_of([row(i, 36 + i % 3) for i in range(1, 8)]),
                        trend_of([row(1, 36)]).total_scale, with_events=True)
    edges = [(step.x, round(step.x + step.width, 2)) for step in chart.band]
    assert all(abs(right - next_left) < 0.05 for (_, right), (next_left, _) in
               zip(edges, edges[1:]))
    assert edges[-1][1] <= 100.0


def test_a_long_history_draws_the_latest_sessions_and_says_so():
    rows = [row(i, 30 + i % 8) for i in range(1, 101)]
    trend = trend_of(rows)
    chart = build_chart(trend, trend.total_scale, with_events=True)

    assert (chart.shown, chart.total) == (MAX_POINTS, 100)
    assert "the latest 30 of 100" in chart.summary
    assert len([m for m in chart.markers if m.kind == "dot"]) == MAX_POINTS
    narrow = [d for d in chart.dates if not d.wide_only]
    assert 2 <= len(narrow) <= 4 and narrow[0].anchor == "start" and narrow[-1].anchor == "end"
    assert len(chart.dates) <= 10


# -- the table and the open rupture --------------------------------------------------------

def test_the_table_has_one_row_per_session_newest_first():
    rows = [row(1, 38), row(2, 30, "watch"), row(3, None, "none"), row(4, 37, "repaired")]
    table = table_rows(trend_of(rows))

    assert [r.session_id for r in table] == ["enc-4", "enc-3", "enc-2", "enc-1"]
    assert table[0].date == "2026-03-23"  # 18:00 UTC is noon in Chicago, same day
    assert (table[0].day, table[0].year) == ("23 Mar", "2026")
    assert table[1].scores == ("—", "—", "—", "—") and table[1].result == "Not returned"
    assert table[2].scores[0] == "30" and table[2].below_cutoff == (True, False, False, False)
    assert [r.result for r in table] == ["Repaired", "Not returned", "Watch", "Steady"]


def test_dates_are_the_practices_local_dates():
    late = row(1, 38)
    late = SurveyRow(**{**late.__dict__, "session_ended_at": datetime(2026, 3, 3, 3, 30,
                                                                      tzinfo=timezone.utc)})
    assert table_rows(trend_of([late]))[0].date == "2026-03-02"  # 21:30 the evening before


def test_the_open_rupture_gives_its_reasons_and_where_it_stands():
    rows = [row(1, 38), row(2, 20, "rupture", ["the alliance total fell to 20"], "ep1"),
            row(3, None, "unresolved", ["not repaired 1 session after the rupture"], "ep1")]
    episode = EpisodeRow("ep1", START, "s2")

    rupture = trend_of(rows, episode).open_rupture

    assert rupture.decision == "unresolved" and rupture.title == "Unresolved alliance rupture"
    assert rupture.session_id == "enc-2" and rupture.reasons == ("the alliance total fell to 20",)
    assert rupture.latest == "not repaired 1 session after the rupture"
    assert trend_of(rows).open_rupture is None


def test_the_json_carries_scores_bands_and_decisions():
    data = trend_of([row(1, 38), row(2, None, "watch")]).as_dict()

    assert data["patient"] == "pat-17" and data["instrument"]["id"] == "brief-alliance-check"
    assert data["scales"][0] == {"name": "total", "label": "Alliance total", "min": 0,
                                 "max": 40, "cutoff_below": 36}
    first, second = data["sessions"]
    assert first["scores"]["total"] == 38 and first["usual_band"] == {}
    assert second["returned"] is False and second["scores"] == {}
    assert second["usual_band"]["total"]["baseline"] == 38
