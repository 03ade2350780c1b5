"""Render time and size of the alert document (alerts.write document, CONTRACT §9.2): the
one-page PDF of the trend for a client with 50 sessions (issue 13).

The history is replayed through the real rupture engine (ruptures, repairs, watches, surveys
not returned), then, in-process and without a database or network, it times building the trend
(scores, decisions, the usual bands of the 30 charted sessions) and rendering the PDF with
fpdf2, and reports the PDF's size and its size as the base64 `attachment.data` the
DocumentReference carries. The query that precedes it in the write-back job is the trend view's
(benchmarks/trend_view.py measures it).

    .venv/bin/python benchmarks/alert_document.py [--renders 200] [--sessions 50]

Figures go to stdout and var/bench/alert-document-*/result.json; docs/performance.md has a run.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import platform
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from harness import run_folder, save_result  # noqa: E402

from service.clinician.chart import MAX_POINTS  # noqa: E402
from service.clinician.trend import build_trend  # noqa: E402
from service.clinician.trend_pdf import AlertFacts, render_trend_pdf  # noqa: E402
from service.domain import instrument_catalogue  # noqa: E402
from service.domain.ruptures import RuptureRules, SessionObservation, assess_series  # noqa: E402
from service.persistence.queries.trend import EpisodeRow, SurveyRow  # noqa: E402

INSTRUMENT = instrument_catalogue()["brief-alliance-check"]
START = datetime(2026, 1, 5, 17, 0, tzinfo=timezone.utc)
DIP = {"bond": 3, "goals": 5, "approach": 4, "overall": 3, "tension": True,
       "tension_intensity": 4}


def history(sessions: int) -> list[dict | None]:
    """Mostly steady answers with some noise, a rupture every 12 sessions, and about one survey
    in ten not returned; the last session ruptures (the document is written for it)."""
    rng = random.Random(13)
    answers: list[dict | None] = []
    for number in range(1, sessions + 1):
        if number % 12 == 0 or number == sessions:
            answers.append(DIP)
        elif rng.random() < 0.1:
            answers.append(None)
        else:
            answers.append({item: rng.choice((8, 9, 9, 10, 10))
                            for item in ("bond", "goals", "approach", "overall")})
    return answers


def stored_rows(answers: list[dict | None]) -> tuple[list[SurveyRow], EpisodeRow, SurveyRow]:
    """The rows the trend query would return, assessed by the engine; the open episode."""
    observations = [SessionObservation(f"enc-{n}", START + timedelta(weeks=n - 1), answer)
                    for n, answer in enumerate(answers, start=1)]
    rows = []
    for number, assessment in enumerate(assess_series(observations, INSTRUMENT), start=1):
        when = START + timedelta(weeks=number - 1)
        scores = assessment.scores
        rows.append(SurveyRow(
            f"s{number}", f"enc-{number}", INSTRUMENT.id,
            "answered" if scores else "expired", when, when,
            None if scores is None else scores.total,
            None if scores is None else dict(scores.subscales), assessment.decision,
            tuple(assessment.reasons), "episode" if number == len(answers) else None))
    last = rows[-1]
    return rows, EpisodeRow("episode", last.session_ended_at, last.survey_id), last


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=50)
    args = parser.parse_args()
    rows, episode, last = stored_rows(history(args.sessions))
    decisions = {kind: sum(1 for row in rows if row.decision == kind)
                 for kind in ("rupture", "unresolved", "repaired", "watch", "check-in")}
    decisions["not returned"] = sum(1 for row in rows if row.total is None)
    trend_ms, pdf_ms, sizes = [], [], set()
    for index in range(args.renders + 10):
        started = time.perf_counter()
        trend = build_trend("pat-bench", rows, INSTRUMENT, RuptureRules(), "America/Chicago",
                            episode, bands_for_last=MAX_POINTS)
        built = time.perf_counter()
        facts = AlertFacts("open", "Alliance rupture: the alliance total fell", last.session_id,
                           last.reasons, datetime(2026, 12, 21, 17, 0, tzinfo=timezone.utc),
                           "America/Chicago")
        pdf = render_trend_pdf(trend, facts)
        done = time.perf_counter()
        if index >= 10:  # the first ones warm the caches (fonts, regular expressions)
            trend_ms.append((built - started) * 1000)
            pdf_ms.append((done - built) * 1000)
            sizes.add(len(pdf))
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}",
        "sessions": args.sessions, "renders": args.renders, "decisions": decisions,
        "pdf_bytes": sorted(sizes), "attachment_data_chars": len(base64.b64encode(pdf)),
        "pages": _pages(pdf),
    }
    for name, values in (("trend", trend_ms), ("pdf", pdf_ms),
                         ("both", [a + b for a, b in zip(trend_ms, pdf_ms)])):
        result[name] = {"p50_ms": round(statistics.median(values), 1),
                        "p90_ms": round(percentile(values, 0.9), 1),
                        "p99_ms": round(percentile(values, 0.99), 1),
                        "max_ms": round(max(values), 1)}
    folder = run_folder("alert-document")
    save_result(result, folder)
    (folder / "example.pdf").write_bytes(pdf)
    for key, value in result.items():
        print(f"{key}: {value}")
    print(f"written to {folder}")


def _pages(pdf: bytes) -> int | None:
    """Pages, read back with pypdf when the test dependencies are installed."""
    try:
        from pypdf import PdfReader
    except ImportError:
        return None
    return len(PdfReader(io.BytesIO(pdf)).pages)


if __name__ == "__main__":
    main()
