"""How far one machine goes: the curve of consumers × relay interval → sessions per second,
job latency, worker memory and PostgreSQL connections, on PostgreSQL + RabbitMQ.

Each point of the grid is a run of its own on a fresh database: gunicorn (its default workers),
**one** `alliance worker --consumers C` with the outbox relay, ALLIANCE_RELAY_INTERVAL=R, the
fake EHR and SMS provider, and the driver (as in benchmarks/end_to_end.py) sending S sessions
as fast as it can and answering every SMS. Per point:

* sessions/s: from the first webhook until the EHR holds every resource;
* job latency p50/p99 per kind: finished_at − available_at in the outbox (the time a due job
  waits for the relay, the broker and a free consumer, plus its run);
* peak RSS of the worker process; PostgreSQL connections to the run's database (peak, sampled
  every 0.25 s); CPU seconds per session by program.

    .venv/bin/python benchmarks/scaling.py                 # the full grid: `make scaling`
    .venv/bin/python benchmarks/scaling.py --quick         # 2 points × 40 sessions: it works
    .venv/bin/python benchmarks/scaling.py --consumers 1 8 --relay-intervals 0.5 --sessions 300

The figures go to stdout (JSON, then a Markdown table for docs/scaling.md) and to
var/bench/scaling-{time}/result.json, with every process's log beside them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    Driver,
    MemorySampler,
    await_workers_started,
    free_port,
    fresh_database,
    isolated_broker_url,
    make_sessions,
    practice_document,
    prepare_service,
    purge_queues,
    run_facts,
    run_folder,
    save_result,
    service_env,
    start_peers,
    start_web,
    start_worker,
    written_back,
)

FULL_CONSUMERS = [1, 2, 4, 8, 16, 32]
FULL_INTERVALS = [0.05, 0.1, 0.5, 1.0]
JOB_KINDS = ("event.process", "survey.send", "response.writeback")


class ConnectionSampler:
    """The peak number of PostgreSQL backends connected to one database."""

    def __init__(self, admin_url: str, database: str, every: float = 0.25):
        from sqlalchemy import create_engine

        self.engine = create_engine(admin_url, pool_size=1, max_overflow=0)
        self.database, self.every, self.peak = database, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.engine.dispose()

    def _run(self) -> None:
        from sqlalchemy import text

        query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name")
        while not self._stop.wait(self.every):
            try:
                with self.engine.connect() as conn:
                    now = conn.execute(query, {"name": self.database}).scalar()
                self.peak = max(self.peak, now)
            except Exception:  # a sample missed is not a reason to stop measuring
                continue


def job_latencies(database_url: str) -> dict:
    """p50 / p99 / max of finished_at − available_at per job kind, in milliseconds."""
    from sqlalchemy import create_engine, select

    from service.persistence.tables import outbox

    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.kind, outbox.c.available_at, outbox.c.finished_at)
                            .where(outbox.c.status == "done", outbox.c.kind.in_(JOB_KINDS))).all()
    engine.dispose()
    by_kind: dict[str, list[float]] = {}
    for kind, due, done in rows:
        by_kind.setdefault(kind, []).append((done - due).total_seconds() * 1000)
    return {kind: _percentiles(values) for kind, values in sorted(by_kind.items())}


def _percentiles(values: list[float]) -> dict:
    count, values = len(values), sorted(values)
    cuts = statistics.quantiles(values * 2 if count == 1 else values, n=100, method="inclusive")
    return {"jobs": count, "p50_ms": round(cuts[49], 1), "p99_ms": round(cuts[98], 1),
            "max_ms": round(values[-1], 1)}


def run_point(sessions: int, consumers: int, interval: float, work: Path,
              timeout: float) -> dict:
    """One point of the grid on a fresh database, with fresh fake peers."""
    from harness import POSTGRES_ADMIN_URL

    folder = work / f"c{consumers}-r{interval}"
    folder.mkdir(parents=True, exist_ok=True)
    peers, ehr_port, sms_port = start_peers(folder / "peers.log")
    processes = [peers]
    with fresh_database() as database_url:
        web_port = free_port()
        base_url = f"http://127.0.0.1:{web_port}"
        broker_url = isolated_broker_url()
        env = service_env(folder / "var", database_url, base_url, broker_url,
                          ALLIANCE_RELAY_INTERVAL=str(interval))
        try:
            prepare_service(env, practice_document(ehr_port, sms_port), folder)
            purge_queues(broker_url)
            web = start_web(env, web_port, folder / "web.log")
            worker = start_worker(env, folder / "worker.log", relay=True, consumers=consumers)
            processes += [web, worker]
            await_workers_started([worker])
            planned = make_sessions(sessions, uuid.uuid4().hex[:6])
            driver = Driver(base_url, sms_port, planned)
            database = database_url.rsplit("/", 1)[1]
            with MemorySampler({"web": [web], "worker": [worker]}) as memory, \
                    ConnectionSampler(POSTGRES_ADMIN_URL, database) as connections:
                report = driver.run(lambda: written_back(ehr_port, planned), timeout)
            elapsed = report.finished - report.started
            cpu = memory.cpu_share()
            return {
                "consumers": consumers, "relay_interval_s": interval, "sessions": sessions,
                "elapsed_s": round(elapsed, 2), "sessions_per_s": round(sessions / elapsed, 1),
                "job_latency": job_latencies(database_url),
                "worker_peak_rss_mb": memory.summary()["worker"],
                "web_peak_rss_mb": memory.summary()["web"],
                "postgres_connections_peak": connections.peak,
                "cpu_ms_per_session": {name: round(seconds * 1000 / sessions, 1)
                                       for name, seconds in cpu.items() if name != "wall_s"},
                "webhooks": report.webhook_statuses, "answers": report.answer_statuses,
                "logs": str(folder),
            }
        finally:
            for process in reversed(processes):
                process.stop()


def markdown(points: list[dict]) -> str:
    """The table for docs/scaling.md."""
    lines = ["| consumers | relay interval | sessions/s | p99 event.process | p99 survey.send "
             "| p99 response.writeback | worker RSS | PostgreSQL connections |",
             "|---|---|---|---|---|---|---|---|"]
    for p in points:
        latency = p["job_latency"]
        p99 = [f"{latency[k]['p99_ms']:.0f} ms" if k in latency else "–" for k in JOB_KINDS]
        lines.append(f"| {p['consumers']} | {p['relay_interval_s']} s | {p['sessions_per_s']} | "
                     f"{' | '.join(p99)} | {p['worker_peak_rss_mb']} MB | "
                     f"{p['postgres_connections_peak']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consumers", type=int, nargs="+", default=FULL_CONSUMERS)
    parser.add_argument("--relay-intervals", type=float, nargs="+", default=FULL_INTERVALS)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="2 points × 40 sessions")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    if args.quick:
        args.consumers, args.relay_intervals, args.sessions = [1, 4], [0.5], 40
    work = run_folder("scaling")
    facts = run_facts(" ".join(["benchmarks/scaling.py", *(argv or sys.argv[1:])]))
    points = []
    began = time.monotonic()
    for interval in args.relay_intervals:
        for consumers in args.consumers:
            point = run_point(args.sessions, consumers, interval, work, args.timeout)
            print(json.dumps({k: point[k] for k in ("consumers", "relay_interval_s",
                                                    "sessions_per_s")}), flush=True)
            points.append(point)
    result = {**facts, "grid_minutes": round((time.monotonic() - began) / 60, 1),
              "points": points, "logs": str(work)}
    save_result(result, work)
    print(json.dumps(result, indent=2))
    print(markdown(points))
    return result


if __name__ == "__main__":
    main()
