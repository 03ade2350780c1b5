"""Validating and scoring one response."""

from __future__ import annotations

import math

import pytest

from service.domain import InvalidAnswers, builtin_instruments, score, validate_answers

BRIEF = builtin_instruments()["brief-alliance-check"]
WAI = builtin_instruments()["wai-sr"]
SRS = builtin_instruments()["srs-style"]


def brief(bond=9, goals=9, approach=9, overall=9, **extra) -> dict:
    return {"bond": bond, "goals": goals, "approach": approach, "overall": overall, **extra}


def test_valid_answers_come_back_cleaned():
    cleaned = validate_answers(BRIEF, brief(comment="  thanks  ", tension=False))

    assert cleaned == {**brief(), "comment": "thanks", "tension": False}


@pytest.mark.parametrize(
    ("answers", "link_id", "message"),
    [
        (brief(bond=None), "bond", "required"),
        ({"goals": 9, "approach": 9, "overall": 9}, "bond", "required"),
        (brief(bond=11), "bond", "must be a whole number from 0 to 10"),
        (brief(bond=-1), "bond", "must be a whole number from 0 to 10"),
        (brief(bond=7.0), "bond", "must be a whole number from 0 to 10"),
        (brief(bond=True), "bond", "must be a whole number from 0 to 10"),
        (brief(bond="7"), "bond", "must be a whole number from 0 to 10"),
        (brief(tension=1), "tension", "must be true or false"),
        (brief(tension="yes"), "tension", "must be true or false"),
        (
            brief(tension=True, tension_intensity=6),
            "tension_intensity",
            "must be a whole number from 1 to 5",
        ),
        (brief(comment=5), "comment", "must be text"),
        (brief(comment="x" * 2001), "comment", "must be at most 2000 characters"),
        (brief(mood=3), "mood", "unknown item"),
    ],
)
def test_invalid_answers_are_refused_naming_each_item(answers, link_id, message):
    with pytest.raises(InvalidAnswers) as refused:
        validate_answers(BRIEF, answers)

    assert refused.value.errors == {link_id: message}


def test_every_wrong_item_is_named_at_once():
    with pytest.raises(InvalidAnswers) as refused:
        validate_answers(BRIEF, {"bond": 12, "extra": 1})

    assert set(refused.value.errors) == {"bond", "goals", "approach", "overall", "extra"}


def test_answers_must_be_an_object():
    with pytest.raises(InvalidAnswers, match="must be an object"):
        validate_answers(BRIEF, [1, 2, 3])


def test_text_of_exactly_the_limit_and_a_blank_comment_are_accepted():
    assert validate_answers(BRIEF, brief(comment="x" * 2000))["comment"] == "x" * 2000
    assert "comment" not in validate_answers(BRIEF, brief(comment="   "))


@pytest.mark.parametrize("value", [7.5, 0, 10, 0.0])
def test_decimal_items_take_any_number_in_range(value):
    answers = {"relationship": value, "goals_topics": 9, "approach_method": 9, "overall": 9}
    assert validate_answers(SRS, answers)["relationship"] == value


@pytest.mark.parametrize("value", [math.nan, math.inf, 10.01, False])
def test_decimal_items_refuse_what_is_not_a_number_in_range(value):
    answers = {"relationship": value, "goals_topics": 9, "approach_method": 9, "overall": 9}
    with pytest.raises(InvalidAnswers, match="must be a number from 0 to 10"):
        validate_answers(SRS, answers)


def test_an_intensity_without_tension_is_ignored():
    assert "tension_intensity" not in validate_answers(
        BRIEF, brief(tension=False, tension_intensity=5)
    )
    assert "tension_intensity" not in validate_answers(BRIEF, brief(tension_intensity=5))
    assert (
        validate_answers(BRIEF, brief(tension=True, tension_intensity=5))["tension_intensity"] == 5
    )


@pytest.mark.parametrize(
    ("answers", "total", "subscales", "pomp"),
    [
        (brief(10, 10, 10, 10), 40, {"bond": 10, "goals": 10, "tasks": 10}, 100.0),
        (brief(0, 0, 0, 0), 0, {"bond": 0, "goals": 0, "tasks": 0}, 0.0),
        (brief(9, 8, 7, 6), 30, {"bond": 9, "goals": 8, "tasks": 7}, 75.0),
        (
            brief(9, 8, 7, 6, tension=True, tension_intensity=5),
            30,
            {"bond": 9, "goals": 8, "tasks": 7},
            75.0,
        ),
    ],
)
def test_brief_scores_sum_the_four_items_and_leave_tension_out(answers, total, subscales, pomp):
    scores = score(BRIEF, validate_answers(BRIEF, answers))

    assert (scores.total, scores.subscales, scores.pomp) == (total, subscales, pomp)
    assert (scores.min_total, scores.max_total) == (0, 40)


def test_wai_sr_scores_are_sums_by_subscale():
    answers = {f"wai{n}": 1 for n in range(1, 13)}
    answers.update(wai3=5, wai5=5, wai7=5, wai9=5)

    scores = score(WAI, validate_answers(WAI, answers))

    assert scores.total == 28
    assert scores.subscales == {"bond": 20, "goals": 4, "tasks": 4}
    assert scores.pomp == pytest.approx(100 * 16 / 48)


def test_a_response_missing_a_score_item_is_never_half_scored():
    with pytest.raises(InvalidAnswers) as refused:
        score(BRIEF, {"bond": 9, "goals": 9})

    assert refused.value.errors == {"approach": "required", "overall": "required"}


def test_scores_print_as_plain_numbers():
    answers = {"relationship": 9.25, "goals_topics": 9, "approach_method": 9, "overall": 9}

    printed = score(SRS, answers).as_dict()

    assert printed == {"total": 36.25, "subscales": {"bond": 9.25, "goals": 9, "tasks": 9}}
