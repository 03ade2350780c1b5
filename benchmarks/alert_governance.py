"""Alert governance at size (docs/alerts.md): the what-if replay of a practice's whole history,
the governance report, and the grouped statement behind the /metrics alert counts.

* The synthetic cohort of benchmarks/cohort.py (1,200 clients × 12 sessions, 10 % of surveys
  not returned) is stored as the demo practice's history (surveys and sealed responses, as the
  pipeline stores them), and `alliance ruptures what-if` runs on it as a separate process.
  The read of the history (one transaction, the answers opened after it) is timed alone too.
* EPISODES rupture episodes over PRACTICES practices, with acknowledgments (SMART view or CDS
  feedback), snoozes and escalations drawn at random, feed `alliance alerts report` and the
  /metrics statement (p50/p99 of REPEAT runs).

Both on SQLite and on PostgreSQL.

    .venv/bin/python benchmarks/alert_governance.py [--episodes 20000] [--repeat 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cohort import DEFAULT_SEED, INSTRUMENT, generate  # noqa: E402
from harness import fresh_database, run_facts  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEY = "Qm3v9TzKx7LpW2dHr8YfN4cJs6BgUa1E-tRkVo5XiZy0"
PRACTICES = 5
START = datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc)
WHAT_IF = ("--set", "rupture_sd=2.5", "--set", "repair_window=4")


def env_for(url: str, folder: str) -> dict:
    return {**os.environ, "ALLIANCE_DATABASE_URL": url, "ALLIANCE_SECRET_KEY": KEY,
            "ALLIANCE_BROKER_URL": "embedded", "ALLIANCE_VAR_DIR": folder,
            "ALLIANCE_LOG_LEVEL": "WARNING", "USER": "bench"}


def services_for(url: str, folder: str):
    from service.bootstrap import bootstrap
    from service.config import Settings
    from service.persistence.migrate import upgrade

    settings = Settings.from_env({key: value for key, value in env_for(url, folder).items()
                                  if key.startswith("ALLIANCE_")})
    services = bootstrap(settings)
    upgrade(services.engine)
    return services


def store_cohort(services) -> int:
    """The cohort as the demo practice's survey history; how many surveys."""
    from service import practices
    from service.domain import builtin_instruments, score
    from service.persistence.tables import responses, surveys

    instrument = builtin_instruments()[INSTRUMENT]
    document = practices.validate_document(json.loads(
        (ROOT / "deploy" / "demo-practice.json").read_text()))
    survey_rows, response_rows = [], []
    for client in generate(DEFAULT_SEED):
        for index, answers in enumerate(client.sessions):
            ended = START + timedelta(weeks=index)
            survey_id = str(uuid.uuid4())
            survey_rows.append({
                "id": survey_id, "practice_id": "demo", "patient_id": client.client_id,
                "session_id": f"{client.client_id}-s{index + 1:02d}", "event_id": survey_id,
                "instrument_id": INSTRUMENT, "status": "closed" if answers is None else "answered",
                "channel": "log", "session_ended_at": ended, "created_at": ended,
                "send_at": ended, "sent_at": ended})
            if answers is not None:
                scores = score(instrument, answers)
                response_rows.append({
                    "id": str(uuid.uuid4()), "survey_id": survey_id,
                    "sealed_answers": services.vault.seal(answers), "total": scores.total,
                    "subscales": dict(scores.subscales), "pomp": scores.pomp,
                    "submitted_at": ended + timedelta(hours=2)})
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=START)
        conn.execute(surveys.insert(), survey_rows)
        conn.execute(responses.insert(), response_rows)
    return len(survey_rows)


