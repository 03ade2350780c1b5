"""The CDS Hooks `patient-view` call (CONTRACT §8.1: p99 < 100 ms) against a bare Flask app
served by the same gunicorn configuration, in the same run, on PostgreSQL.

Every request carries its own signed JWT (a fresh `jti`, so every request passes the whole check
and stores its `jti`: none is a replay), made beforehand with the client's private key; wrk
cycles through them with the Lua script of intake_vs_flask.py (threads take disjoint slices, so
no token is sent twice). The practice trusts the client's key inline; 1,000 clients have a
stored card state, a quarter of them an open rupture. The bare app answers `{"cards": []}`.

    .venv/bin/python benchmarks/cds_vs_flask.py [--connections 16] [--duration 15] [--alg ES384]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    PRACTICE_ID,
    MemorySampler,
    free_port,
    fresh_database,
    practice_document,
    prepare_service,
    run_facts,
    run_folder,
    save_result,
    service_env,
    start_web,
)
from intake_vs_flask import LUA, run_wrk  # noqa: E402

from service.clinician import cds_client  # noqa: E402

ISS = "https://ehr.bench.test/fhir"
SERVICE = "alliance-patient-view"
PATH = f"/cds/{PRACTICE_ID}/cds-services/{SERVICE}"
HELLO_APP = "cds_vs_flask:hello_app()"
CLIENTS = 1000


def hello_app():
    """The bare Flask app: the same route, a fixed answer, nothing else."""
    from flask import Flask, jsonify

    app = Flask("hello")

    @app.post("/cds/<practice_id>/cds-services/<service_id>")
    def hello(practice_id: str, service_id: str):
        return jsonify(cards=[])

    return app


def seed_states(database_url: str) -> None:
    """Stored card state for CLIENTS clients: every fourth with an open rupture."""
    from sqlalchemy import create_engine

    from service.clinician.cards import rupture_card_uuid
    from service.persistence.tables import clinician_states

    now = datetime.now(timezone.utc)
    rows = []
    for index in range(CLIENTS):
        row = {"practice_id": PRACTICE_ID, "patient_id": f"pat-{index:05d}",
               "instrument_id": "brief-alliance-check", "returned_count": 4,
               "last_total": 30.0 + index % 10, "previous_total": 33.0,
               "last_session_at": now - timedelta(days=2), "last_decision": "none",
               "last_reasons": [], "updated_at": now, "episode_id": None, "stage": None,
               "stage_since": None, "card_uuid": None, "stage_session_at": None,
               "opened_session_at": None, "stage_reasons": None}
        if index % 4 == 0:
            episode = str(uuid.uuid4())
            row.update(episode_id=episode, stage="rupture", stage_since=now - timedelta(days=1),
                       card_uuid=rupture_card_uuid(PRACTICE_ID, episode, "rupture"),
                       stage_session_at=now - timedelta(days=2),
                       opened_session_at=now - timedelta(days=2),
                       last_decision="rupture",
                       stage_reasons=["the alliance total was 9 of 40, near the bottom of the "
                                      "scale", "the client reported tension with the therapist "
                                      "(strength 4 of 5)"])
        rows.append(row)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(clinician_states.insert(), rows)
    engine.dispose()


def generate_requests(count: int, key: dict, base_url: str, path: Path) -> float:
    """Write `count` signed hook calls, each with its own jti, as a Lua table; seconds taken."""
    started = time.monotonic()
    lines = ["requests = {}",
             "local function add(t) for _, r in ipairs(t) do requests[#requests + 1] = r end end"]
    for index in range(count):
        if index % 2000 == 0:
            lines.append("(function() add({" if index == 0 else "}) end)();\n(function() add({")
        call = cds_client.hook_request(base_url, PRACTICE_ID, f"pat-{index % CLIENTS:05d}", key,
                                       ISS, lifetime=timedelta(minutes=15))
        headers = {**call.headers, "Content-Type": "application/json"}
        lua_headers = ", ".join(f'["{name}"] = "{value}"' for name, value in headers.items())
        lines.append(f"{{{{{lua_headers}}}, [==[{json.dumps(call.body)}]==]}},")
    lines.append("}) end)()")
    path.write_text("\n".join(lines))
    return time.monotonic() - started


def stored_token_ids(database_url: str) -> int:
    from sqlalchemy import create_engine, func, select

    from service.persistence.tables import cds_token_ids

    engine = create_engine(database_url)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(cds_token_ids)).scalar_one()
    engine.dispose()
    return count


def run(connections: int, duration: int, expected_rate: int, alg: str) -> dict:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    work = run_folder("cds")
    script = work / "cycle.lua"
    script.write_text(LUA % {"path": PATH})
    threads, key = 2, cds_client.generate_private_jwk(alg, kid="bench")
    document = {**practice_document(1, 2), "cds_hooks": {
        "clients": [{"iss": ISS, "jwks": cds_client.public_key_set(key)}], "info_cards": True}}
    results = {}
    with fresh_database() as database_url:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        env = service_env(work / "var", database_url, base_url,
                          PYTHONPATH=str(Path(__file__).resolve().parent))
        prepare_service(env, document, work)
        seed_states(database_url)
        for name, app in (("bare_flask", HELLO_APP), ("cds_hook", "service.app:create_app()")):
            count = int(expected_rate * duration * 1.5) if name == "cds_hook" else 5_000
            requests_file = work / f"{name}-requests.lua"
            signing_s = generate_requests(count, key, base_url, requests_file)
            web = start_web(env, port, work / f"{name}.log", app=app)
            try:
                with MemorySampler({"web": [web]}) as memory:
                    result = run_wrk(base_url, script, requests_file, connections, threads,
                                     duration)
                result.update(generated=count, signing_s=round(signing_s, 1),
                              peak_rss_mb=memory.summary()["web"], cpu_s=memory.cpu_share())
                if name == "cds_hook" and result["requests"] > count:
                    result["warning"] = "more requests than tokens: the repeats were refused (jti)"
            finally:
                web.stop()
            results[name] = result
            time.sleep(1)
        results["cds_hook"]["jti_stored"] = stored_token_ids(database_url)
    return {"connections": connections, "duration_s": duration, "wrk_threads": threads,
            "alg": alg, "clients_with_state": CLIENTS, **results, "logs": str(work)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--alg", choices=["ES384", "RS384"], default="ES384")
    parser.add_argument("--expected-rate", type=int, default=600,
                        help="hook calls/s to sign distinct tokens for (1.5× margin)")
    args = parser.parse_args(argv)
    result = {**run_facts(" ".join(["benchmarks/cds_vs_flask.py", *(argv or sys.argv[1:])])),
              **run(args.connections, args.duration, args.expected_rate, args.alg)}
    print(json.dumps(result, indent=2))
    save_result(result, Path(result["logs"]))
    return result


if __name__ == "__main__":
    main()
