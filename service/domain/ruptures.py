"""Rupture and repair detection over one client's session series (science reference §3)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from .instruments import TOTAL, Instrument
from .scoring import Scores, plain_number, score, validate_answers

DECISIONS = ("none", "check-in", "watch", "rupture", "unresolved", "repaired")
# Severity of what one session shows on its own; 'unresolved' and 'repaired' come from episodes.
SEVERITY = {"none": 0, "check-in": 1, "watch": 2, "rupture": 3}
FLAG_DECISIONS = ("rupture", "unresolved")


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


@dataclass(frozen=True)
class SessionObservation:
    """One session of one client; answers None means the survey was not returned."""

    session_id: str
    ended_at: datetime | None
    answers: Mapping[str, object] | None


@dataclass(frozen=True)
class Assessment:
    """What the engine concluded for one session, in words a clinician can check."""

    session_id: str
    scores: Scores | None
    decision: str
    reasons: tuple[str, ...]
    flag_text: str | None
    interpretation: str | None

    @property
    def raises_flag(self) -> bool:
        return self.decision in FLAG_DECISIONS


@dataclass(frozen=True)
class _Finding:
    """One rule that fired at one session."""

    severity: str
    kind: str  # floor | low | check-in | tension | drop | ceiling | silence
    reason: str
    trigger: _DropTrigger | None = None


@dataclass(frozen=True)
class _DropTrigger:
    """A scale whose drop opened a rupture, with what repair is measured against."""

    scale: str
    baseline: float
    sigma: float
    rise_threshold: float


@dataclass
class _Episode:
    """An open rupture: what opened it and how far into the repair window we are."""

    label: str
    triggers: tuple[_DropTrigger, ...]
    tension: bool
    floor: bool
    troughs: dict[str, float]
    sessions_since: int = 0
    unresolved: bool = False


@dataclass
class RuptureTracker:
    """Follows one client's sessions in order; `assess` gives the decision for each new one."""

    instrument: Instrument
    rules: RuptureRules = field(default_factory=RuptureRules)
    _returned: list[Scores] = field(default_factory=list, init=False)
    _episode: _Episode | None = field(default=None, init=False)
    _last_low_label: str | None = field(default=None, init=False)

    def assess(self, observation: SessionObservation) -> Assessment:
        """The decision for the next session of this client."""
        if observation.answers is None:
            return self._assess_missing(observation)
        answers = validate_answers(self.instrument, observation.answers)
        scores = score(self.instrument, answers)
        findings = _SessionRules(self.instrument, self.rules, self._returned).findings(
            answers, scores
        )
        if self._episode is not None:
            assessment = self._assess_in_episode(observation, scores, answers, findings)
        else:
            assessment = self._assess_fresh(observation, scores, findings)
        self._returned.append(scores)
        low = (
            assessment.decision in ("watch", "rupture", "unresolved")
            or assessment.interpretation == "low"
        )
        self._last_low_label = _session_label(observation) if low else None
        return assessment

    def _assess_fresh(
        self, observation: SessionObservation, scores: Scores, findings: list[_Finding]
    ) -> Assessment:
        decision = max((f.severity for f in findings), key=SEVERITY.__getitem__, default="none")
        if decision == "rupture":
            self._episode = _open_episode(_session_label(observation), findings, scores)
        return _assessment(observation, scores, decision, findings)

    def _assess_in_episode(
        self,
        observation: SessionObservation,
        scores: Scores,
        answers: Mapping[str, object],
        findings: list[_Finding],
    ) -> Assessment:
        episode = self._episode
        episode.sessions_since += 1
        repair_reasons = self._repair_reasons(episode, scores, answers, findings)
        _update_troughs(episode, scores)
        if repair_reasons:
            self._episode = None
            lesser = [f for f in findings if SEVERITY[f.severity] < SEVERITY["rupture"]]
            late = " (after the repair window)" if episode.unresolved else ""
            reasons = [
                f"the rupture at {episode.label} looks repaired{late}: " + "; ".join(repair_reasons)
            ]
            return _assessment(observation, scores, "repaired", lesser, lead=reasons)
        return self._not_repaired(observation, scores, findings, "still below where it was")

    def _assess_missing(self, observation: SessionObservation) -> Assessment:
        if self._episode is not None:
            self._episode.sessions_since += 1
            return self._not_repaired(observation, None, [], "no survey returned")
        if self._last_low_label is None:
            return _assessment(observation, None, "none", [])
        finding = _Finding(
            "watch", "silence", f"no survey returned since the low result at {self._last_low_label}"
        )
        return _assessment(observation, None, "watch", [finding])

    def _not_repaired(
        self,
        observation: SessionObservation,
        scores: Scores | None,
        findings: list[_Finding],
        state: str,
    ) -> Assessment:
        episode = self._episode
        window = self.rules.repair_window
        if episode.unresolved:
            lead = f"the rupture at {episode.label} is still unresolved ({state})"
            return _assessment(observation, scores, "watch", findings, lead=[lead])
        if episode.sessions_since >= window:
            episode.unresolved = True
            lead = (
                f"not repaired {_sessions(episode.sessions_since)} after the rupture at "
                f"{episode.label} ({state})"
            )
            return _assessment(observation, scores, "unresolved", findings, lead=[lead])
        lead = (
            f"the rupture at {episode.label} is not repaired yet ({state}; session "
            f"{episode.sessions_since} of {window} of the repair window)"
        )
        return _assessment(observation, scores, "watch", findings, lead=[lead])

    def _repair_reasons(
        self,
        episode: _Episode,
        scores: Scores,
        answers: Mapping[str, object],
        findings: list[_Finding],
    ) -> list[str]:
        resolution = self.instrument.item_with_role("resolution")
        if resolution is not None:
            rated = answers.get(resolution.link_id)
            if rated is not None and rated >= self.rules.repair_resolution:
                return [
                    f"the client rated how well the difficulty was worked through as "
                    f"{plain_number(rated)}"
                ]
        if any(f.severity == "rupture" for f in findings):
            return []
        reasons = [self._trigger_repair(episode, trigger, scores) for trigger in episode.triggers]
        # With a usual level to return to, the total's drop trigger already covers the floor.
        if episode.floor and not any(t.scale == TOTAL for t in episode.triggers):
            reasons.append(self._floor_repair(episode, scores))
        if episode.tension:
            reasons.append("no strong tension reported this time")
        return reasons if all(reasons) else []

    def _trigger_repair(self, episode: _Episode, trigger: _DropTrigger, scores: Scores) -> str:
        value = scores.scale(trigger.scale)
        name = _scale_label(self.instrument, trigger.scale)
        if value >= trigger.baseline - self.rules.repair_sd * trigger.sigma:
            return f"{name} is back to {_num(value)}, near the usual {_num(trigger.baseline)}"
        trough = episode.troughs[trigger.scale]
        # The reference's "reliable rise above the absolute cutoff" never fires for clients who
        # usually sit below the cutoff, so leaving the watch zone (within 1 SD) counts too.
        near_usual = value > trigger.baseline - self.rules.watch_sd * trigger.sigma
        clear_of_cutoff = _has_cutoff(self.instrument, trigger.scale) and not _below_cutoff(
            self.instrument, trigger.scale, value
        )
        if value - trough >= trigger.rise_threshold and (near_usual or clear_of_cutoff):
            return (
                f"{name} rose from {_num(trough)} to {_num(value)}, more than the "
                f"reliable-change threshold of {_limit(trigger.rise_threshold)}"
            )
        return ""

    def _floor_repair(self, episode: _Episode, scores: Scores) -> str:
        change = self.instrument.reliable_change[TOTAL]
        rise_needed = change.threshold(self.rules.rc_watch_z)
        trough = episode.troughs[TOTAL]
        if scores.total - trough < rise_needed or scores.pomp <= self.rules.floor_pomp:
            return ""
        if _has_cutoff(self.instrument, TOTAL):
            clear = not _below_cutoff(self.instrument, TOTAL, scores.total)
        else:
            clear = scores.pomp >= 50.0  # no cutoff: out of the bottom half of the scale
        if not clear:
            return ""
        return (
            f"the alliance total rose from {_num(trough)} to {_num(scores.total)}, more than the "
            f"reliable-change threshold of {_limit(rise_needed)}"
        )


