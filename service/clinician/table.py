"""The trend as table rows of display text: the accessible twin of the charts."""

from __future__ import annotations

from dataclasses import dataclass

from service.clinician.trend import Trend
from service.domain.scoring import plain_number

NOT_RETURNED = "—"


@dataclass(frozen=True)
class Row:
    position: int
    date: str  # ISO date, or "" when the session has no date
    day: str  # "22 Nov", for reading
    year: str
    session_id: str
    scores: tuple[str, ...]  # in the order of trend.scales; "—" when not returned
    below_cutoff: tuple[bool, ...]
    result: str
    decision: str | None


def table_rows(trend: Trend) -> list[Row]:
    """One row per session, newest first (what a clinician reads first)."""
    rows = []
    for point in reversed(trend.points):
        scores, below = [], []
        for scale in trend.scales:
            value = point.values.get(scale.name)
            scores.append(NOT_RETURNED if value is None else str(plain_number(value)))
            below.append(value is not None and scale.cutoff is not None and value < scale.cutoff)
        rows.append(Row(position=point.position,
                        date=point.day.isoformat() if point.day else "",
                        day=f"{point.day.day} {point.day:%b}" if point.day else "no date",
                        year=str(point.day.year) if point.day else "",
                        session_id=point.session_id, scores=tuple(scores),
                        below_cutoff=tuple(below), result=point.decision_words,
                        decision=point.decision))
    return rows
