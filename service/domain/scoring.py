"""Validating and scoring one survey response: total, subscales and POMP."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidAnswers
from .instruments import TOTAL, Instrument, Item

MAX_ANSWER_TEXT_CHARS = 2000


@dataclass(frozen=True)
class Scores:
    """The scores of one response; subscales are keyed by the instrument's subscale names."""

    total: float
    subscales: dict[str, float]
    pomp: float
    min_total: float
    max_total: float

    def scale(self, name: str) -> float:
        """The total (name "total") or one subscale."""
        return self.total if name == TOTAL else self.subscales[name]

    @classmethod
    def stored(
        cls, instrument: Instrument, total: float, subscales: Mapping[str, float], pomp: float
    ) -> Scores:
        """The scores of a response as they were stored when it was scored, on its arrival."""
        low, high = instrument.scale_range(TOTAL)
        # The instrument's subscale order, whatever order the store kept: reasons list them so.
        ordered = {name: float(subscales[name]) for name in instrument.subscales}
        return cls(float(total), ordered, float(pomp), low, high)

    def as_dict(self) -> dict:
        """{"total", "subscales"} with plain numbers, as the replay output prints them."""
        return {
            "total": plain_number(self.total),
            "subscales": {name: plain_number(value) for name, value in self.subscales.items()},
        }


def validate_answers(instrument: Instrument, answers: Mapping[str, object]) -> dict[str, object]:
    """Check answers against the instrument; returns cleaned values or raises InvalidAnswers."""
    if not isinstance(answers, Mapping):
        raise InvalidAnswers({"answers": "must be an object mapping each linkId to its answer"})
    errors: dict[str, str] = {}
    known = {item.link_id for item in instrument.items}
    for link_id in answers:
        if link_id not in known:
            errors[str(link_id)] = "unknown item"
    cleaned: dict[str, object] = {}
    for item in instrument.items:
        _clean_one(item, answers.get(item.link_id), cleaned, errors)
    if errors:
        raise InvalidAnswers(errors)
    return _drop_orphan_intensity(instrument, cleaned)


def score(instrument: Instrument, answers: Mapping[str, object]) -> Scores:
    """Score validated answers; a response missing a score item is refused, never half-scored."""
    missing = {
        item.link_id: "required"
        for item in instrument.score_items
        if answers.get(item.link_id) is None
    }
    if missing:
        raise InvalidAnswers(missing)
    total = _aggregate(instrument, instrument.score_items, answers)
    subscales = {
        name: _aggregate(instrument, instrument.scale_items(name), answers)
        for name in instrument.subscales
    }
    low, high = instrument.scale_range(TOTAL)
    return Scores(
        total=total,
        subscales=subscales,
        pomp=(total - low) / (high - low) * 100.0,
        min_total=low,
        max_total=high,
    )


def plain_number(value: float) -> float | int:
    """A number as a person would write it: 36 rather than 36.0, at most two decimals."""
    rounded = round(float(value), 2)
    return int(rounded) if rounded.is_integer() else rounded


def _aggregate(
    instrument: Instrument, items: tuple[Item, ...], answers: Mapping[str, object]
) -> float:
    values = [float(answers[item.link_id]) for item in items]
    total = math.fsum(values)
    return total / len(values) if instrument.aggregation == "mean" else total


def _clean_one(item: Item, value: Any, cleaned: dict, errors: dict) -> None:
    if isinstance(value, str) and item.type == "text":
        value = value.strip() or None
    if value is None:
        if item.required:
            errors[item.link_id] = "required"
        return
    problem = _type_problem(item, value)
    if problem:
        errors[item.link_id] = problem
    else:
        cleaned[item.link_id] = value


def _type_problem(item: Item, value: Any) -> str | None:
    if item.type == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if item.type == "text":
        if not isinstance(value, str):
            return "must be text"
        return (
            None
            if len(value) <= MAX_ANSWER_TEXT_CHARS
            else (f"must be at most {MAX_ANSWER_TEXT_CHARS} characters")
        )
    return _number_problem(item, value)


def _number_problem(item: Item, value: Any) -> str | None:
    low, high = plain_number(item.min), plain_number(item.max)
    if item.type == "integer":
        valid = isinstance(value, int) and not isinstance(value, bool)
        message = f"must be a whole number from {low} to {high}"
    else:
        valid = (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
        message = f"must be a number from {low} to {high}"
    return None if valid and item.min <= value <= item.max else message


def _drop_orphan_intensity(instrument: Instrument, cleaned: dict) -> dict:
    # An intensity only means something when the client said there was tension; a form that
    # posts the intensity of an unticked question must not turn "no tension" into a rupture.
    tension = instrument.item_with_role("tension")
    intensity = instrument.item_with_role("tension_intensity")
    if tension and intensity and cleaned.get(tension.link_id) is not True:
        cleaned.pop(intensity.link_id, None)
    return cleaned