def assess_series(
    observations: Sequence[SessionObservation],
    instrument: Instrument,
    rules: RuptureRules = RuptureRules(),
) -> list[Assessment]:
    """Decisions for one client's sessions in order; the last is the latest session's."""
    tracker = RuptureTracker(instrument, rules)
    return [tracker.assess(observation) for observation in observations]


class _SessionRules:
    """The rules that look at one returned survey against the client's earlier ones."""

    def __init__(self, instrument: Instrument, rules: RuptureRules, returned: list[Scores]):
        self.instrument = instrument
        self.rules = rules
        self.returned = returned

    def findings(self, answers: Mapping[str, object], scores: Scores) -> list[_Finding]:
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

    def _absolute(self, answers: Mapping[str, object], scores: Scores) -> list[_Finding]:
        cutoffs = self.instrument.cutoffs
        total_text = f"the alliance total was {_num(scores.total)} of {_num(scores.max_total)}"
        if scores.pomp <= self.rules.floor_pomp:
            return [_Finding("rupture", "floor", f"{total_text}, near the bottom of the scale")]
        found = []
        if cutoffs.total_below is not None and scores.total < cutoffs.total_below:
            found.append(
                _Finding(
                    "watch", "low", f"{total_text}, below the cutoff of {_num(cutoffs.total_below)}"
                )
            )
        if cutoffs.subscale_below is not None:
            for name, value in scores.subscales.items():
                if value < cutoffs.subscale_below:
                    text = (
                        f"{_scale_label(self.instrument, name)} was {_num(value)}, below the "
                        f"cutoff of {_num(cutoffs.subscale_below)}"
                    )
                    found.append(_Finding("watch", "low", text))
        if cutoffs.item_below is not None:
            found.extend(self._items_below(answers, cutoffs.item_below))
        return found

    def _items_below(self, answers: Mapping[str, object], cutoff: float) -> list[_Finding]:
        low = [
            f"{item.name} {_num(answers[item.link_id])}"
            for item in self.instrument.score_items
            if answers[item.link_id] < cutoff
        ]
        if not low:
            return []
        return [_Finding("check-in", "check-in", f"rated below {_num(cutoff)}: {', '.join(low)}")]

    def _tension(self, answers: Mapping[str, object]) -> list[_Finding]:
        tension = self.instrument.item_with_role("tension")
        if tension is None or answers.get(tension.link_id) is not True:
            return []
        intensity_item = self.instrument.item_with_role("tension_intensity")
        intensity = answers.get(intensity_item.link_id) if intensity_item else None
        if intensity is None:
            return [
                _Finding(
                    "watch",
                    "tension",
                    "the client reported tension with the therapist (strength not given)",
                )
            ]
        strength = f"strength {intensity} of {plain_number(intensity_item.max)}"
        text = f"the client reported tension with the therapist ({strength})"
        severity = "rupture" if intensity >= self.rules.tension_rupture_intensity else "watch"
        return [_Finding(severity, "tension", text)]

    def _drop(self, scale: str, value: float) -> list[_Finding]:
        earlier = [scores.scale(scale) for scores in self.returned]
        if not earlier:
            return []
        window = earlier[-self.rules.baseline_sessions :]
        baseline = statistics.median(window)
        change = self.instrument.reliable_change[scale]
        spread = earlier[-self.rules.own_sd_sessions :]
        own_sd = statistics.stdev(spread) if len(spread) >= self.rules.own_sd_min_sessions else 0.0
        # Gumz 2012: the stricter of the client's own and the between-client variability.
        sigma = max(own_sd, change.between_client_sd, change.measurement_error)
        step_noise = math.sqrt(2.0) * max(own_sd, change.measurement_error)
        drop = _Drop(
            name=_scale_label(self.instrument, scale),
            value=value,
            previous=earlier[-1],
            baseline=baseline,
            sigma=sigma,
            rc_rupture=self.rules.rc_rupture_z * step_noise,
            rc_watch=self.rules.rc_watch_z * step_noise,
            own_noise_known=len(spread) >= self.rules.own_sd_min_sessions,
        )
        trigger = _DropTrigger(scale, baseline, sigma, drop.rc_watch)
        return drop.findings(self.rules, earlier, trigger)

    def _ceiling(self, scores: Scores) -> list[_Finding]:
        run = self.returned[-self.rules.ceiling_run :]
        if len(run) < self.rules.ceiling_run or scores.pomp >= self.rules.ceiling_pomp:
            return []
        if not all(earlier.pomp >= self.rules.ceiling_pomp for earlier in run):
            return []
        text = (
            f"first result below the top of the scale after {len(run)} surveys at the top "
            f"(total {_num(scores.total)} of {_num(scores.max_total)})"
        )
        return [_Finding("check-in", "ceiling", text)]


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
        self, rules: RuptureRules, earlier: list[float], trigger: _DropTrigger
    ) -> list[_Finding]:
        below = self.baseline - self.value
        step = self.previous - self.value
        if below >= rules.watch_sd * self.sigma:
            return [self._below_baseline(rules, earlier, trigger, below, step)]
        # A reliable fall that stays at or above the usual level is the last survey's high
        # coming back to normal, not a rupture.
        if step >= self.rc_watch and self.value < self.baseline:
            return [_Finding("watch", "drop", self._step_text(self.rc_watch))]
        return []

    def _below_baseline(
        self,
        rules: RuptureRules,
        earlier: list[float],
        trigger: _DropTrigger,
        below: float,
        step: float,
    ) -> _Finding:
        rupture_level = rules.rupture_sd * self.sigma
        # A sudden fall is a rupture when it is reliable against the last survey *and* the usual
        # level (so a high last survey returning to normal is not one). Until the client's own
        # variability is known, measurement error alone cannot tell a noisy client from a
        # rupture, so early falls must reach the 2 SD level below instead.
        if step >= self.rc_rupture and below >= self.rc_rupture and self.own_noise_known:
            return _Finding("rupture", "drop", self._step_text(self.rc_rupture), trigger)
        if below >= rupture_level:
            text = (
                f"{self.name} fell to {_num(self.value)} from the usual {_num(self.baseline)}, "
                f"a drop of {_num(below)}, "
                f"more than the rupture threshold of {_limit(rupture_level)}"
            )
            return _Finding("rupture", "drop", text, trigger)
        decline = _decline(earlier + [self.value], rules.decline_sessions)
        if decline is not None and decline[1] - self.value >= rupture_level:
            sessions, start = decline
            text = (
                f"{self.name} declined over {sessions} sessions from {_num(start)} to "
                f"{_num(self.value)}, more than the rupture threshold of {_limit(rupture_level)}"
            )
            return _Finding("rupture", "drop", text, trigger)
        text = (
            f"{self.name} fell to {_num(self.value)} from the usual {_num(self.baseline)}, more "
            f"than the watch threshold of {_limit(rules.watch_sd * self.sigma)}"
        )
        return _Finding("watch", "drop", text)

    def _step_text(self, threshold: float) -> str:
        return (
            f"{self.name} fell from {_num(self.previous)} to {_num(self.value)}, more than the "
            f"reliable-change threshold of {_limit(threshold)}"
        )


