"""Render time of the SMART trend view for a client with 100 sessions (issue 11).

On a throw-away PostgreSQL database (and on SQLite, the embedded default) it stores one client
with 100 assessed sessions (a rupture, repairs and surveys not returned among them) beside 50
other clients with 20 sessions each, opens a SMART session for that client, and times
`GET /smart/bench/view` and `/view.json` in-process (Flask test client: the query, the trend
and band computation, the SVG and table rendering; no network), plus the three steps alone.

    .venv/bin/python benchmarks/trend_view.py [--requests 300] [--database postgres|sqlite|both]

Figures go to stdout and var/bench/trend-view-*/result.json; docs/performance.md has a run.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from harness import fresh_database, run_folder, save_result  # noqa: E402

PRACTICE_ID = "bench"
PATIENT = "pat-bench"
SESSIONS = 100
TOKEN = "bench-session-cookie-value-0123456789abcdef"
PRACTICE = {
    "id": PRACTICE_ID, "name": "Benchmark Practice", "timezone": "America/Chicago",
    "webhook_secrets": ["whsec_YmVuY2htYXJrLXNlY3JldC1vZi0zMi1ieXRlcyEh"],
    "ehr": {"type": "fhir-r4", "base_url": "http://127.0.0.1:9/fhir", "auth": {"type": "none"}},
    "delivery": {"channels": ["log"]},
    "network": {"allow_private": True, "reason": "benchmark: no EHR is called"},
    "smart_app": {"client_id": "bench", "client_secret": "bench-secret-0123",
                  "issuers": ["https://ehr.example.org/fhir"]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database", choices=["postgres", "sqlite", "both"], default="both")
    args = parser.parse_args()
    result = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()}, {platform.python_version()}",
              "sessions": SESSIONS, "requests": args.requests}
    kinds = ["postgres", "sqlite"] if args.database == "both" else [args.database]
    for kind in kinds:
        with database(kind) as url:
            result[kind] = measure(url, args.requests)
    folder = run_folder("trend-view")
    save_result(result, folder)
    import json

    print(json.dumps(result, indent=2))


@contextlib.contextmanager
def database(kind: str):
    if kind == "postgres":
        with fresh_database() as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"


def measure(database_url: str, count: int) -> dict:
    from service.config import Settings
    from service.web import create_app

    with tempfile.TemporaryDirectory() as var:
        settings = Settings.from_env({
            "ALLIANCE_DATABASE_URL": database_url, "ALLIANCE_VAR_DIR": var,
            "ALLIANCE_SECRET_KEY": "Bn7vK2xQ9pLmW4tRz8YcH3dJs6FgUa1E-oNkVq5XiTy0",
            "ALLIANCE_PUBLIC_URL": "https://bench.test", "ALLIANCE_LOG_LEVEL": "WARNING"})
        app = create_app(settings)
        services = app.extensions["alliance"]
        from service.persistence.migrate import upgrade

        upgrade(services.engine)
        seed(services)
        client = app.test_client()
        client.set_cookie("alliance_smart_session", TOKEN, domain="bench.test", path="/smart/")
        figures = {}
        for path in ("view", "view.json"):
            figures[path] = timed_requests(client, f"https://bench.test/smart/{PRACTICE_ID}/{path}",
                                           count)
        figures["steps"] = timed_steps(app, services, count)
        services.engine.dispose()
        return figures


def timed_requests(client, url: str, count: int) -> dict:
    for _ in range(20):
        assert client.get(url).status_code == 200
    durations, size = [], 0
    for _ in range(count):
        started = time.perf_counter()
        answer = client.get(url)
        durations.append((time.perf_counter() - started) * 1000)
        size = len(answer.data)
        assert answer.status_code == 200
    return {**summary(durations), "bytes": size}


def timed_steps(app, services, count: int) -> dict:
    """Query, trend (bands of the charted sessions), and rendering alone: where the time goes."""
    from flask import render_template

    from service import practices
    from service.clinician.chart import MAX_POINTS, build_charts
    from service.clinician.table import table_rows
    from service.clinician.trend import build_trend
    from service.domain.ruptures import RuptureRules
    from service.persistence.queries import trend as queries

    with services.engine.connect() as conn:
        practice = practices.load(conn, services.box, PRACTICE_ID)
    instrument = services.instruments()["brief-alliance-check"]
    steps = {"query": [], "trend": [], "render": []}
    for _ in range(count):
        started = time.perf_counter()
        with services.engine.connect() as conn:
            rows = queries.client_surveys(conn, PRACTICE_ID, PATIENT)
            episode = queries.open_episode(conn, PRACTICE_ID, PATIENT)
        queried = time.perf_counter()
        trend = build_trend(PATIENT, rows, instrument, RuptureRules(), practice.timezone, episode,
                            bands_for_last=MAX_POINTS)
        built = time.perf_counter()
        with app.test_request_context("/smart/bench/view"):
            render_template("smart_view.html", trend=trend, session=None,
                            charts=build_charts(trend), rows=table_rows(trend))
        done = time.perf_counter()
        for name, (a, b) in {"query": (started, queried), "trend": (queried, built),
                             "render": (built, done)}.items():
            steps[name].append((b - a) * 1000)
    return {name: summary(values) for name, values in steps.items()}


def summary(durations: list[float]) -> dict:
    ordered = sorted(durations)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)

    return {"p50_ms": round(statistics.median(ordered), 2), "p90_ms": at(0.90),
            "p99_ms": at(0.99), "max_ms": round(ordered[-1], 2)}


def seed(services) -> None:
    """One client with SESSIONS assessed sessions, beside 50 clients of 20 sessions each."""
    from service import practices
    from service.persistence.tables import smart_sessions

    now = datetime.now(timezone.utc)
    with services.engine.begin() as conn:
        practices.save(conn, services.box, practices.validate_document(PRACTICE), now=now)
        store_history(conn, services.vault, PATIENT, SESSIONS, now)
        for number in range(50):
            store_history(conn, services.vault, f"pat-other-{number}", 20, now)
        from service.persistence.queries.smart_sessions import digest

        conn.execute(smart_sessions.insert().values(
            session_hash=digest(TOKEN), practice_id=PRACTICE_ID, patient_id=PATIENT,
            fhir_user="Practitioner/bench", iss="https://ehr.example.org/fhir", created_at=now,
            expires_at=now + timedelta(hours=8)))


def store_history(conn, vault, patient: str, count: int, now: datetime) -> None:
    """Rows as the write-back stores them (answers sealed with the client-data key),
    decisions from the real rupture engine."""
    from service.domain import instrument_catalogue
    from service.domain.ruptures import SessionObservation, assess_series
    from service.domain.scoring import score
    from service.persistence.tables import assessments, responses, rupture_episodes, surveys

    instrument = instrument_catalogue()["brief-alliance-check"]
    answers = [pattern(i) for i in range(count)]
    start = now - timedelta(weeks=count)
    observations = [SessionObservation(f"{patient}-{i}", start + timedelta(weeks=i), a)
                    for i, a in enumerate(answers)]
    decisions = assess_series(observations, instrument)
    episode = None
    for i, (answer, decision) in enumerate(zip(answers, decisions)):
        survey_id, when = str(uuid.uuid4()), start + timedelta(weeks=i)
        conn.execute(surveys.insert().values(
            id=survey_id, practice_id=PRACTICE_ID, patient_id=patient,
            session_id=f"{patient}-{i}", event_id=str(uuid.uuid4()),
            instrument_id=instrument.id, status="answered" if answer else "expired",
            channel="log", session_ended_at=when, created_at=when, send_at=when, sent_at=when,
            expires_at=when + timedelta(hours=72), answered_at=when if answer else None))
        if answer:
            scores = score(instrument, answer)
            conn.execute(responses.insert().values(
                id=str(uuid.uuid4()), survey_id=survey_id, sealed_answers=vault.seal(answer),
                total=scores.total,
                subscales=scores.subscales, pomp=scores.pomp, submitted_at=when))
        episode = track(conn, episode, patient, survey_id, decision.decision, when)
        conn.execute(assessments.insert().values(
            survey_id=survey_id, decision=decision.decision, reasons=list(decision.reasons),
            flag_text=decision.flag_text, interpretation=decision.interpretation,
            episode_id=episode if decision.decision in ("rupture", "unresolved", "repaired")
            else None, assessed_at=when))
        if decision.decision == "repaired":
            conn.execute(rupture_episodes.update().where(rupture_episodes.c.id == episode)
                         .values(status="resolved", closed_by_survey_id=survey_id, closed_at=when))
            episode = None


def track(conn, episode, patient, survey_id, decision, when):
    from service.persistence.tables import rupture_episodes

    if decision in ("rupture", "unresolved") and episode is None:
        episode = str(uuid.uuid4())
        conn.execute(rupture_episodes.insert().values(
            id=episode, practice_id=PRACTICE_ID, patient_id=patient, status="open",
            opened_by_survey_id=survey_id, opened_at=when))
    return episode


def pattern(i: int) -> dict | None:
    """Mostly steady, a dip every 17 sessions, a survey not returned every 11."""
    if i % 11 == 10:
        return None
    if i % 17 == 16:
        return {"bond": 4, "goals": 5, "approach": 4, "overall": 4, "tension": True,
                "tension_intensity": 4}
    wobble = (i * 7) % 3
    return {"bond": 9 + (wobble == 0), "goals": 9, "approach": 8 + (wobble == 1),
            "overall": 9}


if __name__ == "__main__":
    main()
