"""The instrument model: a FHIR R4 Questionnaire with its scoring rules, as frozen values.

Loading and validating a document is `instrument_loading`; a practice's licensed wording is
`instrument_wording`; the shipped and stored instruments are `catalogue`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CANONICAL_BASE = "https://alliance-feedback.org/fhir/Questionnaire/"
DEFAULT_INSTRUMENT = "brief-alliance-check"
CUTOFF_KEYS = ("total_below", "subscale_below", "item_below")
TOTAL = "total"


@dataclass(frozen=True)
class Item:
    """One question of an instrument, with the structure the scorer and the survey page need."""

    link_id: str
    text: str
    type: str
    min: float | None
    max: float | None
    polarity: str | None
    required: bool
    subscale: str | None
    role: str
    low_label: str | None
    high_label: str | None
    label: str = ""

    @property
    def is_numeric(self) -> bool:
        return self.type in ("integer", "decimal")

    @property
    def name(self) -> str:
        """Short plain name used in clinician-facing reasons."""
        return self.label or self.link_id

    def public(self) -> dict:
        """The item JSON of CONTRACT §4 (plus lowLabel/highLabel when the item has anchors)."""
        data = {
            "linkId": self.link_id,
            "text": self.text,
            "type": self.type,
            "min": _plain_number(self.min, self.type),
            "max": _plain_number(self.max, self.type),
            "polarity": self.polarity,
            "required": self.required,
        }
        if self.low_label is not None:
            data["lowLabel"] = self.low_label
        if self.high_label is not None:
            data["highLabel"] = self.high_label
        return data


@dataclass(frozen=True)
class ReliableChange:
    """Between-client SD and reliability of one scale, for Jacobson–Truax reliable change."""

    between_client_sd: float
    reliability: float

    @property
    def measurement_error(self) -> float:
        """SE = s·√(1 − r)."""
        return self.between_client_sd * math.sqrt(1.0 - self.reliability)

    def threshold(self, z: float) -> float:
        """Smallest raw change with |RC| ≥ z: z·√2·SE."""
        return z * math.sqrt(2.0) * self.measurement_error


@dataclass(frozen=True)
class Cutoffs:
    """Absolute cutoffs of an instrument; None where the instrument has no such cutoff."""

    total_below: float | None = None
    subscale_below: float | None = None
    item_below: float | None = None

    def as_dict(self) -> dict:
        return {key: getattr(self, key) for key in CUTOFF_KEYS}


@dataclass(frozen=True, eq=False)
class Instrument:
    """A loaded, validated instrument: its Questionnaire, items and scoring rules."""

    id: str
    version: str
    url: str
    title: str
    items: tuple[Item, ...]
    questionnaire: dict
    aggregation: str = "sum"
    subscales: tuple[str, ...] = ()
    cutoffs: Cutoffs = field(default_factory=Cutoffs)
    reliable_change: Mapping[str, ReliableChange] = field(default_factory=dict)
    wording: str = "own"
    licence: str | None = None
    document: dict = field(default_factory=dict, repr=False)

    @property
    def sendable(self) -> bool:
        """False for scoring profiles whose licensed wording has not been loaded."""
        return self.wording != "placeholder"

    @property
    def score_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.role == "score")

    def item(self, link_id: str) -> Item:
        """The item with this linkId (KeyError if there is none)."""
        for candidate in self.items:
            if candidate.link_id == link_id:
                return candidate
        raise KeyError(link_id)

    def item_with_role(self, role: str) -> Item | None:
        """The single item playing `role` (tension, resolution…), or None."""
        return next((item for item in self.items if item.role == role), None)

    def scale_items(self, scale: str) -> tuple[Item, ...]:
        """Score items of a subscale, or all score items for "total"."""
        if scale == TOTAL:
            return self.score_items
        return tuple(item for item in self.score_items if item.subscale == scale)

    def scale_range(self, scale: str) -> tuple[float, float]:
        """(lowest, highest) possible score of the total or a subscale."""
        items = self.scale_items(scale)
        low = sum(item.min for item in items)
        high = sum(item.max for item in items)
        if self.aggregation == "mean":
            return low / len(items), high / len(items)
        return low, high

    def public_items(self) -> list[dict]:
        """Item JSON for the survey API (CONTRACT §4)."""
        return [item.public() for item in self.items]

    def describe(self) -> dict:
        """Everything `alliance instruments show` prints: items plus scoring."""
        return {
            "id": self.id,
            "version": self.version,
            "url": self.url,
            "title": self.title,
            "sendable": self.sendable,
            "wording": self.wording,
            "licence": self.licence,
            "items": self.public_items(),
            "scoring": self._describe_scoring(),
        }

    def _describe_scoring(self) -> dict:
        return {
            "aggregation": self.aggregation,
            "total": self._describe_scale(TOTAL),
            "subscales": {name: self._describe_scale(name) for name in self.subscales},
            "cutoffs": self.cutoffs.as_dict(),
        }

    def _describe_scale(self, scale: str) -> dict:
        low, high = self.scale_range(scale)
        described: dict[str, Any] = {
            "items": [item.link_id for item in self.scale_items(scale)],
            "min": low,
            "max": high,
        }
        change = self.reliable_change.get(scale)
        if change is not None:
            described["reliable_change"] = {
                "between_client_sd": change.between_client_sd,
                "reliability": change.reliability,
                "measurement_error": round(change.measurement_error, 3),
                "threshold_95": round(change.threshold(1.96), 2),
                "threshold_90": round(change.threshold(1.645), 2),
            }
        return described


def _plain_number(value: float | None, item_type: str) -> float | int | None:
    if value is None:
        return None
    return int(value) if item_type == "integer" else value
