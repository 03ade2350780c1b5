"""Chaos on PostgreSQL + RabbitMQ: sessions flow while the workers are killed, the broker
restarts, the EHR fails and the SMS provider is down; afterwards nothing may be lost or doubled.

Three `alliance worker` processes run at once, two of them with an outbox relay (a practice
that has outgrown one process). While the EHR reports sessions at a steady pace:

* a worker is killed with SIGKILL (and started again, as a supervisor would) — twice;
* RabbitMQ is restarted once (`rabbitmqctl stop_app` / `start_app`), unless --no-broker-restart;
* the EHR answers 503 to 30 % of requests for a while (half of them after the write took
  effect, as when an answer is lost on the way back);
* the SMS provider is down for a while (connections closed before a byte is read).

After recovery the run checks, per session: exactly one accepted webhook, one survey, one SMS,
one answer, one QuestionnaireResponse and one Observation at the EHR, one Flag per rupture and
none otherwise, no job left behind or dead-lettered; it scans every log line the service
wrote for the phone numbers, e-mail addresses, patient ids and answers it used; and it scans
every column of every table of the database for the phone numbers, e-mail addresses and
free-text answers (stored encrypted, they must not be found).

    .venv/bin/python benchmarks/chaos.py [--sessions 300] [--no-broker-restart]

`--cluster` (`make chaos-cluster`) runs the same flow on a three-node RabbitMQ cluster of its
own (deploy/rabbitmq_cluster.py, beside the machine's RabbitMQ, which it leaves alone) with
quorum queues and the node URLs as the broker URL: the node leading the queues is killed with
SIGKILL and started again later, then another node is restarted gracefully (a rolling restart),
while a worker is killed and the EHR fails 30 % of requests.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    Driver,
    Managed,
    Session,
    await_workers_started,
    control,
    ensure_rabbitmq_running,
    free_port,
    fresh_database,
    isolated_broker_url,
    make_sessions,
    practice_document,
    prepare_service,
    purge_queues,
    restart_rabbitmq,
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


@dataclass(frozen=True)
class Disturbance:
    at: float          # seconds after the first webhook (at the earliest: see run_plan)
    what: str          # kill-worker-N | restart-broker | ehr-failing | ehr-healthy | sms-down |
                       # sms-up | broker-kill-leader | broker-start-killed | broker-rolling-restart


def full_plan(broker_restart: bool = True) -> list[Disturbance]:
    """The `make chaos` timeline (the flow of webhooks lasts about 25 s)."""
    plan = [
        Disturbance(3, "ehr-failing"), Disturbance(5, "kill-worker-0"),
        Disturbance(8, "sms-down"), Disturbance(14, "sms-up"),
        Disturbance(16, "kill-worker-2"), Disturbance(22, "ehr-healthy"),
    ]
    if broker_restart:
        plan.append(Disturbance(11, "restart-broker"))
    return sorted(plan, key=lambda d: d.at)


def cluster_plan() -> list[Disturbance]:
    """`make chaos-cluster`: broker nodes lost and restarted while the sessions flow."""
    return [
        Disturbance(2, "ehr-failing"), Disturbance(5, "broker-kill-leader"),
        Disturbance(10, "kill-worker-0"), Disturbance(15, "broker-start-killed"),
        Disturbance(25, "broker-rolling-restart"), Disturbance(30, "ehr-healthy"),
    ]


def quick_plan() -> list[Disturbance]:
    """The CI form: one kill, a short EHR outage and SMS outage, no broker restart."""
    return [Disturbance(1, "ehr-failing"), Disturbance(2, "kill-worker-0"),
            Disturbance(2.5, "sms-down"), Disturbance(5, "sms-up"), Disturbance(6, "ehr-healthy")]


@dataclass
class Cluster:
    """The processes under test; workers can be killed and started again."""

    env: dict
    work: Path
    ehr_port: int
    sms_port: int
    web: Managed | None = None
    workers: list[Managed] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    broker_restart_s: float | None = None
    broker: object | None = None          # a LocalCluster for --cluster
    killed_node: object | None = None
    leaders: Counter | None = None        # queues led per broker node, before the flow
    failed: list[str] = field(default_factory=list)   # disturbances that could not be done

    def start_workers(self, count: int, relays: int, consumers: int) -> None:
        for index in range(count):
            self.workers.append(start_worker(self.env, self.work / f"worker-{index}.log",
                                             relay=index < relays, consumers=consumers))

    def await_workers(self, timeout: float = 120.0) -> None:
        """Until every worker has declared its queues and started: the timeline's clock starts
        with the first webhook, and the first disturbance must not hit a worker still starting."""
        await_workers_started(self.workers, timeout)

    def disturb(self, disturbance: Disturbance, started: float) -> None:
        """Do one disturbance; one that fails is noted, and the run then fails its checks."""
        try:
            self._disturb(disturbance, started)
        except Exception as error:
            self.failed.append(f"{disturbance.what}: {type(error).__name__}: {error}")
            self._note(started, f"{disturbance.what} FAILED: {type(error).__name__}")

    def _disturb(self, disturbance: Disturbance, started: float) -> None:
        what = disturbance.what
        self.log.append(f"{time.monotonic() - started:5.1f} s  {what}")
        if what.startswith("kill-worker-"):
            index = int(what.rsplit("-", 1)[1])
            self.workers[index].kill()
            time.sleep(1.0)  # a supervisor notices and starts it again
            self.workers[index] = self.workers[index].restart()
        elif what == "restart-broker":
            self.broker_restart_s = round(restart_rabbitmq(), 1)
        elif what in ("ehr-failing", "ehr-healthy"):
            control(self.ehr_port, fail_ratio=0.3 if what == "ehr-failing" else 0.0)
        elif what in ("sms-down", "sms-up"):
            control(self.sms_port, down=what == "sms-down")
        elif what.startswith("broker-"):
            self._disturb_broker_node(what, started)

    def _disturb_broker_node(self, what: str, started: float) -> None:
        nodes = self.broker.nodes
        if what == "broker-kill-leader":
            # Known before the flow began: rabbitmqctl takes seconds to answer on a busy machine.
            leaders = self.leaders or Counter(queue["leader"] for queue in self.broker.queues())
            self.killed_node = next(n for n in nodes if n.name == leaders.most_common(1)[0][0])
            self.killed_node.kill()
            led, total = leaders[self.killed_node.name], sum(leaders.values())
            self._note(started, f"SIGKILL {self.killed_node.name} (leader of {led} of {total} queues)")
            # Who leads now (the survivors elect new leaders within seconds): the target of the
            # rolling restart, asked now because rabbitmqctl is slow on a busy machine.
            time.sleep(3)
            self.leaders = Counter(queue["leader"] for queue in self.broker.queues())
            self._note(started, f"new leaders: {dict(self.leaders)}")
        elif what == "broker-start-killed":
            self.killed_node.start()
            self.killed_node.await_running()
            self._note(started, f"{self.killed_node.name} running again (AMQP port open)")
        elif what == "broker-rolling-restart":
            # The node that leads most queues now (they moved off the killed one): the
            # harder case, every queue it leads must elect a new leader again.
            survivors = [n for n in nodes if n is not self.killed_node]
            node = max(survivors, key=lambda n: self.leaders.get(n.name, 0))
            self._note(started, f"{node.name}: rabbitmqctl stop (leader of "
                                f"{self.leaders.get(node.name, 0)} queues)")
            node.stop()
            self._note(started, f"{node.name} stopped")
            node.start()
            node.await_running()
            self._note(started, f"{node.name} running again (AMQP port open)")

    def _note(self, started: float, text: str) -> None:
        self.log.append(f"{time.monotonic() - started:5.1f} s  {text}")

    def stop(self) -> None:
        for process in [*self.workers, *([self.web] if self.web else [])]:
            process.stop()


def run_plan(cluster: Cluster, plan: list[Disturbance], started: float, stop: threading.Event) -> None:
    """Broker-node disturbances in one lane, the rest in another: a node takes many seconds to
    start, and the EHR's recovery must not wait for it. Within a lane, in order: a disturbance
    happens at its time or, if the one before took longer, right after it."""
    lanes = [[d for d in plan if d.what.startswith("broker-")],
             [d for d in plan if not d.what.startswith("broker-")]]
    threads = [threading.Thread(target=_run_lane, args=(cluster, lane, started, stop), daemon=True)
               for lane in lanes if lane]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _run_lane(cluster: Cluster, lane: list[Disturbance], started: float,
              stop: threading.Event) -> None:
    for disturbance in lane:
        if stop.wait(max(0.0, started + disturbance.at - time.monotonic())):
            return
        if disturbance.what == "ehr-healthy":
            # On a busy machine the write-backs may come after the planned window: the outage
            # must have been met, or the run proves nothing about it.
            wait_until_the_ehr_failed(cluster.ehr_port, stop)
        cluster.disturb(disturbance, started)


def wait_until_the_ehr_failed(ehr_port: int, stop: threading.Event, at_least: int = 5,
                              at_most: float = 90.0) -> None:
    deadline = time.monotonic() + at_most
    while time.monotonic() < deadline and stats(ehr_port)["failed"] < at_least:
        if stop.wait(0.2):
            return


# --- the checks -------------------------------------------------------------------------------


def verify(database_url: str, ehr_port: int, sms_port: int, sessions: list[Session]) -> dict:
    """Everything that must hold after recovery; `problems` lists what does not."""
    problems: list[str] = []
    database = _database_facts(database_url)
    expected = {s.session_id for s in sessions}
    for name in ("events", "surveys", "answered", "responses"):
        counts = database[name]
        wrong = {sid: n for sid, n in counts.items() if n != 1} | {sid: 0 for sid in expected - set(counts)}
        if wrong:
            problems.append(f"{name}: {len(wrong)} sessions without exactly one, e.g. {_some(wrong)}")
    if database["unfinished_jobs"]:
        problems.append(f"jobs left behind: {database['unfinished_jobs']}")
    if database["dead_jobs"]:
        problems.append(f"dead-lettered jobs: {database['dead_jobs']}")
    sms = requests_json(sms_port, "/_messages")["messages"]
    per_phone = Counter(message["to"] for message in sms)
    phones = {s.phone for s in sessions}
    wrong_sms = {p: per_phone.get(p, 0) for p in phones if per_phone.get(p, 0) != 1}
    if wrong_sms:
        problems.append(f"SMS: {len(wrong_sms)} clients without exactly one, e.g. {_some(wrong_sms)}")
    resources = stats(ehr_port, full=True)["resources"]
    per_encounter = Counter((r["type"], (r["encounter"] or "").removeprefix("Encounter/")) for r in resources)
    for session in sessions:
        for kind, want in (("QuestionnaireResponse", 1), ("Observation", 1),
                           ("Flag", 1 if session.ruptures else 0)):
            have = per_encounter.get((kind, session.session_id), 0)
            if have != want:
                problems.append(f"{kind} for {session.session_id}: {have}, expected {want}")
    return {
        "sessions": len(sessions), "sms_sent": len(sms),
        "ehr_resources": dict(Counter(r["type"] for r in resources)),
        "job_attempts_over_1": database["retried_jobs"],
        "problems": problems[:50], "problem_count": len(problems),
    }


CHECKED_KINDS = ("event.process", "survey.send", "response.writeback")


def await_jobs_finished(database_url: str, timeout: float) -> None:
    """Until no job of CHECKED_KINDS is pending or published (or the timeout: verify then
    reports what was left behind)."""
    from sqlalchemy import create_engine, func, select

    from service.persistence.tables import outbox

    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                left = conn.execute(select(func.count()).select_from(outbox).where(
                    outbox.c.status.in_(["pending", "published"]),
                    outbox.c.kind.in_(CHECKED_KINDS))).scalar_one()
            if not left:
                return
            time.sleep(0.5)
    finally:
        engine.dispose()


def requests_json(port: int, path: str) -> dict:
    import requests

    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=30).json()


def _database_facts(database_url: str) -> dict:
    from sqlalchemy import create_engine, func, select

    from service.persistence.tables import outbox, responses, surveys, webhook_events

    engine = create_engine(database_url)
    with engine.connect() as conn:
        events = dict(conn.execute(
            select(webhook_events.c.session_id, func.count())
            .where(webhook_events.c.outcome == "survey-scheduled")
            .group_by(webhook_events.c.session_id)).all())
        survey_counts = dict(conn.execute(
            select(surveys.c.session_id, func.count()).group_by(surveys.c.session_id)).all())
        answered = dict(conn.execute(
            select(surveys.c.session_id, func.count()).where(surveys.c.status == "answered")
            .group_by(surveys.c.session_id)).all())
        response_counts = dict(conn.execute(
            select(surveys.c.session_id, func.count()).join(responses, responses.c.survey_id == surveys.c.id)
            .group_by(surveys.c.session_id)).all())
        # Reminders and expiries fall due in hours: only jobs meant to run by now count.
        unfinished = dict(conn.execute(
            select(outbox.c.kind, func.count())
            .where(outbox.c.status.in_(["pending", "published"]),
                   outbox.c.kind.in_(CHECKED_KINDS))
            .group_by(outbox.c.kind)).all())
        dead = dict(conn.execute(select(outbox.c.kind, func.count()).where(outbox.c.status == "dead")
                                 .group_by(outbox.c.kind)).all())
        retried = dict(conn.execute(select(outbox.c.kind, func.count()).where(outbox.c.attempts > 0)
                                    .group_by(outbox.c.kind)).all())
    engine.dispose()
    return {"events": events, "surveys": survey_counts, "answered": answered,
            "responses": response_counts, "unfinished_jobs": unfinished, "dead_jobs": dead,
            "retried_jobs": retried}


def _some(mapping: dict) -> dict:
    return dict(list(mapping.items())[:3])


def personal_data_in_logs(folder: Path, sessions: list[Session]) -> dict:
    """Every phone number, e-mail address, patient id and free-text answer used, searched for
    in every log the service's processes wrote (the fake peers' log is not the service's)."""
    logs = [path for path in folder.glob("*.log") if path.name != "peers.log"]
    text = "\n".join(path.read_text(errors="replace") for path in logs)
    needles = [value for s in sessions
               for value in (s.phone, s.email, s.patient_id, s.answers["comment"])]
    needles += ['"tension_intensity"', '"answers"']
    found = sorted({needle for needle in needles if needle in text})
    return {"log_files": len(logs), "log_lines": text.count("\n"), "values_searched": len(needles),
            "found": found[:20]}


