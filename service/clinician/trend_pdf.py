"""The alert document (alerts.write document, CONTRACT §9.2): the trend on one A4 page, as PDF.

What the SMART view shows, for an EHR that takes documents but no Flag: the rupture and its
reasons, the total chart with the cutoff, the client's usual band and the rupture and repair
marks, one small chart per subscale, and the table of sessions and scores. The charts are drawn
from the same geometry the view draws (`chart.build_charts`); the table rows are the view's
(`table.table_rows`), as many of the newest as fit the page.

Made with fpdf2 (pure Python, no system libraries; docs/alerts.md says why). Only what a
clinical document needs: the patient's id, never a name or contact, and no free-text answers
(the reasons are the engine's words about scores). The standard Helvetica font is used, so
text is Windows-1252; a character outside it prints as "?" rather than failing the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from fpdf import FPDF

from service.clinician.chart import MAX_POINTS, Chart, build_charts
from service.clinician.table import table_rows
from service.clinician.trend import Trend, TrendPoint

PAGE_W, PAGE_H, MARGIN = 210.0, 297.0, 12.0
WIDTH = PAGE_W - 2 * MARGIN
TOTAL_CHART_H, SUBSCALE_CHART_H = 52.0, 26.0
AXIS_W = 9.0  # room left of a plot for the tick labels
ROW_H, TABLE_FONT = 4.3, 7.5
MAX_REASONS, MAX_REASON_CHARS = 4, 320
MAX_SESSION_CHARS = 22
MAX_TITLE_CHARS = 60
FOOTER_H = 10.0

INK, MUTED, TRACE = (27, 27, 31), (74, 74, 85), (31, 78, 140)
RUPTURE, UNRESOLVED, REPAIRED = (179, 38, 30), (110, 20, 16), (30, 107, 53)
BAND, GRID, WHITE = (220, 230, 242), (213, 213, 220), (255, 255, 255)
MARK_COLOURS = {"dot": TRACE, "rupture": RUPTURE, "unresolved": UNRESOLVED,
                "repaired": REPAIRED}


@dataclass(frozen=True)
class AlertFacts:
    """What the document says about the rupture, beyond the trend itself."""

    state: str  # "open" | "repaired"
    text: str  # the alert's words (what the Flag says)
    session_id: str  # the session whose assessment prompted this document
    reasons: tuple[str, ...]  # that assessment's reasons
    created: datetime
    timezone: str  # the practice's, for the dates

    @property
    def title(self) -> str:
        """The heading: what the alert is, without its reasons (the box lists them)."""
        return "Alliance rupture repaired" if self.state == "repaired" else heading(self.text)


def heading(text: str) -> str:
    """What an alert is, from its words: "Unresolved alliance rupture: bond fell …" → the part
    before the colon (the reasons follow it)."""
    head = text.split(":", 1)[0].strip() or "Alliance rupture"
    return head if len(head) <= MAX_TITLE_CHARS else head[:MAX_TITLE_CHARS - 3] + "..."


def render_trend_pdf(trend: Trend, facts: AlertFacts) -> bytes:
    """The one-page PDF (deterministic for the same trend and facts)."""
    pdf = _Page(facts.created)
    pdf.heading(trend, facts)
    pdf.alert_box(trend, facts)
    charts = build_charts(trend)
    if charts:
        pdf.section("Over sessions")
        pdf.chart(charts[0], MARGIN, pdf.get_y(), WIDTH, TOTAL_CHART_H, with_cutoff_label=True)
        pdf.set_y(pdf.get_y() + TOTAL_CHART_H + 1)
        pdf.legend(charts[0])
        pdf.subscale_charts(charts[1:])
    shown = pdf.sessions_table(trend)
    pdf.footer_note(trend, shown)
    return bytes(pdf.output())


def safe_text(text: str) -> str:
    """Text the standard fonts can print: Windows-1252, anything else a '?'."""
    return text.encode("cp1252", errors="replace").decode("cp1252")


class _Page(FPDF):
    def __init__(self, created: datetime) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.core_fonts_encoding = "cp1252"
        self.set_auto_page_break(False)  # one page: every part below measures what fits
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_creation_date(created)
        self.set_title("Therapeutic alliance report")
        self.set_creator("alliance-feedback")
        self.set_producer("alliance-feedback (fpdf2)")
        self.add_page()

    def write_line(self, text: str, size: float, style: str = "", colour=INK,
                   height: float | None = None) -> None:
        self.set_font("Helvetica", style, size)
        self.set_text_color(*colour)
        self.multi_cell(WIDTH, height or size * 0.5, safe_text(text), align="L",
                        new_x="LMARGIN", new_y="NEXT")

    def heading(self, trend: Trend, facts: AlertFacts) -> None:
        self.write_line("Therapeutic alliance report", 9, "B", MUTED)
        self.write_line(facts.title, 15, "B", REPAIRED if facts.state == "repaired" else INK,
                        height=7.5)
        created = facts.created.astimezone(ZoneInfo(facts.timezone))
        sessions = len(trend.points)
        self.write_line(
            f"Patient {trend.patient_id} · {trend.instrument_title} · {sessions} "
            f"session{'s' if sessions != 1 else ''} · written {_day(created.date())} "
            f"{created:%H:%M} ({facts.timezone})", 8.5, colour=MUTED)
        self.ln(1.5)

    def alert_box(self, trend: Trend, facts: AlertFacts) -> None:
        colour = REPAIRED if facts.state == "repaired" else RUPTURE
        top = self.get_y()
        self.set_x(MARGIN + 4)
        lines = _alert_lines(trend, facts)
        for style, text in lines:
            self.set_font("Helvetica", style, 9)
            self.set_text_color(*INK)
            self.set_x(MARGIN + 4)
            self.multi_cell(WIDTH - 6, 4.3, safe_text(text), align="L", new_x="LMARGIN",
                            new_y="NEXT")
        bottom = self.get_y() + 1
        self.set_fill_color(*colour)
        self.rect(MARGIN, top, 1.8, bottom - top, style="F")
        self.set_y(bottom + 2)

    def section(self, title: str) -> None:
        self.write_line(title, 10.5, "B", height=5.5)

    def legend(self, total: Chart) -> None:
        self.set_font("Helvetica", "", 7)
        self.set_text_color(*MUTED)
        x, y = MARGIN + AXIS_W, self.get_y() + 2
        items = [("dot", "Survey returned"), ("rupture", "Rupture"),
                 ("unresolved", "Unresolved rupture"), ("repaired", "Repaired"),
                 ("missing", "Not returned")]
        for kind, label in items:
            self.marker(kind, x + 1.5, y, 0.8)
            self.text(x + 3.5, y + 1, label)
            x += 5 + self.get_string_width(label) + 3
        if total.scale.cutoff is not None:
            self.set_draw_color(*INK)
            self.set_dash_pattern(dash=1.2, gap=0.8)
            self.line(x, y, x + 6, y)
            self.set_dash_pattern()
            self.text(x + 7.5, y + 1, f"Cutoff ({total.scale.cutoff_text})")
            x += 9 + self.get_string_width(f"Cutoff ({total.scale.cutoff_text})") + 3
        self.set_fill_color(*BAND)
        self.rect(x, y - 1.2, 5, 2.4, style="F")
        self.text(x + 6.5, y + 1, "Usual range (baseline +/- 1 SD)")
        self.set_y(y + 4)

    def subscale_charts(self, charts: list[Chart]) -> None:
        per_row, gap = 3, 4.0
        width = (WIDTH - gap * (per_row - 1)) / per_row
        for start in range(0, len(charts), per_row):
            top = self.get_y()
            for column, chart in enumerate(charts[start:start + per_row]):
                x = MARGIN + column * (width + gap)
                self.set_font("Helvetica", "B", 8)
                self.set_text_color(*INK)
                self.text(x, top + 3, safe_text(chart.scale.label))
                self.chart(chart, x, top + 4, width, SUBSCALE_CHART_H)
            self.set_y(top + 4 + SUBSCALE_CHART_H + 1)

    def chart(self, chart: Chart, x: float, y: float, width: float, height: float,
              with_cutoff_label: bool = False) -> None:
        """One of the view's charts: x in percent of the plot, y in the frame's pixels."""
        plot_x, plot_w = x + AXIS_W, width - AXIS_W - (11 if with_cutoff_label else 0)
        scale_y = height / chart.frame.height

        def px(percent: float) -> float:
            return plot_x + percent / 100 * plot_w

        def py(pixels: float) -> float:
            return y + pixels * scale_y

        self.set_line_width(0.15)
        self.set_font("Helvetica", "", 6.5)
        self.set_text_color(*MUTED)
        for tick in chart.ticks:
            self.set_draw_color(*GRID)
            self.line(plot_x, py(tick.y), plot_x + plot_w, py(tick.y))
            self.text(x + AXIS_W - 1.2 - self.get_string_width(tick.label), py(tick.y) + 1,
                      tick.label)
        self.set_fill_color(*BAND)
        for step in chart.band:
            self.rect(px(step.x), py(step.y), step.width / 100 * plot_w, step.height * scale_y,
                      style="F")
        if chart.cutoff_y is not None:
            self._cutoff(chart, plot_x, plot_w, py(chart.cutoff_y), with_cutoff_label)
        self.set_draw_color(*TRACE)
        self.set_line_width(0.45)
        for segment in chart.segments:
            if segment.across_gap:
                self.set_dash_pattern(dash=0.8, gap=0.8)
            self.line(px(segment.x1), py(segment.y1), px(segment.x2), py(segment.y2))
            self.set_dash_pattern()
        self.set_line_width(0.2)
        size = 1.5 if with_cutoff_label else 1.0
        for marker in chart.markers:
            self.marker(marker.kind, px(marker.x), py(marker.y),
                        size * (0.75 if marker.kind == "dot" else 1))
        self.set_font("Helvetica", "", 6.5)
        self.set_text_color(*MUTED)
        right_of_last = float("-inf")
        for label in chart.dates:
            text = safe_text(label.text)
            shift = {"start": 0, "middle": 0.5, "end": 1}[label.anchor]
            left = px(label.x) - shift * self.get_string_width(text)
            if left < right_of_last + 2:  # the view hides such labels on a narrow screen
                continue
            self.text(left, py(chart.frame.date_row), text)
            right_of_last = left + self.get_string_width(text)

    def _cutoff(self, chart: Chart, plot_x: float, plot_w: float, y: float,
                labelled: bool) -> None:
        self.set_draw_color(*INK)
        self.set_line_width(0.3)
        self.set_dash_pattern(dash=1.5, gap=1)
        self.line(plot_x, y, plot_x + plot_w, y)
        self.set_dash_pattern()
        if labelled:  # at the right end, under the line: clear of the latest scores' dots
            self.set_font("Helvetica", "B", 6.5)
            self.set_text_color(*INK)
            label = f"cutoff {chart.scale.cutoff_text}"
            self.text(plot_x + plot_w + 1, y + 0.9, label)

    def marker(self, kind: str, x: float, y: float, r: float) -> None:
        """The view's shapes: dot, triangle down, square, triangle up, ring."""
        self.set_draw_color(*(INK if kind == "missing" else WHITE))
        self.set_fill_color(*MARK_COLOURS.get(kind, WHITE))
        if kind == "dot":
            self.circle(x, y, r, style="DF")
        elif kind == "rupture":
            self.polygon([(x - r, y - r * 0.75), (x + r, y - r * 0.75), (x, y + r)], style="DF")
        elif kind == "unresolved":
            self.rect(x - r * 0.85, y - r * 0.85, r * 1.7, r * 1.7, style="DF")
        elif kind == "repaired":
            self.polygon([(x - r, y + r * 0.75), (x + r, y + r * 0.75), (x, y - r)], style="DF")
        else:  # missing: a ring
            self.set_line_width(0.3)
            self.circle(x, y, r * 0.7, style="DF")
            self.set_line_width(0.2)

    def sessions_table(self, trend: Trend) -> int:
        """The newest sessions that fit the page; how many were shown."""
        rows = table_rows(trend)
        if not rows:
            self.write_line("No survey of this client has been returned or missed yet.", 9)
            return 0
        self.section("Sessions, newest first")
        fits = int((PAGE_H - MARGIN - FOOTER_H - self.get_y() - ROW_H) // ROW_H)
        shown = rows[:max(fits, 1)]
        widths = _column_widths(len(trend.scales))
        headers = ["Date", "Session", *(["Total"] + [s.label for s in trend.scales[1:]]),
                   "Result"]
        self._row(headers, widths, bold=True)
        for index, row in enumerate(shown):
            scores = [f"{score}*" if below else score
                      for score, below in zip(row.scores, row.below_cutoff)]
            session = row.session_id if len(row.session_id) <= MAX_SESSION_CHARS else (
                row.session_id[:MAX_SESSION_CHARS - 1] + "~")
            date_text = f"{row.day} {row.year}".strip()
            self._row([date_text, session, *scores, row.result], widths, shaded=index % 2 == 1,
                      colour=_result_colour(row.decision))
        return len(shown)

    def _row(self, cells: list[str], widths: list[float], bold: bool = False,
             shaded: bool = False, colour=INK) -> None:
        self.set_font("Helvetica", "B" if bold else "", TABLE_FONT)
        self.set_fill_color(244, 244, 247)
        for index, (text, width) in enumerate(zip(cells, widths)):
            last = index == len(cells) - 1
            self.set_text_color(*(colour if last and not bold else INK))
            numeric = 1 < index < len(cells) - 1
            self.cell(width, ROW_H, _fit(self, text, width - 1),
                      align="R" if numeric else "L", fill=shaded,
                      border="B" if bold else 0)
            if numeric:
                self.cell(1.5, ROW_H, "", fill=shaded, border="B" if bold else 0)
        self.ln(ROW_H)

    def footer_note(self, trend: Trend, shown: int) -> None:
        total = len(trend.points)
        parts = []
        if shown < total:
            parts.append(f"The latest {shown} of {total} sessions; the SMART trend view lists "
                         "every session.")
        if trend.total_scale.cutoff is not None:
            parts.append("* below the cutoff.")
        ranges = ", ".join(f"{s.label} {s.range_text}" for s in trend.scales)
        parts.append(f"Scales: {ranges}. Charts show the latest sessions (up to "
                     f"{MAX_POINTS}).")
        self.set_y(PAGE_H - MARGIN - FOOTER_H + 2)
        self.write_line(" ".join(parts), 7, colour=MUTED, height=3.4)


def _alert_lines(trend: Trend, facts: AlertFacts) -> list[tuple[str, str]]:
    """The box at the top: what was seen and why, in the engine's words."""
    rupture = trend.open_rupture
    lines: list[tuple[str, str]] = []
    prompt = _point(trend, facts.session_id)
    if facts.state == "repaired":
        when = _day(prompt.day) if prompt and prompt.day else "the latest session"
        lines.append(("B", f"Repaired at the session of {when}."))
    if rupture is not None:
        since = _day(rupture.since) if rupture.since else "an undated session"
        opened = "It opened at" if facts.state == "repaired" else "Open since"
        lines.append(("B", f"{opened} the session of {since}. Why it opened:"))
        lines += [("", f"- {reason}") for reason in _clip(rupture.reasons)]
    if facts.reasons and (rupture is None or facts.session_id != rupture.session_id):
        when = _day(prompt.day) if prompt and prompt.day else "the latest session"
        words = prompt.decision_words.lower() if prompt else facts.state
        lines.append(("B", f"At the session of {when} ({words}):"))
        lines += [("", f"- {reason}") for reason in _clip(facts.reasons)]
    return lines


def _clip(reasons: tuple[str, ...]) -> list[str]:
    clipped = [reason if len(reason) <= MAX_REASON_CHARS else reason[:MAX_REASON_CHARS - 3] +
               "..." for reason in reasons[:MAX_REASONS]]
    if len(reasons) > MAX_REASONS:
        clipped.append(f"and {len(reasons) - MAX_REASONS} more (in the SMART trend view)")
    return clipped


def _point(trend: Trend, session_id: str) -> TrendPoint | None:
    return next((p for p in reversed(trend.points) if p.session_id == session_id), None)


def _column_widths(scales: int) -> list[float]:
    date_w, session_w, result_w = 20.0, 36.0, 40.0
    score_w = (WIDTH - date_w - session_w - result_w) / scales - 1.5
    return [date_w, session_w, *([score_w] * scales), result_w]


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """The text, shortened with '~' until it fits the column."""
    text = safe_text(text)
    while len(text) > 1 and pdf.get_string_width(text) > width:
        text = text[:-2] + "~"
    return text


def _result_colour(decision: str | None):
    return {"rupture": RUPTURE, "unresolved": UNRESOLVED, "repaired": REPAIRED}.get(decision, INK)


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"
