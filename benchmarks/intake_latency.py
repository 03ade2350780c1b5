"""Latency of `POST /webhooks/{practice_id}/events` as an EHR sees it (target: p99 < 50 ms).

Starts the web process in its own process (gunicorn or `alliance serve`) on a fresh database,
applies a benchmark practice, then sends distinct signed `session.completed` events one after
another from this process and prints p50 / p90 / p99 / max of the round trip.

    .venv/bin/python benchmarks/intake_latency.py                      # gunicorn on SQLite
    .venv/bin/python benchmarks/intake_latency.py --server serve       # alliance serve (web + workers)
    .venv/bin/python benchmarks/intake_latency.py --server serve --rate 20
    .venv/bin/python benchmarks/intake_latency.py --database postgres  # needs ALLIANCE_TEST_POSTGRES_URL
    .venv/bin/python benchmarks/intake_latency.py --url http://host:8000 --practice ID --secret whsec_…

Not a test: figures depend on the machine. Results go into docs/intake.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from harness import fresh_database  # noqa: E402

from service.demo import session_completed, signed_event  # noqa: E402

SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1vZi0zMi1ieXRlcyEh"
PRACTICE = {
    "id": "bench", "name": "Benchmark Practice", "timezone": "UTC", "webhook_secrets": [SECRET],
    "ehr": {"type": "fhir-r4", "base_url": "http://127.0.0.1:9/fhir", "auth": {"type": "none"}},
    # Nothing is delivered in this benchmark (the `log` channel is the local demo's only):
    # sends go to a closed loopback port and fail fast.
    "delivery": {"channels": ["sms"], "sms": {"account_sid": "AC1", "auth_token": "bench",
                                              "from": "+15550001111",
                                              "api_base": "http://127.0.0.1:9"}},
    "network": {"allow_private": True, "reason": "benchmark: nothing listens on 127.0.0.1:9"},
}


def main() -> None:
    args = _arguments()
    if args.url:
        latencies = run(args.url, args.practice, args.secret, args.requests, args.warmup, args.rate)
        report(latencies, f"existing server {args.url}")
        return
    with database(args.database) as database_url, \
            server(args.server, database_url, args.workers, args.no_workers) as url:
        latencies = run(url, PRACTICE["id"], SECRET, args.requests, args.warmup, args.rate)
    setup = f"{args.server}{' --no-workers' if args.no_workers else ''} on {args.database}"
    report(latencies, f"{setup}, {f'{args.rate:g} requests/s' if args.rate else 'back to back'}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests")
    parser.add_argument("--warmup", type=int, default=100, help="requests sent before measuring")
    parser.add_argument("--server", choices=("gunicorn", "serve"), default="gunicorn")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rate", type=float, default=0,
                        help="requests per second (0: back to back, the worst case)")
    parser.add_argument("--no-workers", action="store_true",
                        help="with --server serve: web only, no in-process workers")
    parser.add_argument("--url", help="benchmark a server that is already running instead")
    parser.add_argument("--practice", default=PRACTICE["id"], help="with --url: the practice id")
    parser.add_argument("--secret", default=SECRET, help="with --url: one of its webhook secrets")
    return parser.parse_args()


def run(base_url: str, practice_id: str, secret: str, count: int, warmup: int,
        rate: float = 0) -> list[float]:
    """Send warmup + count distinct events; the round-trip milliseconds of the measured ones."""
    url = f"{base_url.rstrip('/')}/webhooks/{practice_id}/events"
    batch = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    interval = 1 / rate if rate else 0
    next_at = time.perf_counter()
    with requests.Session() as session:
        for number in range(warmup + count):
            next_at += interval

            event = session_completed(f"bench-{batch}-{number}", f"client-{number % 97}",
                                      phone="+15550000000")
            body, headers = signed_event(secret, event)
            started = time.perf_counter()
            answer = session.post(url, data=body, headers=headers, timeout=10)
            elapsed = (time.perf_counter() - started) * 1000
            if answer.status_code != 202:
                raise SystemExit(f"request {number} answered {answer.status_code}: {answer.text[:200]}")
            if number >= warmup:
                latencies.append(elapsed)
            time.sleep(max(0.0, next_at - time.perf_counter()))  # pacing only; not part of the figure
    return latencies


def report(latencies: list[float], setup: str) -> None:
    ordered = sorted(latencies)

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(p / 100 * len(ordered))) - 1)]

    figures = {"p50": percentile(50), "p90": percentile(90), "p99": percentile(99), "max": ordered[-1],
               "mean": statistics.fmean(ordered)}
    print(json.dumps({
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "setup": setup, "requests": len(ordered),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
                   f"Python {platform.python_version()}",
        "ms": {name: round(value, 2) for name, value in figures.items()},
        "p99_under_50ms": figures["p99"] < 50,
    }, indent=2))


@contextmanager
def database(kind: str):
    """A fresh, migrated database URL, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="alliance-bench-") as folder:
            yield f"sqlite:///{folder}/alliance.db"
        return
    with fresh_database() as url:  # benchmarks/harness.py: a throw-away PostgreSQL database
        yield url


@contextmanager
def server(kind: str, database_url: str, workers: int, no_workers: bool = False):
    """Migrate, apply the benchmark practice, start the web process; stop it afterwards."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="alliance-bench-var-") as var_dir:
        env = {**os.environ, "ALLIANCE_DATABASE_URL": database_url, "ALLIANCE_VAR_DIR": var_dir,
               "ALLIANCE_SECRET_KEY": "ZrP4k8WqT1xNc6Lm0BvH3sYd9JfG2aEu7KtQ5oXiR-Vw", "ALLIANCE_LOG_LEVEL": "WARNING",
               "ALLIANCE_PUBLIC_URL": f"http://127.0.0.1:{port}",
               "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)}
        alliance = [str(Path(sys.executable).with_name("alliance"))]
        subprocess.run([*alliance, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
        practice_file = Path(var_dir) / "practice.json"
        practice_file.write_text(json.dumps(PRACTICE))
        subprocess.run([*alliance, "practice", "apply", str(practice_file)], env=env, cwd=ROOT, check=True,
                       capture_output=True)
        if kind == "gunicorn":
            command = [str(Path(sys.executable).with_name("gunicorn")), "service.app:create_app()",
                       "-c", "deploy/gunicorn.conf.py"]
        else:
            command = [*alliance, "serve", "--port", str(port), *(["--no-workers"] if no_workers else [])]
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(url, process)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not come up within 30 s")


if __name__ == "__main__":
    main()
