"""Rupture and repair rules, each at its edges (science reference §3)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from service.domain import (
    InvalidAnswers,
    RuptureRules,
    RuptureTracker,
    Scores,
    SessionObservation,
    assess_series,
    builtin_instruments,
    load_instrument,
    score,
)

BRIEF = builtin_instruments()["brief-alliance-check"]
WAI = builtin_instruments()["wai-sr"]


def a(bond=9, goals=9, approach=9, overall=9, **extra) -> dict:
    return {"bond": bond, "goals": goals, "approach": approach, "overall": overall, **extra}


def flat(total: int) -> dict:
    """Answers with this total spread as evenly as possible over the four items."""
    base, extra = divmod(total, 4)
    values = [base + (1 if n < extra else 0) for n in range(4)]
    return a(*values)


def decisions(*sessions, instrument=BRIEF, rules=None) -> list[str]:
    return [x.decision for x in run(*sessions, instrument=instrument, rules=rules)]


def run(*sessions, instrument=BRIEF, rules=None):
    observations = [
        SessionObservation(f"s{n}", None, answers) for n, answers in enumerate(sessions, 1)
    ]
    return assess_series(observations, instrument, rules or RuptureRules())


def last(*sessions, **kwargs):
    return run(*sessions, **kwargs)[-1]


CEILING = a(10, 10, 10, 10)
STEADY = a(9, 9, 9, 9)  # total 36, just at the cutoff


# --- absolute rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "decision", "interpretation"),
    [
        (a(0, 0, 0, 0), "rupture", "low"),
        (a(3, 3, 2, 2), "rupture", "low"),  # 10 of 40 = 25 %: near the bottom
        (a(3, 3, 3, 2), "watch", "low"),  # 11 of 40: low, not at the bottom
        (a(9, 9, 9, 8), "watch", "low"),  # 35: below the cutoff of 36
        (a(9, 9, 9, 9), "none", None),  # 36: at the cutoff
        (a(10, 10, 8, 10), "check-in", "check-in"),  # 38 but one item below 9
        (a(10, 10, 10, 10), "none", None),
    ],
)
def test_a_first_survey_is_judged_on_the_absolute_rules(answers, decision, interpretation):
    result = last(answers)

    assert (result.decision, result.interpretation) == (decision, interpretation)


def test_a_first_survey_at_the_bottom_raises_a_flag_in_plain_words():
    result = last(a(0, 0, 0, 0))

    assert (
        result.flag_text
        == "Alliance rupture: the alliance total was 0 of 40, near the bottom of the scale"
    )


def test_the_item_check_in_names_the_items():
    assert last(a(10, 10, 8, 8)).reasons == (
        "rated below 9: agreement on the way of working 8, the session overall 8",
    )


# --- client-reported tension ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "decision"),
    [
        ({"tension": True, "tension_intensity": 5}, "rupture"),
        ({"tension": True, "tension_intensity": 3}, "rupture"),
        ({"tension": True, "tension_intensity": 2}, "watch"),
        ({"tension": True}, "watch"),
        ({"tension": False, "tension_intensity": 5}, "none"),
    ],
)
def test_tension_reported_with_high_scores(extra, decision):
    assert last(CEILING, a(10, 10, 10, 10, **extra)).decision == decision


def test_a_tension_rupture_says_what_the_client_reported():
    result = last(a(10, 10, 10, 10, tension=True, tension_intensity=4))

    assert (
        result.flag_text
        == "Alliance rupture: the client reported tension with the therapist (strength 4 of 5)"
    )
    assert result.interpretation == "watch"


# --- drops against the client's own history ---------------------------------------------------


@pytest.mark.parametrize(
    ("after", "decision"),
    [
        (flat(32), "rupture"),  # 8 below the usual 40 = 2 between-client SDs
        (flat(33), "watch"),  # 7: a reliable fall, but the client's own noise is not known yet
        (flat(36), "watch"),  # 4 = 1 SD
        (a(10, 10, 10, 7), "check-in"),  # 3: under 1 SD; only the item check-in
    ],
)
def test_early_drops_are_measured_against_the_between_client_sd(after, decision):
    assert decisions(CEILING, after)[-1] == decision


@pytest.mark.parametrize(
    ("after", "decision"),
    [
        (a(8, 8, 8, 7), "rupture"),  # 36 → 31: 5 ≥ reliable-change 4.96, and 5 below usual
        (a(8, 8, 8, 8), "watch"),  # 36 → 32: 4 = 1 SD below usual, under 4.96
        (a(9, 8, 9, 8), "watch"),  # 36 → 34: under 1 SD, but low (below the cutoff)
    ],
)
def test_a_sudden_fall_once_the_clients_noise_is_known(after, decision):
    assert decisions(STEADY, STEADY, STEADY, STEADY, after)[-1] == decision


def test_a_reliable_fall_reads_like_the_contract_example():
    result = last(STEADY, STEADY, STEADY, a(5, 9, 9, 9))

    assert result.flag_text == (
        "Alliance rupture: bond fell from 9 to 5, more than the reliable-change threshold of 3.14"
    )
    assert (
        "the alliance total fell to 32 from the usual 36, more than the watch threshold of 4"
        in result.reasons
    )


def test_a_fall_back_to_the_usual_level_after_a_high_is_not_a_rupture():
    # The last survey was unusually high; falling back to the usual 30 is not a rupture.
    history = [flat(30), flat(30), flat(30), flat(30), flat(38)]

    result = last(*history, flat(30))

    assert result.decision == "watch"  # only because 30 is below the cutoff of 36
    assert not any("fell" in reason for reason in result.reasons)


def test_a_slow_decline_over_several_sessions_is_a_rupture():
    history = [CEILING] * 5 + [a(10, 10, 9, 9), a(9, 9, 9, 9), a(9, 9, 8, 8)]  # 40 … 38, 36, 34

    assert decisions(*history, a(8, 8, 8, 8))[-4:] == ["none", "watch", "watch", "rupture"]
    assert "declined over 4 sessions from 40 to 32" in last(*history, a(8, 8, 8, 8)).reasons[0]


def test_declines_that_stop_short_of_two_sds_stay_on_watch():
    history = [CEILING] * 5 + [a(10, 10, 9, 9), a(9, 9, 9, 9)]

    assert last(*history, a(9, 9, 9, 8)).decision == "watch"


@pytest.mark.parametrize(("ceiling_runs", "decision"), [(3, "check-in"), (2, "none")])
def test_the_first_drop_after_a_ceiling_run_is_a_check_in(ceiling_runs, decision):
    result = last(*[CEILING] * ceiling_runs, a(10, 9, 9, 9))

    assert result.decision == decision


def test_subscale_drops_are_named_on_wai_sr():
    steady = {f"wai{n}": 4 for n in range(1, 13)}
    bond_down = {**steady, "wai3": 1, "wai5": 1, "wai7": 2, "wai9": 2}

    result = last(steady, steady, steady, bond_down, instrument=WAI)

    assert result.decision == "rupture"
    assert any(
        reason.startswith("the bond subscale fell from 16 to 6") for reason in result.reasons
    )
    assert "the bond subscale was 6, below the cutoff of 12" in result.reasons


# --- repair and non-repair --------------------------------------------------------------------

RUPTURE = [STEADY, STEADY, STEADY, STEADY, a(8, 8, 8, 7)]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ([STEADY], ["repaired"]),
        ([a(9, 9, 8, 8)], ["repaired"]),  # 34 = usual 36 − 0.5 × 4
        ([a(9, 8, 8, 8)], ["watch"]),  # 33: not yet
        ([a(8, 8, 8, 7)] * 3, ["watch", "watch", "unresolved"]),
        ([None, None, None], ["watch", "watch", "unresolved"]),
        ([None, STEADY], ["watch", "repaired"]),
        ([a(8, 8, 8, 7)] * 3 + [STEADY], ["watch", "watch", "unresolved", "repaired"]),
        ([a(8, 8, 8, 7)] * 4, ["watch", "watch", "unresolved", "watch"]),
        ([a(9, 9, 9, 9, tension=True, tension_intensity=4)], ["watch"]),
    ],
)
def test_repair_is_looked_for_in_the_window(after, expected):
    assert decisions(*RUPTURE, *after)[len(RUPTURE) :] == expected


def test_a_repair_and_an_unresolved_rupture_explain_themselves():
    repaired = last(*RUPTURE, STEADY)
    unresolved = last(*RUPTURE, None, None, None)

    assert repaired.reasons[0] == (
        "the rupture at session s5 looks repaired: "
        "the alliance total is back to 36, near the usual 36"
    )
    assert unresolved.flag_text == (
        "Unresolved alliance rupture: not repaired 3 sessions after the rupture at session s5 "
        "(no survey returned)"
    )


def test_a_reliable_rise_out_of_the_watch_zone_counts_as_repair():
    history = [flat(28)] * 4  # a client who usually sits below the cutoff
    dropped = flat(20)

    assert decisions(*history, dropped, flat(26))[-2:] == ["rupture", "repaired"]


def test_a_tension_rupture_is_repaired_when_the_tension_is_gone():
    tense = a(10, 10, 10, 10, tension=True, tension_intensity=4)

    assert decisions(CEILING, tense, CEILING) == ["none", "rupture", "repaired"]
    assert decisions(CEILING, tense, tense, tense, tense)[1:] == [
        "rupture",
        "watch",
        "watch",
        "unresolved",
    ]


@pytest.mark.parametrize(("after", "expected"), [(36, "repaired"), (30, "watch"), (3, "watch")])
def test_a_first_survey_at_the_bottom_is_repaired_by_a_reliable_rise_above_the_cutoff(
    after, expected
):
    assert decisions(a(0, 0, 0, 0), flat(after))[-1] == expected


def test_a_resolution_item_rated_high_repairs_the_rupture():
    doc = copy.deepcopy(BRIEF.document)
    doc["questionnaire"]["item"].append(
        {
            "linkId": "resolved",
            "text": "How well did you and your therapist work it through?",
            "type": "integer",
            "required": False,
            "extension": [
                {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 1},
                {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 5},
            ],
        }
    )
    doc["scoring"]["items"]["resolved"] = {"role": "resolution"}
    instrument = load_instrument(doc)
    still_low = a(8, 8, 8, 7)

    assert (
        decisions(*RUPTURE, {**still_low, "resolved": 4}, instrument=instrument)[-1] == "repaired"
    )
    assert decisions(*RUPTURE, {**still_low, "resolved": 3}, instrument=instrument)[-1] == "watch"


def test_a_shorter_repair_window_declares_unresolved_sooner():
    rules = RuptureRules.from_overrides({"repair_window": 1})

    assert decisions(*RUPTURE, a(8, 8, 8, 7), rules=rules)[-1] == "unresolved"


# --- surveys not returned ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "decision"),
    [
        (a(9, 9, 9, 8), "watch"),  # after a low survey
        (CEILING, "none"),
        (a(10, 10, 10, 8), "none"),  # a check-in is not low
    ],
)
def test_a_survey_not_returned_after_a_low_session_is_watched(before, decision):
    result = last(before, None)

    assert result.decision == decision
    assert result.scores is None and result.interpretation is None


def test_silence_names_the_low_session_with_its_date():
    ended = datetime(2026, 11, 26, 15, tzinfo=UTC)
    observations = [
        SessionObservation("enc-1", ended, a(9, 9, 9, 8)),
        SessionObservation("enc-2", None, None),
    ]

    result = assess_series(observations, BRIEF)[-1]

    assert result.reasons == (
        "no survey returned since the low result at session enc-1 (2026-11-26)",
    )


# --- flags, determinism, refusals -------------------------------------------------------------


def test_only_ruptures_and_unresolved_ruptures_carry_flag_text():
    results = run(*RUPTURE, a(8, 8, 8, 7), a(8, 8, 8, 7), a(8, 8, 8, 7), STEADY)

    with_text = [(r.decision, r.flag_text is not None) for r in results]

    assert all(
        has_text == (decision in ("rupture", "unresolved")) for decision, has_text in with_text
    )
    assert [r.raises_flag for r in results].count(True) == 2


def test_the_same_history_always_gives_the_same_assessments():
    history = [*RUPTURE, None, a(9, 9, 8, 8, tension=True, tension_intensity=2)]

    assert run(*history) == run(*history)


def test_a_refused_response_leaves_the_tracker_unchanged():
    tracker = RuptureTracker(BRIEF)
    for n, answers in enumerate([STEADY] * 4):
        tracker.assess(SessionObservation(f"s{n}", None, answers))

    with pytest.raises(InvalidAnswers):
        tracker.assess(SessionObservation("bad", None, {"bond": 0}))

    assert tracker.assess(SessionObservation("s5", None, a(8, 8, 8, 7))).decision == "rupture"


def test_stored_scores_are_used_as_they_are_and_give_the_same_decisions():
    history = [*RUPTURE, None, a(9, 9, 8, 8, tension=True, tension_intensity=2), STEADY]
    stored = [
        SessionObservation(f"s{n}", None, answers, None if answers is None else score(BRIEF, answers))
        for n, answers in enumerate(history, 1)
    ]

    assert assess_series(stored, BRIEF) == run(*history)


def test_the_engine_reads_the_stored_scores_instead_of_scoring_again():
    # Stored scores win over the answers: here they say the alliance hit the bottom.
    bottom = Scores.stored(BRIEF, total=4, subscales={"bond": 1, "goals": 1, "tasks": 1}, pomp=10)

    result = assess_series([SessionObservation("s1", None, STEADY, bottom)], BRIEF)[-1]

    assert result.decision == "rupture"
    assert result.scores == bottom
    assert "total was 4 of 40" in result.flag_text


# --- rule overrides ---------------------------------------------------------------------------


def test_overrides_replace_the_defaults():
    rules = RuptureRules.from_overrides(
        {"rupture_sd": 2.5, "repair_window": 6, "check_subscales": False}
    )

    assert (rules.rupture_sd, rules.repair_window, rules.check_subscales) == (2.5, 6, False)
    assert RuptureRules.from_overrides(None) == RuptureRules()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rupture_threshold": 2}, "rupture_threshold: unknown rule"),
        ({"repair_window": 7}, "repair_window: must be from 1 to 6"),
        ({"repair_window": 2.5}, "repair_window: must be a whole number"),
        ({"rupture_sd": "2"}, "rupture_sd: must be a number"),
        ({"rupture_sd": True}, "rupture_sd: must be a number"),
        ({"check_subscales": 1}, "check_subscales: must be true or false"),
        ({"watch_sd": 3.0}, "watch_sd: must not be above rupture_sd"),
        ({"rc_watch_z": 2.5}, "rc_watch_z: must not be above rc_rupture_z"),
    ],
)
def test_bad_overrides_are_refused_naming_the_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        RuptureRules.from_overrides(overrides)


def test_every_bad_override_is_named_at_once():
    with pytest.raises(ValueError) as refused:
        RuptureRules.from_overrides({"nope": 1, "repair_window": 0})

    assert "nope" in str(refused.value) and "repair_window" in str(refused.value)
