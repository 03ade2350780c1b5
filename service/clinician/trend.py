"""The trend a clinician sees: each session's scores, the client's usual band as the rupture
rules computed it, the decision, and the open rupture's reasons. Pure: rows in, values out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from service.domain.instruments import TOTAL, Instrument
from service.domain.rupture_rules import RuptureRules
from service.domain.scoring import plain_number
from service.domain.session_rules import usual_level

# What each decision means, in the words the view and the table use.
DECISION_WORDS = {
    None: "Not assessed yet",
    "none": "Steady",
    "check-in": "Check in",
    "watch": "Watch",
    "rupture": "Rupture",
    "unresolved": "Unresolved rupture",
    "repaired": "Repaired",
}


@dataclass(frozen=True)
class Band:
    """baseline ± 1 σ of one scale, from the surveys before this one (what it was judged by)."""

    baseline: float
    low: float
    high: float

    def as_dict(self) -> dict:
        return {"baseline": _num(self.baseline), "low": _num(self.low), "high": _num(self.high)}


@dataclass(frozen=True)
class TrendPoint:
    position: int  # 1-based, in session order
    session_id: str
    day: date | None  # the session's date in the practice's time zone
    returned: bool
    values: dict[str, float]  # "total" and each subscale; empty when not returned
    bands: dict[str, Band]
    decision: str | None
    reasons: tuple[str, ...]

    @property
    def decision_words(self) -> str:
        words = DECISION_WORDS.get(self.decision, self.decision or "")
        if self.returned:
            return words
        if self.decision in (None, "none"):
            return "Not returned"
        return f"Not returned ({words.lower()})"


@dataclass(frozen=True)
class OpenRupture:
    since: date | None
    session_id: str
    decision: str  # rupture | unresolved
    reasons: tuple[str, ...]  # why it opened
    latest: str | None  # where it stands now, when a later session said more

    @property
    def title(self) -> str:
        unresolved = self.decision == "unresolved"
        return "Unresolved alliance rupture" if unresolved else "Alliance rupture"


@dataclass(frozen=True)
class Scale:
    name: str  # "total" or a subscale name
    label: str
    low: float
    high: float
    cutoff: float | None

    @property
    def cutoff_text(self) -> str:
        return "" if self.cutoff is None else str(_num(self.cutoff))

    @property
    def range_text(self) -> str:
        return f"{_num(self.low)}–{_num(self.high)}"


@dataclass(frozen=True)
class Trend:
    patient_id: str
    instrument_id: str
    instrument_title: str
    scales: tuple[Scale, ...]
    points: tuple[TrendPoint, ...]
    open_rupture: OpenRupture | None
    other_instrument_surveys: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total_scale(self) -> Scale:
        return self.scales[0]

    def as_dict(self) -> dict:
        """The view's data as JSON (GET /smart/{practice_id}/view.json)."""
        return {
            "patient": self.patient_id,
            "instrument": {"id": self.instrument_id, "title": self.instrument_title},
            "scales": [{"name": s.name, "label": s.label, "min": _num(s.low), "max": _num(s.high),
                        "cutoff_below": None if s.cutoff is None else _num(s.cutoff)}
                       for s in self.scales],
            "sessions": [_point_dict(point) for point in self.points],
            "open_rupture": _rupture_dict(self.open_rupture),
            "other_instrument_surveys": self.other_instrument_surveys,
        }


