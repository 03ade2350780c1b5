"""What one returned survey shows on its own, against the client's earlier surveys: the
absolute, tension, drop and ceiling rules of the science reference §3.3, as findings."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .instruments import TOTAL, Instrument, ReliableChange
from .rupture_rules import RuptureRules
from .scoring import Scores, plain_number

# Severity of what one session shows on its own; 'unresolved' and 'repaired' come from episodes.
SEVERITY = {"none": 0, "check-in": 1, "watch": 2, "rupture": 3}


@dataclass(frozen=True)
class Finding:
    """One rule that fired at one session."""

    severity: str
    kind: str  # floor | low | check-in | tension | drop | ceiling | silence
    reason: str
    trigger: DropTrigger | None = None


@dataclass(frozen=True)
class DropTrigger:
    """A scale whose drop opened a rupture, with what repair is measured against."""

    scale: str
    baseline: float
    sigma: float
    rise_threshold: float



@dataclass(frozen=True)
class UsualLevel:
    """What the drop rules judge one scale's next value against: the client's usual level."""

    baseline: float  # median of the last ≤ baseline_sessions returned surveys
    sigma: float  # the stricter of the client's own SD and the between-client SD, ≥ SE
    own_sd: float | None  # the client's own SD; None until own_sd_min_sessions surveys

    @property
    def band(self) -> tuple[float, float]:
        """baseline ± 1 σ: the client's usual range (with default rules, below it is a watch)."""
        return self.baseline - self.sigma, self.baseline + self.sigma


def usual_level(
    earlier: Sequence[float], change: ReliableChange, rules: RuptureRules
) -> UsualLevel | None:
    """The usual level from the earlier returned values of one scale; None before any.

    The trend view draws its band from this same function (service/clinician/trend.py).
    """
    if not earlier:
        return None
    baseline = statistics.median(earlier[-rules.baseline_sessions :])
    spread = earlier[-rules.own_sd_sessions :]
    own_sd = statistics.stdev(spread) if len(spread) >= rules.own_sd_min_sessions else None
    # Gumz 2012: the stricter of the client's own and the between-client variability.
    sigma = max(own_sd or 0.0, change.between_client_sd, change.measurement_error)
    return UsualLevel(baseline, sigma, own_sd)


class SessionRules:
    """The rules that look at one returned survey against the client's earlier ones."""

    def __init__(self, instrument: Instrument, rules: RuptureRules, returned: list[Scores]):
        self.instrument = instrument
        self.rules = rules
        self.returned = returned

    def findings(self, answers: Mapping[str, object], scores: Scores) -> list[Finding]:
        found = self._absolute(answers, scores) + self._tension(answers)
        drops = [f for scale in self._scales() for f in self._drop(scale, scores.scale(scale))]
        # A larger drop already says more than "first result below the top".
        return found + (drops or self._ceiling(scores))

    def _scales(self) -> list[str]:
        scales = [TOTAL]
        if self.rules.check_subscales:
            scales += [
                name
                for name in self.instrument.subscales
                if name in self.instrument.reliable_change
            ]
        return scales

    def _absolute(self, answers: Mapping[str, object], scores: Scores) -> list[Finding]:
        cutoffs = self.instrument.cutoffs
        total_text = f"the alliance total was {num(scores.total)} of {num(scores.max_total)}"
        if scores.pomp <= self.rules.floor_pomp:
            return [Finding("rupture", "floor", f"{total_text}, near the bottom of the scale")]
        found = []
        if cutoffs.total_below is not None and scores.total < cutoffs.total_below:
            found.append(
                Finding(
                    "watch", "low", f"{total_text}, below the cutoff of {num(cutoffs.total_below)}"
                )
            )
        if cutoffs.subscale_below is not None:
            for name, value in scores.subscales.items():
                if value < cutoffs.subscale_below:
                    text = (
                        f"{scale_label(self.instrument, name)} was {num(value)}, below the "
                        f"cutoff of {num(cutoffs.subscale_below)}"
                    )
                    found.append(Finding("watch", "low", text))
        if cutoffs.item_below is not None:
            found.extend(self._items_below(answers, cutoffs.item_below))
        return found

    def _items_below(self, answers: Mapping[str, object], cutoff: float) -> list[Finding]:
        low = [
            f"{item.name} {num(answers[item.link_id])}"
            for item in self.instrument.score_items
            if answers[item.link_id] < cutoff
        ]
        if not low:
            return []
        return [Finding("check-in", "check-in", f"rated below {num(cutoff)}: {', '.join(low)}")]

    def _tension(self, answers: Mapping[str, object]) -> list[Finding]:
        tension = self.instrument.item_with_role("tension")
        if tension is None or answers.get(tension.link_id) is not True:
            return []
        intensity_item = self.instrument.item_with_role("tension_intensity")
        intensity = answers.get(intensity_item.link_id) if intensity_item else None
        if intensity is None:
            return [
                Finding(
                    "watch",
                    "tension",
                    "the client reported tension with the therapist (strength not given)",
                )
            ]
        strength = f"strength {intensity} of {plain_number(intensity_item.max)}"
        text = f"the client reported tension with the therapist ({strength})"
        severity = "rupture" if intensity >= self.rules.tension_rupture_intensity else "watch"
        return [Finding(severity, "tension", text)]

    def _drop(self, scale: str, value: float) -> list[Finding]:
        earlier = [scores.scale(scale) for scores in self.returned]
        change = self.instrument.reliable_change[scale]
        level = usual_level(earlier, change, self.rules)
        if level is None:
            return []
        own_sd = level.own_sd or 0.0
        step_noise = math.sqrt(2.0) * max(own_sd, change.measurement_error)
        drop = _Drop(
            name=scale_label(self.instrument, scale),
            value=value,
            previous=earlier[-1],
            baseline=level.baseline,
            sigma=level.sigma,
            rc_rupture=self.rules.rc_rupture_z * step_noise,
            rc_watch=self.rules.rc_watch_z * step_noise,
            own_noise_known=level.own_sd is not None,
        )
        trigger = DropTrigger(scale, level.baseline, level.sigma, drop.rc_watch)
        return drop.findings(self.rules, earlier, trigger)

    def _ceiling(self, scores: Scores) -> list[Finding]:
        run = self.returned[-self.rules.ceiling_run :]
        if len(run) < self.rules.ceiling_run or scores.pomp >= self.rules.ceiling_pomp:
            return []
        if not all(earlier.pomp >= self.rules.ceiling_pomp for earlier in run):
            return []
        text = (
            f"first result below the top of the scale after {len(run)} surveys at the top "
            f"(total {num(scores.total)} of {num(scores.max_total)})"
        )
        return [Finding("check-in", "ceiling", text)]


