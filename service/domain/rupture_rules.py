"""The thresholds of the rupture engine, with a practice's overrides (science reference §3.3)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .scoring import plain_number


@dataclass(frozen=True)
class RuptureRules:
    """Every threshold of the engine; defaults follow the science reference §3.3."""

    watch_sd: float = 1.0  # Strauss-like 1 SD tier
    rupture_sd: float = 2.0  # Stiles-like 2 SD tier
    rc_watch_z: float = 1.645  # reliable change, 90 %
    rc_rupture_z: float = 1.96  # reliable change, 95 % (Jacobson–Truax)
    baseline_sessions: int = 5  # baseline = median of the last ≤ 5 returned surveys
    own_sd_min_sessions: int = 3  # the client's own SD counts from 3 earlier surveys on
    own_sd_sessions: int = 10  # … and is taken over the last ≤ 10 (5 give too rough an SD)
    decline_sessions: int = 2  # consecutive declines that make a multi-session decline
    ceiling_pomp: float = 95.0  # "at the ceiling" for the ceiling-run check-in
    ceiling_run: int = 3  # surveys at the ceiling before a first drop is a check-in
    floor_pomp: float = 25.0  # at or below this share of the range: near the bottom → rupture
    tension_rupture_intensity: int = 3  # tension at this intensity or more → rupture
    repair_window: int = 3  # sessions after a rupture in which repair is looked for
    repair_sd: float = 0.5  # repaired when back to ≥ baseline − 0.5 σ
    repair_resolution: float = 4.0  # or when a resolution item is rated this high
    check_subscales: bool = True  # run the drop rules on each subscale too

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, object] | None) -> RuptureRules:
        """Defaults with a practice's overrides; ValueError names each bad key or value."""
        overrides = dict(overrides or {})
        problems = [f"{key}: unknown rule" for key in sorted(set(overrides) - _RULE_NAMES)]
        for key in sorted(set(overrides) & _RULE_NAMES):
            problem = _rule_value_problem(key, overrides[key])
            if problem:
                problems.append(f"{key}: {problem}")
        if problems:
            raise ValueError("; ".join(problems))
        rules = cls(**overrides)
        problems = rules._consistency_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return rules

    def _consistency_problems(self) -> list[str]:
        problems = []
        if self.watch_sd > self.rupture_sd:
            problems.append("watch_sd: must not be above rupture_sd")
        if self.rc_watch_z > self.rc_rupture_z:
            problems.append("rc_watch_z: must not be above rc_rupture_z")
        if self.floor_pomp >= self.ceiling_pomp:
            problems.append("floor_pomp: must be below ceiling_pomp")
        return problems


# kind, lowest, highest allowed value for each rule.
_RULE_LIMITS: dict[str, tuple[type, float, float]] = {
    "watch_sd": (float, 0.1, 10),
    "rupture_sd": (float, 0.1, 10),
    "rc_watch_z": (float, 0.1, 10),
    "rc_rupture_z": (float, 0.1, 10),
    "baseline_sessions": (int, 1, 20),
    "own_sd_min_sessions": (int, 2, 20),
    "own_sd_sessions": (int, 2, 50),
    "decline_sessions": (int, 2, 10),
    "ceiling_pomp": (float, 50, 100),
    "ceiling_run": (int, 1, 20),
    "floor_pomp": (float, 0, 50),
    "tension_rupture_intensity": (int, 1, 5),
    "repair_window": (int, 1, 6),
    "repair_sd": (float, 0, 5),
    "repair_resolution": (float, 1, 10),
    "check_subscales": (bool, 0, 1),
}
_RULE_NAMES = {f.name for f in fields(RuptureRules)}


def _rule_value_problem(key: str, value: Any) -> str | None:
    kind, low, high = _RULE_LIMITS[key]
    if kind is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "must be a number"
    if kind is int and not isinstance(value, int):
        return "must be a whole number"
    if not math.isfinite(value) or not low <= value <= high:
        return f"must be from {plain_number(low)} to {plain_number(high)}"
    return None