def _decline(values: list[float], minimum: int) -> tuple[int, float] | None:
    """(number of consecutive declines ending at the last value, value before them) or None."""
    steps = 0
    index = len(values) - 1
    while index > 0 and values[index] < values[index - 1]:
        steps += 1
        index -= 1
    return (steps, values[index]) if steps >= minimum else None


def _open_episode(label: str, findings: list[_Finding], scores: Scores) -> _Episode:
    ruptures = [f for f in findings if f.severity == "rupture"]
    triggers = tuple(f.trigger for f in ruptures if f.trigger is not None)
    troughs = {TOTAL: scores.total, **scores.subscales}
    return _Episode(
        label=label,
        triggers=triggers,
        tension=any(f.kind == "tension" for f in ruptures),
        floor=any(f.kind == "floor" for f in ruptures),
        troughs=troughs,
    )


def _update_troughs(episode: _Episode, scores: Scores) -> None:
    for scale, trough in episode.troughs.items():
        episode.troughs[scale] = min(trough, scores.scale(scale))


def _assessment(
    observation: SessionObservation,
    scores: Scores | None,
    decision: str,
    findings: list[_Finding],
    lead: list[str] | None = None,
) -> Assessment:
    ordered = sorted(findings, key=lambda f: -SEVERITY[f.severity])
    reasons = tuple((lead or []) + [f.reason for f in ordered])
    return Assessment(
        session_id=observation.session_id,
        scores=scores,
        decision=decision,
        reasons=reasons,
        flag_text=_flag_text(decision, ordered, lead),
        interpretation=_interpretation(scores, decision, findings),
    )


