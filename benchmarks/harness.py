"""What the benchmark and chaos runs share: a throw-away PostgreSQL database, the real processes
(gunicorn, `alliance worker`, the fake peers), a driver that plays the EHR and the clients, and
a sampler of the processes' resident memory.

Everything listens on 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from service.demo import session_completed, signed_event  # noqa: E402

BIN = Path(sys.executable).parent
POSTGRES_ADMIN_URL = os.environ.get("ALLIANCE_TEST_POSTGRES_URL",
                                    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("ALLIANCE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
WEBHOOK_SECRET = "whsec_YmVuY2htYXJrLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ="
PRACTICE_ID = "bench"
LOW = {"bond": 2, "goals": 1, "approach": 2, "overall": 1, "tension": True, "tension_intensity": 5}
HIGH = {"bond": 9, "goals": 9, "approach": 8, "overall": 9, "tension": False}
TOKEN_IN_LINK = re.compile(r"/s/([A-Za-z0-9_.\-]+)")


def run_folder(kind: str) -> Path:
    """Where a run keeps its logs: var/bench/{kind}-{time} (var/ is not committed), or under
    ALLIANCE_BENCH_DIR (the tests that check the benchmarks still run point it at a temp dir)."""
    base = Path(os.environ["ALLIANCE_BENCH_DIR"]) if os.environ.get("ALLIANCE_BENCH_DIR") \
        else ROOT / "var" / "bench"
    folder = base / f"{kind}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_result(result: dict, folder: Path) -> None:
    """Keep the figures beside the logs of the run."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(result, indent=2))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, every: float = 0.1):
    """Poll `predicate` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def http_up(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code < 500
    except requests.RequestException:
        return False


# --- processes --------------------------------------------------------------------------------


class Managed:
    """A child process with its output in a log file."""

    def __init__(self, name: str, args: list, env: dict, log: Path):
        self.name, self.args, self.env, self.log = name, [str(a) for a in args], env, log
        self.handle = open(log, "ab")
        self.popen = subprocess.Popen(self.args, env=env, stdout=self.handle,
                                      stderr=subprocess.STDOUT, cwd=ROOT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def pids(self) -> list[int]:
        """This process and its children (gunicorn's workers)."""
        return [self.pid, *children_of(self.pid)]

    def kill(self) -> None:
        """SIGKILL: no clean-up, no goodbye, as a crashed host or the OOM killer would."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def restart(self) -> Managed:
        self.stop()
        return Managed(self.name, self.args, self.env, self.log)

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self.handle.close()


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_program() -> dict[str, float]:
    """CPU seconds so far of every process on the machine, summed by program name.

    A process's own time plus that of its children it has reaped, so the work of a gunicorn
    worker recycled after max_requests, or of a closed PostgreSQL backend, is still counted
    (under its parent's name)."""
    totals: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
        totals[name] = totals.get(name, 0.0) + ticks / CLOCK_TICKS
    return totals


def rss_mb(pid: int) -> float | None:
    """Resident set size in MB (VmRSS), None if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class MemorySampler:
    """Samples the RSS and CPU time of every process of each role: the peak RSS per process,
    and where the machine's CPU went while the sampler ran."""

    def __init__(self, roles: dict[str, list[Managed]], every: float = 0.25):
        self.roles, self.every = roles, every
        self.peaks: dict[str, dict[int, float]] = {role: {} for role in roles}
        self.first: dict[str, dict[int, float]] = {role: {} for role in roles}
        self.last: dict[str, dict[int, float]] = {role: {} for role in roles}
        self._cpu_before: dict[str, float] = {}
        self._cpu_after: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._cpu_before = cpu_by_program()
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._cpu_after = cpu_by_program()
        self._elapsed = time.monotonic() - self._started

    def cpu_share(self) -> dict[str, float]:
        """CPU seconds per program during the run (top ten), and the wall-clock seconds."""
        used = {name: self._cpu_after[name] - self._cpu_before.get(name, 0.0)
                for name in self._cpu_after}
        top = sorted(((round(v, 1), k) for k, v in used.items() if v > 0.05), reverse=True)[:10]
        return {"wall_s": round(self._elapsed, 1), **{name: value for value, name in top}}

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for role, processes in self.roles.items():
                for process in list(processes):
                    for pid in process.pids():
                        value = rss_mb(pid)
                        if value is not None:
                            self.peaks[role][pid] = max(value, self.peaks[role].get(pid, 0.0))
                            self.first[role].setdefault(pid, value)
                            self.last[role][pid] = value

    def summary(self) -> dict[str, float]:
        """The highest peak of any one process, per role."""
        return {role: round(max(peaks.values(), default=0.0), 1) for role, peaks in self.peaks.items()}

    def per_process(self) -> dict[str, list[dict]]:
        """Per role and process: RSS at the first and last sample, and the peak (MB)."""
        return {role: [{"pid": pid, "first": round(self.first[role][pid], 1),
                        "last": round(self.last[role][pid], 1), "peak": round(peak, 1)}
                       for pid, peak in sorted(peaks.items())]
                for role, peaks in self.peaks.items()}


# --- the database and the broker --------------------------------------------------------------


@contextmanager
def fresh_database():
    """A new, empty PostgreSQL database (dropped at the end); yields its URL."""
    from sqlalchemy import create_engine, text

    name = f"alliance_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


BENCH_VHOST = "alliance-bench"


def isolated_broker_url() -> str:
    """A RabbitMQ vhost of our own, so a run neither eats nor purges other runs' messages.

    Falls back to ALLIANCE_TEST_AMQP_URL as it is when rabbitmqctl is not on this machine.
    """
    try:
        subprocess.run(["rabbitmqctl", "add_vhost", BENCH_VHOST], capture_output=True, timeout=60)
        done = subprocess.run(["rabbitmqctl", "set_permissions", "-p", BENCH_VHOST, "guest",
                               ".*", ".*", ".*"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return AMQP_URL
    if done.returncode != 0 or not AMQP_URL.endswith("//"):
        return AMQP_URL
    return AMQP_URL[:-1] + BENCH_VHOST


def purge_queues(amqp_url: str = AMQP_URL, queue_type: str = "classic") -> None:
    """Empty our work queues, so messages of an earlier run do not count in this one."""
    from kombu import Connection

    from service.messaging.topology import all_queues

    with Connection(amqp_url, connect_timeout=5) as connection:
        channel = connection.default_channel
        for queue_ in all_queues(queue_type):
            bound = queue_(channel)
            bound.declare()
            bound.purge()


def rabbitmq_running() -> bool:
    return subprocess.run(["rabbitmq-diagnostics", "-q", "check_running"],
                          capture_output=True, timeout=60).returncode == 0


def restart_rabbitmq() -> float:
    """stop_app + start_app (closes every connection, keeps durable queues); seconds it took."""
    started = time.monotonic()
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)
    subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)
    wait_for(rabbitmq_running, 120, "RabbitMQ to run again", every=0.5)
    return time.monotonic() - started


def ensure_rabbitmq_running() -> None:
    """Whatever happened during a run, leave RabbitMQ running."""
    if not rabbitmq_running():
        subprocess.run(["rabbitmqctl", "start_app"], capture_output=True, timeout=120)
        wait_for(rabbitmq_running, 120, "RabbitMQ to run again", every=0.5)


# --- the service ------------------------------------------------------------------------------


def service_env(var_dir: Path, database_url: str, public_url: str, broker_url: str = AMQP_URL,
                **extra: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ALLIANCE_")}
    env.update({
        "ALLIANCE_DATABASE_URL": database_url, "ALLIANCE_BROKER_URL": broker_url,
        "ALLIANCE_SECRET_KEY": "ZrP4k8WqT1xNc6Lm0BvH3sYd9JfG2aEu7KtQ5oXiR-Vw", "ALLIANCE_PUBLIC_URL": public_url,
        "ALLIANCE_VAR_DIR": str(var_dir), "ALLIANCE_RELAY_INTERVAL": "0.05",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


# The peers listen on 127.0.0.1: the practice must allow private addresses, and say why.
LOOPBACK_PEERS = {"allow_private": True, "reason": "benchmark peers on this machine"}


def practice_document(ehr_port: int, sms_port: int) -> dict:
    from peers import sms_settings

    return {
        "id": PRACTICE_ID, "name": "Benchmark Practice", "timezone": "UTC",
        "webhook_secrets": [WEBHOOK_SECRET],
        "ehr": {"type": "fhir-r4", "base_url": f"http://127.0.0.1:{ehr_port}/fhir",
                "auth": {"type": "none"}},
        "delivery": {"channels": ["sms"], "sms": sms_settings(sms_port)},
        "survey": {"instrument": "brief-alliance-check", "send_delay_minutes": 0,
                   "reminder_after_hours": 24, "expire_after_hours": 72},
        "network": LOOPBACK_PEERS,
    }


def prepare_service(env: dict, document: dict, work: Path) -> None:
    """Migrate and apply the practice, through the `alliance` command as an operator would."""
    path = work / "practice.json"
    path.write_text(json.dumps(document))
    for command in (["db", "upgrade"], ["practice", "apply", str(path)]):
        done = subprocess.run([BIN / "alliance", *command], env=env, capture_output=True,
                              text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"alliance {command[0]} failed: {done.stdout}{done.stderr}")


def start_web(env: dict, port: int, log: Path, app: str = "service.app:create_app()",
              workers: int | None = None) -> Managed:
    extra = {"GUNICORN_BIND": f"127.0.0.1:{port}"}
    if workers:
        extra["GUNICORN_WORKERS"] = str(workers)
    web = Managed("web", [BIN / "gunicorn", app, "-c", "deploy/gunicorn.conf.py"],
                  {**env, **extra}, log)
    wait_for(lambda: http_up(f"http://127.0.0.1:{port}/healthz"), 60, "gunicorn")
    return web


def start_worker(env: dict, log: Path, *, relay: bool = True, consumers: int = 2) -> Managed:
    args = [BIN / "alliance", "worker", "--consumers", str(consumers)]
    if not relay:
        args.append("--no-relay")
    return Managed("worker", args, env, log)


def await_workers_started(workers: list[Managed], timeout: float = 120.0) -> None:
    """Until every `alliance worker` has declared its queues and started its threads."""
    wait_for(lambda: all(b'"worker started"' in worker.log.read_bytes() for worker in workers),
             timeout, "the workers to start", every=0.25)


def start_peers(log: Path) -> tuple[Managed, int, int]:
    ehr_port, sms_port = free_port(), free_port()
    peers = Managed("peers", [sys.executable, ROOT / "benchmarks" / "peers.py",
                              "--ehr-port", ehr_port, "--sms-port", sms_port], dict(os.environ), log)
    wait_for(lambda: http_up(f"http://127.0.0.1:{ehr_port}/_stats")
             and http_up(f"http://127.0.0.1:{sms_port}/_stats"), 30, "the fake peers")
    return peers, ehr_port, sms_port


def control(port: int, **changes) -> dict:
    return requests.post(f"http://127.0.0.1:{port}/_control", json=changes, timeout=5).json()


def stats(port: int, full: bool = False) -> dict:
    return requests.get(f"http://127.0.0.1:{port}/_stats", params={"full": 1} if full else None,
                        timeout=30).json()


# --- the driver: the EHR sends sessions, clients answer ---------------------------------------


@dataclass(frozen=True)
class Session:
    index: int
    session_id: str
    patient_id: str
    phone: str
    email: str
    answers: dict
    ruptures: bool


def make_sessions(count: int, run_id: str) -> list[Session]:
    """One session per new client; every other client answers at the bottom (a rupture Flag)."""
    made = []
    for index in range(count):
        low = index % 2 == 0
        answers = dict(LOW if low else HIGH)
        # A marker in free text, so the log scan can prove the answers stayed out of the logs.
        answers["comment"] = f"private-note-{run_id}-{index:05d}"
        made.append(Session(index, f"enc-{run_id}-{index:05d}", f"pat-{run_id}-{index:05d}",
                            f"+1555{index:07d}", f"client-{run_id}-{index:05d}@example.org",
                            answers, low))
    return made


@dataclass
class DriverReport:
    started: float = 0.0
    webhooks_accepted: int = 0
    webhook_statuses: dict = field(default_factory=dict)
    webhook_retries: int = 0
    sms_received: int = 0
    duplicate_sms: int = 0
    answers_stored: int = 0
    answer_statuses: dict = field(default_factory=dict)
    all_sent: float | None = None      # when the last webhook was accepted
    finished: float | None = None


class Driver:
    """Plays the practice's EHR (signed webhooks) and the clients (answers to each SMS link)."""

    def __init__(self, base_url: str, sms_port: int, sessions: list[Session], *,
                 senders: int = 8, answerers: int = 8, retry_for: float = 120.0,
                 pace: float | None = None):
        self.base_url, self.sms_port, self.sessions = base_url, sms_port, sessions
        self.pace = pace  # sessions per second the EHR reports; None: as fast as it can
        self.by_phone = {s.phone: s for s in sessions}
        self.senders, self.answerers, self.retry_for = senders, answerers, retry_for
        self.report = DriverReport()
        self._answered: set[str] = set()
        self._answers: queue.Queue = queue.Queue()
        self._done = threading.Event()
        self._local = threading.local()
        self._lock = threading.Lock()

    def _http(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def run(self, until_complete, timeout: float) -> DriverReport:
        """Send every webhook, answer every SMS, until `until_complete()` or `timeout` s."""
        self.report.started = time.monotonic()
        poller = threading.Thread(target=self._poll_sms, daemon=True)
        poller.start()
        with ThreadPoolExecutor(self.answerers) as answer_pool, \
                ThreadPoolExecutor(self.senders) as send_pool:
            workers = [answer_pool.submit(self._answer_loop) for _ in range(self.answerers)]
            sends = []
            for session in self.sessions:
                sends.append(send_pool.submit(self._send, session))
                if self.pace:
                    time.sleep(1 / self.pace)
            for sent in sends:
                sent.result()
            self.report.all_sent = time.monotonic()
            try:
                wait_for(until_complete, timeout, "every session to be written back", every=0.25)
                self.report.finished = time.monotonic()
            finally:
                self._done.set()
                for _ in workers:
                    self._answers.put(None)
        poller.join(5)
        return self.report

    def _send(self, session: Session) -> None:
        event = session_completed(session.session_id, session.patient_id, phone=session.phone,
                                  email=session.email)
        msg_id = f"msg_{session.session_id}"
        deadline = time.monotonic() + self.retry_for
        while time.monotonic() < deadline:
            # Re-signed on every try (the timestamp must be fresh), same webhook-id: a redelivery.
            body, headers = signed_event(WEBHOOK_SECRET, event, msg_id=msg_id)
            try:
                answer = self._http().post(f"{self.base_url}/webhooks/{PRACTICE_ID}/events",
                                           data=body, headers=headers, timeout=30)
                status = answer.status_code
            except requests.RequestException:
                status = "error"
            self._count(self.report.webhook_statuses, status)
            if status in (200, 202):
                self.report.webhooks_accepted += status == 202
                return
            self.report.webhook_retries += 1
            time.sleep(0.5)

    def _poll_sms(self) -> None:
        after = 0
        while not self._done.is_set():
            try:
                batch = requests.get(f"http://127.0.0.1:{self.sms_port}/_messages",
                                     params={"after": after}, timeout=10).json()
            except requests.RequestException:
                time.sleep(0.2)
                continue
            after = batch["next"]
            for message in batch["messages"]:
                self.report.sms_received += 1
                found = TOKEN_IN_LINK.search(message["body"] or "")
                session = self.by_phone.get(message["to"])
                if not found or session is None:
                    continue
                if message["to"] in self._answered:
                    self.report.duplicate_sms += 1
                    continue
                self._answered.add(message["to"])
                self._answers.put((session, found.group(1)))
            if not batch["messages"]:
                time.sleep(0.05)

    def _answer_loop(self) -> None:
        while True:
            item = self._answers.get()
            if item is None:
                return
            session, token = item
            deadline = time.monotonic() + self.retry_for
            while time.monotonic() < deadline and not self._done.is_set():
                try:
                    answer = self._http().post(
                        f"{self.base_url}/api/v1/surveys/{token}/response",
                        json={"answers": session.answers}, timeout=30)
                    status = answer.status_code
                except requests.RequestException:
                    status = "error"
                self._count(self.report.answer_statuses, status)
                if status in (201, 409):
                    self.report.answers_stored += status == 201
                    break
                time.sleep(0.5)

    def _count(self, counter: dict, key) -> None:
        with self._lock:
            counter[str(key)] = counter.get(str(key), 0) + 1


def written_back(ehr_port: int, sessions: list[Session]) -> bool:
    """True once the EHR holds a QuestionnaireResponse and an Observation per session, a Flag per rupture."""
    counts = stats(ehr_port)["counts"]
    ruptures = sum(s.ruptures for s in sessions)
    return (counts.get("QuestionnaireResponse", 0) >= len(sessions)
            and counts.get("Observation", 0) >= len(sessions) and counts.get("Flag", 0) >= ruptures)


# --- what the run was on ----------------------------------------------------------------------


def run_facts(command: str) -> dict:
    """Date, machine, command and commit, for the docs."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next(int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    commit = _quiet(["git", "rev-parse", "--short", "HEAD"])
    dirty = _quiet(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} × {cpu}, {memory} MB RAM, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgres": _quiet(["psql", "--version"]) or "?",
        "rabbitmq": _quiet(["rabbitmqctl", "version"]) or "?",
        "command": command,
        "commit": (commit or "?") + (" (with uncommitted changes)" if dirty else ""),
    }


def _quiet(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""
