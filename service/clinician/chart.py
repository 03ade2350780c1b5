"""Geometry of the trend charts, as values the template draws as SVG.

The SVG has a fixed height in pixels and the full width of its column. Horizontal positions
are percentages of that width (SVG lengths allow them on line, rect, text and use), so one
chart fits a 360 px side panel and a 1280 px window with text at its real size and no script.
Vertical positions are pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from service.clinician.trend import Scale, Trend, TrendPoint
from service.domain.scoring import plain_number

MAX_POINTS = 30  # the chart shows the latest sessions; the table lists all of them
X_INSET = 4.0  # percent kept free left and right, so end markers are not clipped
NARROW_LABELS = 4  # date labels at any width …
WIDE_LABELS = 10  # … and how many a wide screen shows (the rest are hidden by CSS)
MARKER_FOR = {"rupture": "rupture", "unresolved": "unresolved", "repaired": "repaired"}


@dataclass(frozen=True)
class Frame:
    top: int  # y of the scale's highest value, px
    bottom: int  # y of the scale's lowest value, px

    @property
    def height(self) -> int:
        """Of the whole SVG: the plot, a lane for surveys not returned, and the date labels."""
        return self.bottom + 44

    @property
    def missing_lane(self) -> int:
        """Below the axis: a survey not returned has no score, and on the axis it read as 0."""
        return self.bottom + 14

    @property
    def date_row(self) -> int:
        return self.bottom + 36

    def y(self, value: float, scale: Scale) -> float:
        """Pixel row of a value (higher values higher up)."""
        share = (value - scale.low) / (scale.high - scale.low)
        share = min(1.0, max(0.0, share))
        return round(self.bottom - share * (self.bottom - self.top), 1)


TOTAL_FRAME = Frame(top=14, bottom=196)
SUBSCALE_FRAME = Frame(top=12, bottom=104)


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class DateLabel:
    x: float
    text: str
    anchor: str  # start | middle | end
    wide_only: bool


@dataclass(frozen=True)
class Segment:
    x1: float
    y1: float
    x2: float
    y2: float
    across_gap: bool  # a survey that was not returned lies between the two ends


@dataclass(frozen=True)
class Marker:
    kind: str  # dot | rupture | unresolved | repaired | missing
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class BandStep:
    x: float
    width: float
    y: float
    height: float


@dataclass(frozen=True)
class Chart:
    scale: Scale
    frame: Frame
    ticks: tuple[Tick, ...]
    dates: tuple[DateLabel, ...]
    band: tuple[BandStep, ...]
    segments: tuple[Segment, ...]
    markers: tuple[Marker, ...]
    cutoff_y: float | None
    shown: int  # sessions drawn
    total: int  # sessions in the trend
    summary: str  # the accessible name: what a sighted reader takes in at a glance


def x_position(index: int, count: int) -> float:
    """Percent across the plot of the index-th of `count` evenly spaced sessions."""
    if count <= 1:
        return 50.0
    return round(X_INSET + index * (100.0 - 2 * X_INSET) / (count - 1), 2)


def nice_ticks(low: float, high: float, most: int = 5) -> tuple[float, ...]:
    """Round values from low to high, at most `most` of them, including both ends."""
    span = high - low
    if span <= 0:
        return (low,)
    raw = span / (most - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks, value = [], first
    while value <= high + 1e-9:
        ticks.append(round(value, 6))
        value += step
    return tuple(ticks)


def build_chart(trend: Trend, scale: Scale, with_events: bool) -> Chart:
    """The chart of one scale over the latest MAX_POINTS sessions."""
    frame = TOTAL_FRAME if scale.name == trend.total_scale.name else SUBSCALE_FRAME
    points = trend.points[-MAX_POINTS:]
    count = len(points)
    xs = [x_position(i, count) for i in range(count)]
    return Chart(
        scale=scale, frame=frame,
        ticks=tuple(Tick(frame.y(v, scale), _label(v))
                    for v in nice_ticks(scale.low, scale.high, 5 if with_events else 3)),
        dates=_date_labels(points, xs, wide=with_events),
        band=_band(points, xs, scale, frame),
        segments=_segments(points, xs, scale, frame),
        markers=_markers(points, xs, scale, frame, with_events),
        cutoff_y=None if scale.cutoff is None else frame.y(scale.cutoff, scale),
        shown=count, total=len(trend.points),
        summary=_summary(trend, scale, points),
    )


def _date_labels(points: tuple[TrendPoint, ...], xs: list[float],
                 wide: bool) -> tuple[DateLabel, ...]:
    """A few dates at any width; more on a wide screen, for the full-width total chart only
    (the small charts sit three to a row there)."""
    count = len(points)
    if count == 0:
        return ()
    narrow = set(_spread(count, NARROW_LABELS))
    wide = set(_spread(count, WIDE_LABELS)) if wide else narrow
    years = {p.day.year for p in points if p.day}
    labels = []
    for index in sorted(narrow | wide):
        anchor = "middle"
        if count > 1 and index in (0, count - 1):
            anchor = "start" if index == 0 else "end"
        labels.append(DateLabel(xs[index], _day_text(points[index], len(years) > 1), anchor,
                                wide_only=index not in narrow))
    return tuple(labels)


def _spread(count: int, most: int) -> list[int]:
    """At most `most` evenly stepped indexes of range(count), first and last included."""
    if count <= most:
        return list(range(count))
    step = math.ceil((count - 1) / (most - 1))
    chosen = list(range(0, count, step))
    if count - 1 - chosen[-1] <= step / 2:
        chosen[-1] = count - 1  # too close to the last one to leave room for both labels
    elif chosen[-1] != count - 1:
        chosen.append(count - 1)
    return chosen


def _day_text(point: TrendPoint, with_year: bool) -> str:
    if point.day is None:
        return f"#{point.position}"
    text = f"{point.day.day} {point.day:%b}"
    return f"{text} {point.day:%y}" if with_year else text


def _band(points, xs, scale: Scale, frame: Frame) -> tuple[BandStep, ...]:
    steps = []
    for index, point in enumerate(points):
        band = point.bands.get(scale.name)
        if band is None:
            continue
        left, right = _half_widths(xs, index)
        top, bottom = frame.y(band.high, scale), frame.y(band.low, scale)
        steps.append(BandStep(round(xs[index] - left, 2), round(left + right, 2), top,
                              round(bottom - top, 1)))
    return tuple(steps)


def _half_widths(xs: list[float], index: int) -> tuple[float, float]:
    if len(xs) == 1:
        return X_INSET, X_INSET
    step = xs[1] - xs[0]
    left = step / 2 if index > 0 else min(step / 2, X_INSET)
    right = step / 2 if index < len(xs) - 1 else min(step / 2, X_INSET)
    return left, right


def _segments(points, xs, scale: Scale, frame: Frame) -> tuple[Segment, ...]:
    segments, previous, gap = [], None, False
    for index, point in enumerate(points):
        value = point.values.get(scale.name)
        if value is None:
            gap = previous is not None
            continue
        here = (xs[index], frame.y(value, scale))
        if previous is not None:
            segments.append(Segment(previous[0], previous[1], here[0], here[1], gap))
        previous, gap = here, False
    return tuple(segments)


def _markers(points, xs, scale: Scale, frame: Frame, with_events: bool) -> tuple[Marker, ...]:
    markers = []
    for index, point in enumerate(points):
        when = _day_text(point, True)
        value = point.values.get(scale.name)
        if value is None:
            markers.append(Marker("missing", xs[index], frame.missing_lane,
                                  f"{when}: not returned"))
            kind = MARKER_FOR.get(point.decision) if with_events else None
            if kind:
                markers.append(Marker(kind, xs[index], frame.bottom - 16,
                                      f"{when}: {point.decision_words}"))
            continue
        kind = MARKER_FOR.get(point.decision, "dot") if with_events else "dot"
        markers.append(Marker(kind, xs[index], frame.y(value, scale),
                              f"{when}: {scale.label} {_label(value)} · {point.decision_words}"))
    return tuple(markers)


def _summary(trend: Trend, scale: Scale, points) -> str:
    returned = [p for p in points if scale.name in p.values]
    parts = [f"{scale.label} over {_count(len(points), 'session')}"]
    if len(points) < len(trend.points):
        parts[0] += f" (the latest {len(points)} of {len(trend.points)})"
    if returned:
        last = returned[-1]
        parts.append(f"latest {_label(last.values[scale.name])} of {_label(scale.high)} on "
                     f"{_day_text(last, True)}")
    if scale.cutoff is not None:
        parts.append(f"cutoff {_label(scale.cutoff)}")
    if scale.name == trend.total_scale.name:
        events = [(sum(1 for p in points if p.decision == kind), word) for kind, word in
                  (("rupture", "rupture"), ("unresolved", "unresolved rupture"),
                   ("repaired", "repair"))]
        parts += [_count(n, word) for n, word in events if n]
    missing = len(points) - len(returned)
    if missing:
        parts.append(f"{_count(missing, 'survey')} not returned")
    return "; ".join(parts) + ". Every value is in the table below."


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _label(value: float) -> str:
    return str(plain_number(value))


def build_charts(trend: Trend) -> list[Chart]:
    """The total with rupture and repair markers, then one small chart per subscale."""
    return [build_chart(trend, scale, with_events=index == 0)
            for index, scale in enumerate(trend.scales)]
