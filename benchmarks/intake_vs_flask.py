"""Intake throughput and latency of `POST /webhooks/{practice_id}/events` against a bare Flask
app served by the same gunicorn configuration, in the same run, on PostgreSQL.

The load comes from wrk (Debian package `wrk`), a separate process: a Lua script cycles through
requests generated beforehand, each with its own webhook-id and session_id and signed moments
before the run (well inside the 5-minute tolerance). wrk's threads take disjoint slices of the
list, so no request is sent twice; the script counts the answers by status, and a run that
sent a request twice or got anything but 202 says so. The bare app answers the same requests
with a fixed 202 JSON body.

    .venv/bin/python benchmarks/intake_vs_flask.py [--connections 16] [--duration 15]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    PRACTICE_ID,
    WEBHOOK_SECRET,
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

from service.demo import session_completed, signed_event  # noqa: E402

PATH = f"/webhooks/{PRACTICE_ID}/events"
HELLO_APP = "intake_vs_flask:hello_app()"

LUA = r"""
-- Cycles through pre-signed requests; thread i sends requests i, i+T, i+2T, … (T threads).
local counter = 0
function setup(thread)
  thread:set("first", counter)
  counter = counter + 1
end

function init(args)
  dofile(args[1])        -- defines `requests`: a list of {headers, body}
  threads = tonumber(args[2])
  index = first + 1
end

function request()
  if index > #requests then
    index = ((index - 1) %% #requests) + 1   -- past the end: repeats (the report says so)
  end
  local r = requests[index]
  index = index + threads
  return wrk.format("POST", "%(path)s", r[1], r[2])
end

function done(summary, latency, requests_)
  io.write(string.format("RESULT p50_us=%%d p90_us=%%d p99_us=%%d max_us=%%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def hello_app():
    """The bare Flask app: the same route, a fixed answer, nothing else."""
    from flask import Flask, jsonify

    app = Flask("hello")

    @app.post("/webhooks/<practice_id>/events")
    def hello(practice_id: str):
        return jsonify(status="accepted", event_id="hello"), 202

    return app


def generate_requests(count: int, run_id: str, path: Path) -> None:
    """Write `count` distinct signed requests as a Lua table wrk can load."""
    # Lua allows at most 65,536 constants per function: each chunk of requests gets its own.
    lines = ["requests = {}", "local function add(t) for _, r in ipairs(t) do requests[#requests + 1] = r end end"]
    for index in range(count):
        if index % 2000 == 0:
            lines.append("(function() add({" if index == 0 else "}) end)();\n(function() add({")
        event = session_completed(f"intake-{run_id}-{index}", f"pat-{run_id}-{index % 5000}",
                                  phone=f"+1555{index % 10_000_000:07d}")
        body, headers = signed_event(WEBHOOK_SECRET, event, msg_id=f"msg_{run_id}_{index}")
        lua_headers = ", ".join(f'["{name}"] = "{value}"' for name, value in headers.items())
        lines.append(f"{{{{{lua_headers}}}, [==[{body.decode()}]==]}},")
    lines.append("}) end)()")
    path.write_text("\n".join(lines))


def run_wrk(url: str, script: Path, requests_file: Path, connections: int, threads: int,
            duration: int) -> dict:
    """One wrk run; requests per second, latency percentiles, socket errors."""
    done = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--timeout", "10s",
         "-s", str(script), url, "--", str(requests_file), str(threads)],
        capture_output=True, text=True, timeout=duration + 120)
    output = done.stdout
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr}")
    result = dict(re.findall(r"(p\d+_us|max_us)=(\d+)", output))
    requests_done = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "requests": requests_done,
        "rate_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": int(result["p50_us"]) / 1000, "p90_ms": int(result["p90_us"]) / 1000,
        "p99_ms": int(result["p99_us"]) / 1000, "max_ms": int(result["max_us"]) / 1000,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else "none",
    }


def stored_events(database_url: str) -> int:
    from sqlalchemy import create_engine, func, select

    from service.persistence.tables import outbox, webhook_events

    engine = create_engine(database_url)
    with engine.connect() as conn:
        events = conn.execute(select(func.count()).select_from(webhook_events)).scalar_one()
        jobs = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    engine.dispose()
    if events != jobs:
        raise AssertionError(f"{events} events stored but {jobs} outbox jobs")
    return events


def run(connections: int, duration: int, expected_rate: int) -> dict:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    work = run_folder("intake")
    script = work / "cycle.lua"
    script.write_text(LUA % {"path": PATH})
    threads = 2
    results = {}
    with fresh_database() as database_url:
        port = free_port()
        env = service_env(work / "var", database_url, f"http://127.0.0.1:{port}",
                          PYTHONPATH=str(Path(__file__).resolve().parent))
        prepare_service(env, practice_document(1, 2), work)
        for name, app in (("bare_flask", HELLO_APP), ("intake", "service.app:create_app()")):
            # Enough distinct requests for the intake at the expected rate, with a margin; the
            # bare app may see repeats (it stores nothing, so repeats cost it nothing more).
            count = expected_rate * duration * 2 if name == "intake" else 20_000
            requests_file = work / f"{name}-requests.lua"
            generate_requests(count, uuid.uuid4().hex[:8], requests_file)
            web = start_web(env, port, work / f"{name}.log", app=app)
            try:
                with MemorySampler({"web": [web]}) as memory:
                    result = run_wrk(f"http://127.0.0.1:{port}", script, requests_file,
                                     connections, threads, duration)
                result["generated"] = count
                result["peak_rss_mb"] = memory.summary()["web"]
                result["cpu_s"] = memory.cpu_share()
                if name == "intake" and result["requests"] > count:
                    result["warning"] = "more requests than generated: some were repeats"
            finally:
                web.stop()
            results[name] = result
            time.sleep(1)
        results["intake"]["events_stored"] = stored_events(database_url)
    ratio = results["intake"]["rate_per_s"] / results["bare_flask"]["rate_per_s"]
    return {"connections": connections, "duration_s": duration, "wrk_threads": threads,
            "ratio": round(ratio, 3), **results, "logs": str(work)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--expected-rate", type=int, default=1500,
                        help="intake requests/s to generate distinct requests for (2× margin)")
    args = parser.parse_args(argv)
    result = {**run_facts(" ".join(["benchmarks/intake_vs_flask.py", *(argv or sys.argv[1:])])),
              **run(args.connections, args.duration, args.expected_rate)}
    print(json.dumps(result, indent=2))
    save_result(result, Path(result["logs"]))
    return result


if __name__ == "__main__":
    main()