def build_trend(patient_id: str, rows: Sequence, instrument: Instrument, rules: RuptureRules,
                timezone: str, episode=None, bands_for_last: int | None = None) -> Trend:
    """The trend of one client on `instrument` from the stored rows (trend query module).

    `bands_for_last` limits the usual bands to the latest sessions (the ones a chart draws):
    each band costs a median and an exact standard deviation per scale.
    """
    zone = ZoneInfo(timezone)
    mine = [row for row in rows if row.instrument_id == instrument.id]
    scales = _scales(instrument)
    history: dict[str, list[float]] = {scale.name: [] for scale in scales}
    first_band = len(mine) - bands_for_last if bands_for_last is not None else 0
    points = []
    for position, row in enumerate(mine, start=1):
        values = _values(row, scales)
        bands = _bands(instrument, rules, history) if position > first_band else {}
        points.append(TrendPoint(
            position=position, session_id=row.session_id, day=_local_day(row.when, zone),
            returned=row.returned, values=values, bands=bands,
            decision=row.decision, reasons=tuple(row.reasons)))
        for name, value in values.items():
            history[name].append(value)
    counts = {kind: sum(1 for p in points if p.decision == kind)
              for kind in ("rupture", "unresolved", "repaired")}
    counts["not_returned"] = sum(1 for p in points if not p.returned)
    return Trend(
        patient_id=patient_id, instrument_id=instrument.id, instrument_title=instrument.title,
        scales=scales, points=tuple(points),
        open_rupture=_open_rupture(mine, episode, zone),
        other_instrument_surveys=len(rows) - len(mine), counts=counts)


def latest_instrument(rows: Sequence, default: str) -> str:
    """The instrument of the client's latest survey (the one the chart shows)."""
    return rows[-1].instrument_id if rows else default


def _scales(instrument: Instrument) -> tuple[Scale, ...]:
    cutoffs = instrument.cutoffs
    low, high = instrument.scale_range(TOTAL)
    scales = [Scale(TOTAL, "Alliance total", low, high, cutoffs.total_below)]
    for name in instrument.subscales:
        low, high = instrument.scale_range(name)
        scales.append(Scale(name, name.replace("_", " ").capitalize(), low, high,
                            cutoffs.subscale_below))
    return tuple(scales)


def _values(row, scales: tuple[Scale, ...]) -> dict[str, float]:
    if not row.returned:
        return {}
    subscales = row.subscales or {}
    values = {TOTAL: float(row.total)}
    values.update({s.name: float(subscales[s.name]) for s in scales[1:] if s.name in subscales})
    return values


def _bands(instrument: Instrument, rules: RuptureRules,
           history: dict[str, list[float]]) -> dict[str, Band]:
    bands = {}
    for name, earlier in history.items():
        change = instrument.reliable_change.get(name)
        level = usual_level(earlier, change, rules) if change is not None else None
        if level is not None:
            low, high = level.band
            bands[name] = Band(level.baseline, low, high)
    return bands


def _open_rupture(rows: Sequence, episode, zone: ZoneInfo) -> OpenRupture | None:
    if episode is None:
        return None
    opening = next((row for row in rows if row.survey_id == episode.opened_by_survey_id), None)
    if opening is None:
        return None
    in_episode = [row for row in rows if row.episode_id == episode.id and row.decision]
    decision = "unresolved" if any(r.decision == "unresolved" for r in in_episode) else "rupture"
    latest_row = in_episode[-1] if in_episode else opening
    latest = None
    if latest_row is not opening and latest_row.reasons:
        latest = latest_row.reasons[0]
    return OpenRupture(since=_local_day(opening.when, zone), session_id=opening.session_id,
                       decision=decision, reasons=tuple(opening.reasons), latest=latest)


def _local_day(moment: datetime | None, zone: ZoneInfo) -> date | None:
    return moment.astimezone(zone).date() if moment is not None else None


def _num(value: float) -> float | int:
    return plain_number(value)


def _point_dict(point: TrendPoint) -> dict:
    return {
        "position": point.position,
        "session_id": point.session_id,
        "date": point.day.isoformat() if point.day else None,
        "returned": point.returned,
        "scores": {name: _num(value) for name, value in point.values.items()},
        "usual_band": {name: band.as_dict() for name, band in point.bands.items()},
        "decision": point.decision,
        "reasons": list(point.reasons),
    }


def _rupture_dict(rupture: OpenRupture | None) -> dict | None:
    if rupture is None:
        return None
    return {"since": rupture.since.isoformat() if rupture.since else None,
            "session_id": rupture.session_id, "decision": rupture.decision,
            "reasons": list(rupture.reasons), "latest": rupture.latest}
