"""Governance figures: what happened to the alerts, from the stored episodes and actions.

For the rupture episodes opened in a period, per practice and overall: how many, the share
acknowledged (in the SMART view or by CDS Hooks feedback), snoozed, escalated and repaired, how
many are open now, and the time from the alert (the episode opened: its Flag, Task or document
written) to the first acknowledgment, as a median and a 90th percentile over the acknowledged
ones. Counts and durations only: the input names no client.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class EpisodeActivity:
    """One rupture episode and what was done about it (from `rupture_episodes`, `alert_actions`)."""

    practice_id: str
    opened_at: datetime
    repaired: bool  # closed by a repair (status resolved)
    first_acknowledged_at: datetime | None  # the first `acknowledge` action, any source
    snoozed: bool
    escalated: bool


@dataclass(frozen=True)
class Figures:
    """The governance figures of a set of episodes."""

    ruptures: int
    acknowledged: int
    snoozed: int
    escalated: int
    repaired: int
    open_now: int
    ack_median_seconds: float | None  # None: nothing acknowledged
    ack_p90_seconds: float | None

    def share(self, count: int) -> float | None:
        """count / ruptures, None when there were no ruptures."""
        return count / self.ruptures if self.ruptures else None


@dataclass(frozen=True)
class GovernanceReport:
    by_practice: dict[str, Figures]  # in practice id order
    overall: Figures


def governance_report(episodes: Iterable[EpisodeActivity]) -> GovernanceReport:
    """The figures per practice and over all the episodes given."""
    grouped: dict[str, list[EpisodeActivity]] = {}
    for episode in episodes:
        grouped.setdefault(episode.practice_id, []).append(episode)
    every = [episode for group in grouped.values() for episode in group]
    return GovernanceReport({practice: figures(grouped[practice]) for practice in sorted(grouped)},
                            figures(every))


def figures(episodes: list[EpisodeActivity]) -> Figures:
    waits = [max(0.0, (e.first_acknowledged_at - e.opened_at).total_seconds())
             for e in episodes if e.first_acknowledged_at is not None]
    return Figures(
        ruptures=len(episodes),
        acknowledged=len(waits),
        snoozed=sum(e.snoozed for e in episodes),
        escalated=sum(e.escalated for e in episodes),
        repaired=sum(e.repaired for e in episodes),
        open_now=sum(not e.repaired for e in episodes),
        ack_median_seconds=statistics.median(waits) if waits else None,
        ack_p90_seconds=percentile(waits, 90) if waits else None,
    )


def percentile(values: list[float], rank: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `rank` % of the values at
    or below it (always one of the values; with few values, the largest is the 90th)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(rank / 100 * len(ordered)) - 1)]