@dataclass(frozen=True)
class _Drop:
    """One scale's value against its baseline, previous value and thresholds."""

    name: str
    value: float
    previous: float
    baseline: float
    sigma: float
    rc_rupture: float
    rc_watch: float
    own_noise_known: bool

    def findings(
        self, rules: RuptureRules, earlier: list[float], trigger: DropTrigger
    ) -> list[Finding]:
        below = self.baseline - self.value
        step = self.previous - self.value
        if below >= rules.watch_sd * self.sigma:
            return [self._below_baseline(rules, earlier, trigger, below, step)]
        # A reliable fall that stays at or above the usual level is the last survey's high
        # coming back to normal, not a rupture.
        if step >= self.rc_watch and self.value < self.baseline:
            return [Finding("watch", "drop", self._step_text(self.rc_watch))]
        return []

    def _below_baseline(
        self,
        rules: RuptureRules,
        earlier: list[float],
        trigger: DropTrigger,
        below: float,
        step: float,
    ) -> Finding:
        rupture_level = rules.rupture_sd * self.sigma
        # A sudden fall is a rupture when it is reliable against the last survey *and* the usual
        # level (so a high last survey returning to normal is not one). Until the client's own
        # variability is known, measurement error alone cannot tell a noisy client from a
        # rupture, so early falls must reach the 2 SD level below instead.
        if step >= self.rc_rupture and below >= self.rc_rupture and self.own_noise_known:
            return Finding("rupture", "drop", self._step_text(self.rc_rupture), trigger)
        if below >= rupture_level:
            text = (
                f"{self.name} fell to {num(self.value)} from the usual {num(self.baseline)}, "
                f"a drop of {num(below)}, "
                f"more than the rupture threshold of {limit(rupture_level)}"
            )
            return Finding("rupture", "drop", text, trigger)
        decline = _decline(earlier + [self.value], rules.decline_sessions)
        if decline is not None and decline[1] - self.value >= rupture_level:
            sessions, start = decline
            text = (
                f"{self.name} declined over {sessions} sessions from {num(start)} to "
                f"{num(self.value)}, more than the rupture threshold of {limit(rupture_level)}"
            )
            return Finding("rupture", "drop", text, trigger)
        text = (
            f"{self.name} fell to {num(self.value)} from the usual {num(self.baseline)}, more "
            f"than the watch threshold of {limit(rules.watch_sd * self.sigma)}"
        )
        return Finding("watch", "drop", text)

    def _step_text(self, threshold: float) -> str:
        return (
            f"{self.name} fell from {num(self.previous)} to {num(self.value)}, more than the "
            f"reliable-change threshold of {limit(threshold)}"
        )


def _decline(values: list[float], minimum: int) -> tuple[int, float] | None:
    """(number of consecutive declines ending at the last value, value before them) or None."""
    steps = 0
    index = len(values) - 1
    while index > 0 and values[index] < values[index - 1]:
        steps += 1
        index -= 1
    return (steps, values[index]) if steps >= minimum else None


def cutoff_of(instrument: Instrument, scale: str) -> float | None:
    return instrument.cutoffs.total_below if scale == TOTAL else instrument.cutoffs.subscale_below


def has_cutoff(instrument: Instrument, scale: str) -> bool:
    return cutoff_of(instrument, scale) is not None


def below_cutoff(instrument: Instrument, scale: str, value: float) -> bool:
    cutoff = cutoff_of(instrument, scale)
    return cutoff is not None and value < cutoff


def scale_label(instrument: Instrument, scale: str) -> str:
    if scale == TOTAL:
        return "the alliance total"
    items = instrument.scale_items(scale)
    return items[0].name if len(items) == 1 else f"the {scale} subscale"


def num(value: float) -> str:
    """A value in a reason: one decimal at most ("bond fell from 9 to 5.5")."""
    return str(plain_number(round(value, 1)))


def limit(value: float) -> str:
    """A threshold in a reason."""
    # Thresholds keep two decimals so that "a drop of 5, more than 4.96" never reads "more than 5".
    return str(plain_number(value))