def store_episodes(services, count: int) -> int:
    """`count` episodes with random actions; how many actions."""
    from service.persistence.tables import alert_actions, rupture_episodes

    rng = random.Random(DEFAULT_SEED)
    episode_rows, action_rows = [], []
    for number in range(count):
        opened = START + timedelta(hours=rng.uniform(0, 24 * 300))
        episode_id = str(uuid.uuid4())
        repaired = rng.random() < 0.7
        episode_rows.append({
            "id": episode_id, "practice_id": f"practice-{number % PRACTICES + 1}",
            "patient_id": f"pat-{number:06d}", "status": "resolved" if repaired else "open",
            "opened_by_survey_id": str(uuid.uuid4()), "opened_at": opened,
            "closed_at": opened + timedelta(days=14) if repaired else None})

        episode = episode_rows[-1]
        if rng.random() < 0.2:
            action_rows.append(_action(episode, "snooze", "smart-view", rng.uniform(0.5, 24)))
        if rng.random() < 0.75:
            action_rows.append(_action(episode, "acknowledge",
                                       rng.choice(("smart-view", "cds-feedback")),
                                       rng.lognormvariate(2.5, 1.0)))
        elif rng.random() < 0.5:
            action_rows.append(_action(episode, "escalate", "escalation", 72))
            if repaired:
                action_rows.append(_action(episode, "complete-escalation", "escalation", 336))
    with services.engine.begin() as conn:
        conn.execute(rupture_episodes.insert(), episode_rows)
        conn.execute(alert_actions.insert(), action_rows)
    return len(action_rows)


def _action(episode: dict, action: str, source: str, after_hours: float) -> dict:
    return {"id": str(uuid.uuid4()), "practice_id": episode["practice_id"],
            "episode_id": episode["id"], "action": action, "source": source,
            "actor": "service" if source == "escalation" else "Practitioner/p1",
            "at": episode["opened_at"] + timedelta(hours=after_hours),
            "dedupe_key": str(uuid.uuid4())}


def timed_cli(url: str, folder: str, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "alliance"), *args], cwd=ROOT,
                          env=env_for(url, folder), capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"alliance {' '.join(args)} failed: {done.stderr}")
    return round(elapsed, 2), done.stdout


def scrape_cost(services, repeat: int) -> dict:
    from service.metrics import AlertCounts
    from service.persistence.queries import governance

    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        with services.engine.connect() as conn:
            rows = governance.alert_counts(conn, AlertCounts.LIMIT)
        samples.append((time.perf_counter() - started) * 1000)
    ordered = sorted(samples)
    return {"rows": len(rows), "p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 2), "n": repeat}


def history_read(services, repeat: int = 5) -> dict:
    """The what-if's transaction (the read of the practice's history; on SQLite it holds the
    write lock) and the opening of the answers after it, in seconds (median of `repeat`)."""
    from service.persistence.queries import governance

    read, opening = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        with services.engine.begin() as conn:
            histories = governance.practice_histories(conn, "demo")
        read.append(time.perf_counter() - started)
        started = time.perf_counter()
        for history in histories:
            governance.opened_history(services.vault, history)
        opening.append(time.perf_counter() - started)
    return {"transaction_s": round(statistics.median(read), 3),
            "opening_after_s": round(statistics.median(opening), 3)}


def run(url: str, folder: str, episodes: int, repeat: int) -> dict:
    services = services_for(url, folder)
    surveys = store_cohort(services)
    actions = store_episodes(services, episodes)
    what_if_seconds, what_if_output = timed_cli(url, folder, "ruptures", "what-if",
                                                "--practice", "demo", *WHAT_IF)
    report_seconds, report_output = timed_cli(url, folder, "alerts", "report")
    _, since_output = timed_cli(url, folder, "alerts", "report", "--since", "2026-10-01")
    result = {"surveys": surveys, "episodes": episodes, "actions": actions,
              "what_if_seconds": what_if_seconds, "what_if_output": what_if_output,
              "report_seconds": report_seconds, "report_output": report_output,
              "report_since_output": since_output, "history_read": history_read(services),
              "scrape": scrape_cost(services, repeat)}
    services.engine.dispose()
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    result = run_facts(" ".join(["benchmarks/alert_governance.py", *(argv or sys.argv[1:])]))
    with tempfile.TemporaryDirectory() as folder:
        result["sqlite"] = run(f"sqlite:///{folder}/bench.db", folder, args.episodes, args.repeat)
    with tempfile.TemporaryDirectory() as folder, fresh_database() as url:
        result["postgresql"] = run(url, folder, args.episodes, args.repeat)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
