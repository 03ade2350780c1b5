"""What-if: a practice's stored history replayed under two sets of rupture rules, counted.

A clinic about to change a threshold sees what the change would have done to its own clients:
how many alerts (rupture episodes opened, one Flag each), repairs and unresolved episodes, and
how many clients had any, under the rules in force and under the proposed ones.

The replay is the production path without its I/O: one `RuptureTracker` per client and
instrument, fed the client's surveys in session order (answered ones with the scores stored
when they arrived, missed ones as not returned), and the decisions moved through the one
episode model (`episodes.assign_episode`; a repair resolves the open episode, as the
write-back plan does). Only counts leave this module: no client id, no answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timezone

from .episodes import RuptureEpisode, assign_episode
from .instruments import Instrument
from .rupture_rules import RuptureRules
from .ruptures import RuptureTracker, SessionObservation

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class ReplayedSession:
    """One session of a client's history: the instrument it was surveyed with, and what came
    back (answers None: the survey reached the client and was not returned)."""

    instrument: Instrument
    observation: SessionObservation


@dataclass(frozen=True)
class EpisodeCounts:
    """What one set of rules would have produced over the history."""

    alerts: int = 0  # rupture episodes opened (each raises one Flag)
    repairs: int = 0  # episodes closed by a repair
    unresolved: int = 0  # episodes that went unresolved (not repaired within the window)
    open_at_end: int = 0  # episodes still open after the client's last session
    clients_affected: int = 0  # clients with at least one episode

    def minus(self, other: EpisodeCounts) -> EpisodeCounts:
        return EpisodeCounts(**{f.name: getattr(self, f.name) - getattr(other, f.name)
                                for f in fields(self)})

    def plus(self, other: EpisodeCounts) -> EpisodeCounts:
        return EpisodeCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                                for f in fields(self)})


@dataclass(frozen=True)
class WhatIf:
    """The history replayed under the current and the proposed rules."""

    clients: int
    sessions: int
    returned: int  # sessions with a returned survey (the others were not returned)
    current: EpisodeCounts
    proposed: EpisodeCounts

    @property
    def difference(self) -> EpisodeCounts:
        """proposed − current, per count."""
        return self.proposed.minus(self.current)


def proposed_rules(current: Mapping[str, object] | None,
                   changes: Mapping[str, object]) -> RuptureRules:
    """The practice's overrides with `changes` on top, checked by the rules' own validation
    (ValueError naming each unknown rule or bad value)."""
    return RuptureRules.from_overrides({**(current or {}), **changes})


def what_if(histories: Iterable[Iterable[ReplayedSession]], current: RuptureRules,
            proposed: RuptureRules) -> WhatIf:
    """Replay each client's history (sessions in session order) under both sets of rules."""
    clients = sessions = returned = 0
    totals = {"current": EpisodeCounts(), "proposed": EpisodeCounts()}
    for history in histories:
        replays = {"current": _ClientReplay(current), "proposed": _ClientReplay(proposed)}
        seen = 0
        for session in history:
            seen += 1
            returned += session.observation.answers is not None
            for replay in replays.values():
                replay.assess(session)
        if not seen:
            continue
        clients += 1
        sessions += seen
        for name, replay in replays.items():
            totals[name] = totals[name].plus(replay.counts())
    return WhatIf(clients, sessions, returned, totals["current"], totals["proposed"])


class _ClientReplay:
    """One client's sessions under one set of rules: trackers per instrument, one episode."""

    def __init__(self, rules: RuptureRules):
        self.rules = rules
        self.trackers: dict[str, RuptureTracker] = {}
        self.episode: RuptureEpisode | None = None
        self.went_unresolved = False
        self.alerts = self.repairs = self.unresolved = 0

    def assess(self, session: ReplayedSession) -> None:
        instrument, observation = session.instrument, session.observation
        tracker = self.trackers.setdefault(instrument.id, RuptureTracker(instrument, self.rules))
        decision = tracker.assess(observation).decision
        opening = RuptureEpisode.opened(f"what-if-{self.alerts + 1}", "", "",
                                        observation.session_id, None, _EPOCH)
        episode, is_new = assign_episode(decision, self.episode, opening)
        if episode is None:
            return
        if is_new:
            self.alerts += 1
            self.went_unresolved = False
        if decision == "unresolved" and not self.went_unresolved:
            self.unresolved += 1
            self.went_unresolved = True
        if decision == "repaired":
            self.repairs += 1
            self.episode = None  # resolved: the next rupture opens a new episode
        else:
            self.episode = episode

    def counts(self) -> EpisodeCounts:
        return EpisodeCounts(self.alerts, self.repairs, self.unresolved,
                             int(self.episode is not None), int(self.alerts > 0))
