"""The alert document's PDF (alerts.write document): made from a trend the real rupture engine
assessed, then opened with pypdf and read back: one page, the reasons, the dates and the
scores are there, and nothing a clinical document should not carry."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from alert_history import REPAIR_STORY, RUPTURE_STORY, replay
from pypdf import PdfReader
from trend_history import DIP, FINE, GOOD

from service.clinician.trend_pdf import AlertFacts, render_trend_pdf, safe_text

CREATED = datetime(2026, 5, 1, 14, 3, tzinfo=UTC)


def facts(state: str, rows, index: int, text: str = "Alliance rupture") -> AlertFacts:
    row = rows[index]
    return AlertFacts(state, text, row.session_id, row.reasons, CREATED, "America/Chicago")


def read(pdf: bytes) -> tuple[int, str]:
    """Pages and text, whitespace folded (pypdf breaks lines where the PDF wraps them)."""
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(page.extract_text() for page in reader.pages)
    return len(reader.pages), " ".join(text.split())


def test_the_rupture_document_shows_why_when_and_the_scores():
    trend, rows = replay(RUPTURE_STORY)
    rupture = next(row for row in rows if row.decision == "rupture")

    pdf = render_trend_pdf(trend, facts("open", rows, rows.index(rupture),
                                        "Alliance rupture: the alliance total fell"))
    pages, text = read(pdf)

    assert pdf.startswith(b"%PDF-") and pages == 1
    assert text.startswith("Therapeutic alliance report Alliance rupture Patient pat-17")
    assert "Open since the session of 6 Apr 2026" in text
    for reason in rupture.reasons[:4]:  # the reasons shown in full (the rest are counted)
        assert reason in text
    assert f"and {len(rupture.reasons) - 4} more" in text
    # the table: each session's date and scores, newest first, the rupture's total starred
    assert "6 Apr 2026 enc-6 19* 4 6 5 Rupture" in text
    assert "2 Mar 2026 enc-1 38 10 9 9 Steady" in text
    assert text.index("13 Apr 2026") < text.index("2 Mar 2026 enc-1")
    assert "Patient pat-17" in text and "7 sessions" in text
    assert "Cutoff (36)" in text and "cutoff 36" in text  # legend and the line's label


def test_the_repair_document_says_what_was_repaired_and_how():
    trend, rows = replay(REPAIR_STORY)
    repaired = next(index for index, row in enumerate(rows) if row.decision == "repaired")

    pages, text = read(render_trend_pdf(trend, facts("repaired", rows, repaired,
                                                     "Alliance rupture: the alliance total fell")))

    assert pages == 1
    assert "Alliance rupture repaired" in text
    assert "Repaired at the session of 20 Apr 2026." in text
    assert "It opened at the session of 6 Apr 2026" in text
    assert "At the session of 20 Apr 2026 (repaired)" in text
    assert "looks repaired" in text
    assert "20 Apr 2026 enc-8 37 9 9 10 Repaired" in text


def test_fifty_sessions_still_fit_one_page_with_the_newest_rows():
    trend, rows = replay([GOOD, FINE] * 24 + [DIP, None])

    pages, text = read(render_trend_pdf(trend, facts("open", rows, 48)))

    assert pages == 1
    assert "50 sessions" in text
    shown = int(re.search(r"The latest (\d+) of 50 sessions", text).group(1))
    assert 15 <= shown < 50
    assert "enc-50" in text and "enc-49" in text  # the newest rows are the ones kept
    assert f"enc-{50 - shown + 1} " in text and f"enc-{50 - shown} " not in text


def test_the_same_trend_and_facts_make_the_same_bytes():
    trend, rows = replay(RUPTURE_STORY)
    made = {render_trend_pdf(trend, facts("open", rows, 5)) for _ in range(2)}

    assert len(made) == 1


@pytest.mark.parametrize(("given", "printed"), [
    ("bond fell — from 9 to 5 – “a lot”", "bond fell — from 9 to 5 – “a lot”"),  # cp1252 has them
    ("σ ≥ 1", "? ? 1"),  # outside the standard fonts: a question mark, never a failure
])
def test_text_outside_the_standard_fonts_prints_as_a_question_mark(given, printed):
    assert safe_text(given) == printed
    trend, rows = replay(RUPTURE_STORY)
    later = replace(facts("open", rows, 6), reasons=(given,))  # the missed survey's reasons
    _, text = read(render_trend_pdf(trend, later))
    assert printed in text


def test_the_heading_is_what_the_alert_is_and_the_reasons_are_listed_below():
    long_text = "Unresolved alliance rupture: " + "; ".join(["bond fell from 10 to 2"] * 8)
    trend, rows = replay(RUPTURE_STORY)

    _, text = read(render_trend_pdf(trend, facts("open", rows, 5, long_text)))

    assert facts("open", rows, 5, long_text).title == "Unresolved alliance rupture"
    assert text.startswith("Therapeutic alliance report Unresolved alliance rupture Patient")
    assert "bond fell from 10 to 2" not in text.split("Patient")[0]
