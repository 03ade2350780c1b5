"""End-to-end sessions per second on PostgreSQL + RabbitMQ, and the peak memory of each process.

A session: the EHR's signed webhook → event.process → survey.send (SMS at the fake provider)
→ the client answers over the API → response.writeback → QuestionnaireResponse, Observation and
(every other client, who answers at the bottom) a Flag at the fake EHR. gunicorn serves the web
side; `alliance worker` processes run the jobs; the driver (this process) plays the EHR and the
clients; the fake peers run in their own process.

    .venv/bin/python benchmarks/end_to_end.py [--sessions 1000] [--workers 2] [--consumers 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    Driver,
    MemorySampler,
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
    stats,
    written_back,
)


def run(sessions: int, workers: int, consumers: int, web_workers: int | None, timeout: float) -> dict:
    """One measured run; returns the figures."""
    work = run_folder("end-to-end")
    with fresh_database() as database_url:
        peers, ehr_port, sms_port = start_peers(work / "peers.log")
        web_port = free_port()
        base_url = f"http://127.0.0.1:{web_port}"
        broker_url = isolated_broker_url()
        env = service_env(work / "var", database_url, base_url, broker_url)
        processes = [peers]
        try:
            prepare_service(env, practice_document(ehr_port, sms_port), work)
            purge_queues(broker_url)
            web = start_web(env, web_port, work / "web.log", workers=web_workers)
            processes.append(web)
            pool = [start_worker(env, work / f"worker-{n}.log", relay=n == 0, consumers=consumers)
                    for n in range(workers)]
            processes += pool
            time.sleep(2)  # the workers connect and declare their queues
            planned = make_sessions(sessions, uuid.uuid4().hex[:6])
            driver = Driver(base_url, sms_port, planned)
            with MemorySampler({"web": [web], "worker": pool}) as memory:
                report = driver.run(lambda: written_back(ehr_port, planned), timeout)
            elapsed = report.finished - report.started
            ehr = stats(ehr_port)
            return {
                "sessions": sessions, "elapsed_s": round(elapsed, 2),
                "sessions_per_s": round(sessions / elapsed, 1),
                "web_workers": web_workers or "gunicorn.conf default",
                "worker_processes": workers, "consumers_per_worker": consumers,
                "webhooks": report.webhook_statuses, "answers": report.answer_statuses,
                "sms": report.sms_received, "duplicate_sms": report.duplicate_sms,
                "ehr_resources": ehr["counts"], "peak_rss_mb": memory.summary(),
                "rss_per_process_mb": memory.per_process(),
                "cpu_s": memory.cpu_share(), "logs": str(work),
            }
        finally:
            for process in reversed(processes):
                process.stop()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="`alliance worker` processes (the first runs the relay)")
    parser.add_argument("--consumers", type=int, default=4, help="consumer threads per worker process")
    parser.add_argument("--web-workers", type=int, default=None, help="gunicorn workers (default: gunicorn.conf.py)")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    result = {**run_facts(" ".join(["benchmarks/end_to_end.py", *(argv or sys.argv[1:])])),
              **run(args.sessions, args.workers, args.consumers, args.web_workers, args.timeout)}
    print(json.dumps({k: v for k, v in result.items() if k != "rss_per_process_mb"}, indent=2))
    save_result(result, Path(result["logs"]))
    return result


if __name__ == "__main__":
    main()