def _flag_text(decision: str, findings: list[_Finding], lead: list[str] | None) -> str | None:
    if decision == "rupture":
        return "Alliance rupture: " + "; ".join(
            f.reason for f in findings if f.severity == "rupture"
        )
    if decision == "unresolved":
        return "Unresolved alliance rupture: " + "; ".join(lead or [])
    return None


def _interpretation(scores: Scores | None, decision: str, findings: list[_Finding]) -> str | None:
    if scores is None:
        return None
    if any(f.kind in ("floor", "low") for f in findings):
        return "low"
    if decision in ("rupture", "unresolved", "watch"):
        return "watch"
    return "check-in" if decision == "check-in" else None


def _cutoff(instrument: Instrument, scale: str) -> float | None:
    return instrument.cutoffs.total_below if scale == TOTAL else instrument.cutoffs.subscale_below


def _has_cutoff(instrument: Instrument, scale: str) -> bool:
    return _cutoff(instrument, scale) is not None


def _below_cutoff(instrument: Instrument, scale: str, value: float) -> bool:
    cutoff = _cutoff(instrument, scale)
    return cutoff is not None and value < cutoff


def _scale_label(instrument: Instrument, scale: str) -> str:
    if scale == TOTAL:
        return "the alliance total"
    items = instrument.scale_items(scale)
    return items[0].name if len(items) == 1 else f"the {scale} subscale"


def _session_label(observation: SessionObservation) -> str:
    if observation.ended_at is None:
        return f"session {observation.session_id}"
    return f"session {observation.session_id} ({observation.ended_at.date().isoformat()})"


def _num(value: float) -> str:
    return str(plain_number(round(value, 1)))


def _limit(value: float) -> str:
    # Thresholds keep two decimals so that "a drop of 5, more than 4.96" never reads "more than 5".
    return str(plain_number(value))


def _sessions(count: int) -> str:
    return "1 session" if count == 1 else f"{count} sessions"