def personal_data_in_database(database_url: str, sessions: list[Session]) -> dict:
    """Every phone number (two spellings), e-mail address and free-text answer used, searched
    for in every column of every table after the run (CONTRACT §11: none in plaintext)."""
    from db_scan import needles_for, scan_database
    from sqlalchemy import create_engine

    engine = create_engine(database_url)
    started = time.monotonic()
    try:
        needles = [n for s in sessions for n in needles_for(s.phone, s.email, s.answers["comment"])]
        result = scan_database(engine, needles).as_dict()
    finally:
        engine.dispose()
    return {**result, "seconds": round(time.monotonic() - started, 1)}


# --- the run ----------------------------------------------------------------------------------


def run(sessions: int, plan: list[Disturbance], *, pace: float, workers: int = 3, relays: int = 2,
        consumers: int = 2, recovery_timeout: float = 300.0, work: Path | None = None,
        broker=None) -> dict:
    """Start everything, let the sessions flow through the plan, recover, check.

    `broker`: a running LocalCluster (deploy/rabbitmq_cluster.py) to use with quorum queues
    instead of the machine's RabbitMQ."""
    work = work or run_folder("chaos")
    peers, ehr_port, sms_port = start_peers(work / "peers.log")
    cluster = None
    queue_type = "quorum" if broker else "classic"
    try:
        with fresh_database() as database_url:
            web_port = free_port()
            base_url = f"http://127.0.0.1:{web_port}"
            broker_url = broker.urls() if broker else isolated_broker_url()
            env = service_env(work / "var", database_url, base_url, broker_url,
                              # Bounds how long a job published into a lost message waits.
                              ALLIANCE_REDELIVER_AFTER="20", ALLIANCE_RELAY_INTERVAL="0.1",
                              ALLIANCE_RABBITMQ_QUEUE_TYPE=queue_type)
            prepare_service(env, practice_document(ehr_port, sms_port), work)
            purge_queues(broker_url, queue_type)
            cluster = Cluster(env, work, ehr_port, sms_port, broker=broker)
            cluster.web = start_web(env, web_port, work / "web.log", workers=3)
            cluster.start_workers(workers, relays, consumers)
            cluster.await_workers()
            if broker:
                cluster.leaders = Counter(queue["leader"] for queue in broker.queues())
            planned = make_sessions(sessions, uuid.uuid4().hex[:6])
            driver = Driver(base_url, sms_port, planned, pace=pace, retry_for=recovery_timeout)
            stop = threading.Event()
            started = time.monotonic()
            chaos = threading.Thread(target=run_plan, args=(cluster, plan, started, stop), daemon=True)
            chaos.start()
            try:
                report = driver.run(lambda: written_back(ehr_port, planned), recovery_timeout)
            finally:
                # A broker node still restarting finishes first: nothing is checked mid-way.
                chaos.join(300 if broker else 0)
                stop.set()
                chaos.join(60)
                control(ehr_port, fail_ratio=0.0)
                control(sms_port, down=False)
            time.sleep(3)  # late duplicates, if any, would arrive now
            # Everything is at the EHR, but a write whose answer was lost (a 503 after the write
            # took effect) is still a job due for its retry, after its backoff: wait for those.
            await_jobs_finished(database_url, recovery_timeout)
            queues = broker.queues() if broker else None
            checks = verify(database_url, ehr_port, sms_port, planned)
            undone = [d.what for d in plan if not any(d.what in line for line in cluster.log)]
            # A plan that did not happen proves nothing: count it as a problem.
            checks["problems"] += [f"disturbance not done: {what}" for what in undone]
            checks["problems"] += [f"disturbance failed: {text}" for text in cluster.failed]
            checks["problem_count"] += len(undone) + len(cluster.failed)
            cluster.stop()
            privacy = personal_data_in_logs(work, planned)
            at_rest = personal_data_in_database(database_url, planned)
            checks["problems"] += [f"plaintext in the database: {f}" for f in at_rest["found"]]
            checks["problem_count"] += at_rest["found_count"]
            return {
                "sessions": sessions, "pace_per_s": pace, "worker_processes": workers,
                "relays": relays, "consumers_per_worker": consumers,
                "broker": f"{len(broker.nodes)}-node cluster, quorum queues" if broker
                else "the machine's RabbitMQ, classic queues",
                "queues_after": queues,
                "timeline": cluster.log, "broker_restart_s": cluster.broker_restart_s,
                "all_reported_after_s": round(report.all_sent - report.started, 1),
                "all_written_back_after_s": round(report.finished - report.started, 1),
                "webhook_answers": report.webhook_statuses, "answer_statuses": report.answer_statuses,
                "duplicate_sms_seen_by_clients": report.duplicate_sms,
                "ehr_requests": stats(ehr_port)["requests"], "ehr_503s": stats(ehr_port)["failed"],
                **checks, "logs_scan": privacy, "database_scan": at_rest, "logs": str(work),
            }
    finally:
        if cluster:
            cluster.stop()
        peers.stop()
        if not broker:
            ensure_rabbitmq_running()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--pace", type=float, default=None,
                        help="sessions per second the EHR reports (12; 3 with --cluster, so the "
                             "flow lasts while broker nodes take their time to start)")
    parser.add_argument("--no-broker-restart", action="store_true")
    parser.add_argument("--cluster", action="store_true",
                        help="a three-node RabbitMQ cluster of its own, quorum queues")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    facts = run_facts(" ".join(["benchmarks/chaos.py", *(argv or sys.argv[1:])]))
    if args.cluster:
        result = {**facts, **run_on_a_cluster(args.sessions, args.pace or 3.0, args.timeout)}
    else:
        result = {**facts, **run(args.sessions, full_plan(not args.no_broker_restart),
                                 pace=args.pace or 12.0, recovery_timeout=args.timeout)}
    print(json.dumps(result, indent=2))
    save_result(result, Path(result["logs"]))
    if result["problem_count"] or result["logs_scan"]["found"]:
        raise SystemExit(1)
    return result


def run_on_a_cluster(sessions: int, pace: float, timeout: float) -> dict:
    """Start three RabbitMQ nodes of our own, run the cluster plan on them, stop them."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
    from rabbitmq_cluster import LocalCluster

    work = run_folder("chaos-cluster")
    broker = LocalCluster(work / "rabbitmq")
    began = time.monotonic()
    try:
        broker.start()
        formed_s = round(time.monotonic() - began, 1)
        result = run(sessions, cluster_plan(), pace=pace, recovery_timeout=timeout, work=work,
                     broker=broker)
        return {**result, "cluster_formed_s": formed_s,
                "cluster_nodes": [node.name for node in broker.nodes]}
    finally:
        broker.stop()

if __name__ == "__main__":
    main()
