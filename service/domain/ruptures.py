"""Rupture and repair detection over one client's session series (science reference §3).

The engine replays a client's history in session order and decides, for each session, one of
DECISIONS. What a single survey shows on its own is in `session_rules`; the thresholds are in
`rupture_rules`; this module follows a rupture once it is seen, through its repair window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .instruments import TOTAL, Instrument
from .rupture_rules import RuptureRules
from .scoring import Scores, plain_number, score, validate_answers
from .session_rules import (
    SEVERITY,
    DropTrigger,
    Finding,
    SessionRules,
    below_cutoff,
    has_cutoff,
    limit,
    num,
    scale_label,
)

DECISIONS = ("none", "check-in", "watch", "rupture", "unresolved", "repaired")
FLAG_DECISIONS = ("rupture", "unresolved")

__all__ = [
    "DECISIONS",
    "FLAG_DECISIONS",
    "SEVERITY",
    "Assessment",
    "RuptureRules",
    "RuptureTracker",
    "SessionObservation",
    "assess_series",
]


@dataclass(frozen=True)
class SessionObservation:
    """One session of one client; answers None means the survey was not returned.

    `scores` are the scores stored when the client answered: given, they are used as they are
    (the answers are still read for the tension and resolution items); left out, the answers
    are validated and scored here (a replayed history).
    """

    session_id: str
    ended_at: datetime | None
    answers: Mapping[str, object] | None
    scores: Scores | None = None


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


@dataclass
class _RepairWatch:
    """Detection state of an open rupture while the engine replays a history: what opened it
    (the scales that fell, with the usual level each must return to), the troughs since, and
    how far into the repair window the client is.

    This is not the rupture *episode* (`episodes.RuptureEpisode`): it is never stored, it is
    rebuilt from the client's surveys at every assessment, and it holds no Flag. The engine
    turns it into decisions (rupture, unresolved, repaired); the episode changes only through
    those decisions, so rule changes and replays can never disagree with a stored copy of it.
    """

    label: str
    triggers: tuple[DropTrigger, ...]
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
    _watch: _RepairWatch | None = field(default=None, init=False)
    _last_low_label: str | None = field(default=None, init=False)

    def assess(self, observation: SessionObservation) -> Assessment:
        """The decision for the next session of this client."""
        if observation.answers is None:
            return self._assess_missing(observation)
        answers, scores = self._scored(observation)
        findings = SessionRules(self.instrument, self.rules, self._returned).findings(
            answers, scores
        )
        if self._watch is not None:
            assessment = self._assess_open_rupture(observation, scores, answers, findings)
        else:
            assessment = self._assess_fresh(observation, scores, findings)
        self._returned.append(scores)
        low = (
            assessment.decision in ("watch", "rupture", "unresolved")
            or assessment.interpretation == "low"
        )
        self._last_low_label = _session_label(observation) if low else None
        return assessment

    def _scored(self, observation: SessionObservation) -> tuple[Mapping[str, object], Scores]:
        if observation.scores is not None:
            return observation.answers, observation.scores  # validated and scored on arrival
        answers = validate_answers(self.instrument, observation.answers)
        return answers, score(self.instrument, answers)

    def _assess_fresh(
        self, observation: SessionObservation, scores: Scores, findings: list[Finding]
    ) -> Assessment:
        decision = max((f.severity for f in findings), key=SEVERITY.__getitem__, default="none")
        if decision == "rupture":
            self._watch = _open_watch(_session_label(observation), findings, scores)
        return _assessment(observation, scores, decision, findings)

    def _assess_open_rupture(
        self,
        observation: SessionObservation,
        scores: Scores,
        answers: Mapping[str, object],
        findings: list[Finding],
    ) -> Assessment:
        watch = self._watch
        watch.sessions_since += 1
        repair_reasons = self._repair_reasons(watch, scores, answers, findings)
        _update_troughs(watch, scores)
        if repair_reasons:
            self._watch = None
            lesser = [f for f in findings if SEVERITY[f.severity] < SEVERITY["rupture"]]
            late = " (after the repair window)" if watch.unresolved else ""
            reasons = [
                f"the rupture at {watch.label} looks repaired{late}: " + "; ".join(repair_reasons)
            ]
            return _assessment(observation, scores, "repaired", lesser, lead=reasons)
        return self._not_repaired(observation, scores, findings, "still below where it was")

    def _assess_missing(self, observation: SessionObservation) -> Assessment:
        if self._watch is not None:
            self._watch.sessions_since += 1
            return self._not_repaired(observation, None, [], "no survey returned")
        if self._last_low_label is None:
            return _assessment(observation, None, "none", [])
        finding = Finding(
            "watch", "silence", f"no survey returned since the low result at {self._last_low_label}"
        )
        return _assessment(observation, None, "watch", [finding])

    def _not_repaired(
        self,
        observation: SessionObservation,
        scores: Scores | None,
        findings: list[Finding],
        state: str,
    ) -> Assessment:
        watch = self._watch
        window = self.rules.repair_window
        if watch.unresolved:
            lead = f"the rupture at {watch.label} is still unresolved ({state})"
            return _assessment(observation, scores, "watch", findings, lead=[lead])
        if watch.sessions_since >= window:
            watch.unresolved = True
            lead = (
                f"not repaired {_sessions(watch.sessions_since)} after the rupture at "
                f"{watch.label} ({state})"
            )
            return _assessment(observation, scores, "unresolved", findings, lead=[lead])
        lead = (
            f"the rupture at {watch.label} is not repaired yet ({state}; session "
            f"{watch.sessions_since} of {window} of the repair window)"
        )
        return _assessment(observation, scores, "watch", findings, lead=[lead])

    def _repair_reasons(
        self,
        watch: _RepairWatch,
        scores: Scores,
        answers: Mapping[str, object],
        findings: list[Finding],
    ) -> list[str]:
        resolution = self.instrument.item_with_role("resolution")
        if resolution is not None:
            rated = answers.get(resolution.link_id)
            if rated is not None and rated >= self.rules.repair_resolution:
                rating = plain_number(rated)
                return [f"the client rated how well the difficulty was worked through as {rating}"]
        if any(f.severity == "rupture" for f in findings):
            return []
        reasons = [self._trigger_repair(watch, trigger, scores) for trigger in watch.triggers]
        # With a usual level to return to, the total's drop trigger already covers the floor.
        if watch.floor and not any(t.scale == TOTAL for t in watch.triggers):
            reasons.append(self._floor_repair(watch, scores))
        if watch.tension:
            reasons.append("no strong tension reported this time")
        return reasons if all(reasons) else []

    def _trigger_repair(self, watch: _RepairWatch, trigger: DropTrigger, scores: Scores) -> str:
        value = scores.scale(trigger.scale)
        name = scale_label(self.instrument, trigger.scale)
        if value >= trigger.baseline - self.rules.repair_sd * trigger.sigma:
            return f"{name} is back to {num(value)}, near the usual {num(trigger.baseline)}"
        trough = watch.troughs[trigger.scale]
        # The reference's "reliable rise above the absolute cutoff" never fires for clients who
        # usually sit below the cutoff, so leaving the watch zone (within 1 SD) counts too.
        near_usual = value > trigger.baseline - self.rules.watch_sd * trigger.sigma
        clear_of_cutoff = has_cutoff(self.instrument, trigger.scale) and not below_cutoff(
            self.instrument, trigger.scale, value
        )
        if value - trough >= trigger.rise_threshold and (near_usual or clear_of_cutoff):
            return (
                f"{name} rose from {num(trough)} to {num(value)}, more than the "
                f"reliable-change threshold of {limit(trigger.rise_threshold)}"
            )
        return ""

    def _floor_repair(self, watch: _RepairWatch, scores: Scores) -> str:
        change = self.instrument.reliable_change[TOTAL]
        rise_needed = change.threshold(self.rules.rc_watch_z)
        trough = watch.troughs[TOTAL]
        if scores.total - trough < rise_needed or scores.pomp <= self.rules.floor_pomp:
            return ""
        if has_cutoff(self.instrument, TOTAL):
            clear = not below_cutoff(self.instrument, TOTAL, scores.total)
        else:
            clear = scores.pomp >= 50.0  # no cutoff: out of the bottom half of the scale
        if not clear:
            return ""
        return (
            f"the alliance total rose from {num(trough)} to {num(scores.total)}, more than the "
            f"reliable-change threshold of {limit(rise_needed)}"
        )


def assess_series(
    observations: Sequence[SessionObservation],
    instrument: Instrument,
    rules: RuptureRules | None = None,
) -> list[Assessment]:
    """Decisions for one client's sessions in order; the last is the latest session's."""
    tracker = RuptureTracker(instrument, rules or RuptureRules())
    return [tracker.assess(observation) for observation in observations]


def _open_watch(label: str, findings: list[Finding], scores: Scores) -> _RepairWatch:
    ruptures = [f for f in findings if f.severity == "rupture"]
    triggers = tuple(f.trigger for f in ruptures if f.trigger is not None)
    troughs = {TOTAL: scores.total, **scores.subscales}
    return _RepairWatch(
        label=label,
        triggers=triggers,
        tension=any(f.kind == "tension" for f in ruptures),
        floor=any(f.kind == "floor" for f in ruptures),
        troughs=troughs,
    )


def _update_troughs(watch: _RepairWatch, scores: Scores) -> None:
    for scale, trough in watch.troughs.items():
        watch.troughs[scale] = min(trough, scores.scale(scale))


def _assessment(
    observation: SessionObservation,
    scores: Scores | None,
    decision: str,
    findings: list[Finding],
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


def _flag_text(decision: str, findings: list[Finding], lead: list[str] | None) -> str | None:
    if decision == "rupture":
        return "Alliance rupture: " + "; ".join(
            f.reason for f in findings if f.severity == "rupture"
        )
    if decision == "unresolved":
        return "Unresolved alliance rupture: " + "; ".join(lead or [])
    return None


def _interpretation(scores: Scores | None, decision: str, findings: list[Finding]) -> str | None:
    if scores is None:
        return None
    if any(f.kind in ("floor", "low") for f in findings):
        return "low"
    if decision in ("rupture", "unresolved", "watch"):
        return "watch"
    return "check-in" if decision == "check-in" else None


def _session_label(observation: SessionObservation) -> str:
    if observation.ended_at is None:
        return f"session {observation.session_id}"
    return f"session {observation.session_id} ({observation.ended_at.date().isoformat()})"


def _sessions(count: int) -> str:
    return "1 session" if count == 1 else f"{count} sessions"
