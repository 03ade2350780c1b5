"""End to end with the real processes: a signed webhook goes all the way to a written Flag.

1. PostgreSQL + RabbitMQ: gunicorn (web) and `alliance worker` as separate processes.
2. The embedded default: one `alliance serve` process (SQLite + the embedded queue).
The EHR is the demo FHIR endpoint, served over real HTTP; the survey goes by SMS to the
Twilio-compatible fake of benchmarks/peers.py (the `log` channel is the local demo's only).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from service.demo import session_completed, signed_event
from support import (
    AMQP_URL,
    DEMO_SECRET,
    TEST_SECRET_KEY,
    practice_document,
    require,
    truncate_all,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
LOW = {"bond": 2, "goals": 1, "approach": 2, "overall": 1, "tension": True, "tension_intensity": 5}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fhir_server(tmp_path):
    """The demo FHIR store on its own port, standing in for the practice's EHR."""
    from service.web.demo_fhir import create_demo_fhir_blueprint

    store = tmp_path / "ehr"
    app = Flask("ehr")
    app.register_blueprint(create_demo_fhir_blueprint(store), url_prefix="/fhir")
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/fhir", store
    server.shutdown()


class Process:
    def __init__(self, args, env, log: Path, cwd: Path | None = None):
        self.log = log
        self.handle = open(log, "w")
        self.popen = subprocess.Popen(args, env=env, stdout=self.handle, stderr=subprocess.STDOUT,
                                      cwd=cwd or Path(__file__).resolve().parents[2])

    def stop(self):
        self.popen.terminate()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
        self.handle.close()

    def text(self) -> str:
        return self.log.read_text()


def wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def environment(tmp_path, database_url, broker_url, public_url) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ALLIANCE_")}
    env.update({
        "ALLIANCE_DATABASE_URL": database_url, "ALLIANCE_BROKER_URL": broker_url,
        "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY, "ALLIANCE_PUBLIC_URL": public_url,
        "ALLIANCE_VAR_DIR": str(tmp_path / "var"), "ALLIANCE_RELAY_INTERVAL": "0.2",
    })
    return env


@pytest.fixture
def sms_server():
    """A Twilio-compatible SMS provider on its own port; yields (its port, the messages)."""
    import peers

    server = peers.SmsServer(("127.0.0.1", free_port()))
    peers.start(server)
    yield server.server_address[1], server.messages
    server.shutdown()


def apply_practice(tmp_path, env, ehr_url, sms_port):
    import peers

    document = practice_document(ehr={"type": "fhir-r4", "base_url": ehr_url, "auth": {"type": "none"}},
                                 delivery={"channels": ["sms"], "sms": peers.sms_settings(sms_port)})
    path = tmp_path / "practice.json"
    path.write_text(json.dumps(document))
    for command in (["db", "upgrade"], ["practice", "apply", str(path)]):
        subprocess.run([BIN / "alliance", *command], env=env, check=True, capture_output=True)


def run_one_session(base_url: str, texts: list, store: Path) -> dict:
    body, headers = signed_event(DEMO_SECRET, session_completed("enc-e2e", "pat-e2e", phone="+15550001234"))
    answer = requests.post(f"{base_url}/webhooks/northside/events", data=body, headers=headers, timeout=10)
    assert answer.status_code == 202, answer.text
    body = wait_for(lambda: texts and texts[-1]["body"], what="the survey SMS")
    token = re.search(r"/s/(\S+)", body).group(1)
    page = requests.get(f"{base_url}/s/{token}", timeout=10)
    assert page.status_code == 200 and "<form" in page.text
    stored = requests.post(f"{base_url}/api/v1/surveys/{token}/response", json={"answers": LOW}, timeout=10)
    assert stored.status_code == 201, stored.text
    flags = wait_for(lambda: list((store / "Flag").glob("*/*.json")) if (store / "Flag").exists() else None,
                     what="a Flag in the EHR")
    assert len(list((store / "QuestionnaireResponse").iterdir())) == 1
    assert len(list((store / "Observation").iterdir())) == 1
    return json.loads(flags[0].read_text())


def test_postgres_rabbitmq_gunicorn_and_worker(tmp_path, postgres_database, fhir_server, sms_server):
    require("rabbitmq")
    database_url, engine = postgres_database
    truncate_all(engine)
    ehr_url, store = fhir_server
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = environment(tmp_path, database_url, AMQP_URL, base_url)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # web and worker figures add up
    sms_port, texts = sms_server
    apply_practice(tmp_path, env, ehr_url, sms_port)
    web = Process([BIN / "gunicorn", "service.app:create_app()", "-c", "deploy/gunicorn.conf.py"],
                  {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2"}, tmp_path / "web.log")
    worker = Process([BIN / "alliance", "worker"], env, tmp_path / "worker.log")
    try:
        wait_for(lambda: _up(base_url), what="gunicorn")
        flag = run_one_session(base_url, texts, store)
        assert flag["status"] == "active" and "rupture" in flag["code"]["text"].lower()
        assert requests.get(f"{base_url}/readyz", timeout=10).json()["checks"] == {"database": True, "broker": True}
        metrics = requests.get(f"{base_url}/metrics", timeout=10).text
        assert 'alliance_events_total{outcome="accepted",source="native"} 1.0' in metrics
        assert 'alliance_jobs_total{kind="response.writeback",outcome="done"} 1.0' in metrics
        # read from the database: the rupture the worker stored, whichever web worker answers
        assert 'alliance_ruptures{practice="northside",state="open"} 1.0' in metrics
        _assert_no_personal_data(web.text() + worker.text())
    finally:
        web.stop()
        worker.stop()


def test_embedded_default_in_one_process_from_an_empty_folder(tmp_path, fhir_server, sms_server):
    """`ALLIANCE_DATABASE_URL=sqlite:////srv/alliance/alliance.db alliance serve` in a folder with
    nothing in it: the service makes its folders, keeps its queue and key beside the database,
    sends the survey, and says when its embedded queue breaks."""
    ehr_url, store = fhir_server
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    home = tmp_path / "srv" / "alliance"  # does not exist yet
    empty = tmp_path / "empty"
    empty.mkdir()
    env = environment(tmp_path, f"sqlite:///{home / 'alliance.db'}", "embedded", base_url)
    for generated in ("ALLIANCE_VAR_DIR", "ALLIANCE_SECRET_KEY"):
        del env[generated]
    sms_port, texts = sms_server
    apply_practice(tmp_path, env, ehr_url, sms_port)
    serve = Process([BIN / "alliance", "serve", "--port", str(port)], env, tmp_path / "serve.log",
                    cwd=empty)
    try:
        wait_for(lambda: _up(base_url), what="alliance serve")
        flag = run_one_session(base_url, texts, store)
        assert flag["status"] == "active"
        assert sorted(p.name for p in home.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
            "alliance.db", "queue.db", "secret_key"]
        assert list(empty.iterdir()) == []
        assert "development server" not in serve.text()
        (home / "queue.db").write_bytes(b"garbage, not a database " * 200)
        problem = wait_for(lambda: _not_ready(base_url), what="/readyz to report the queue")
        assert "queue.db" in problem
        _assert_no_personal_data(serve.text())
    finally:
        serve.stop()


def _not_ready(base_url: str) -> str | None:
    answer = requests.get(f"{base_url}/readyz", timeout=5)
    return answer.json()["problems"]["broker"] if answer.status_code == 503 else None


def _up(base_url: str) -> bool:
    try:
        return requests.get(f"{base_url}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _assert_no_personal_data(logs: str) -> None:
    for secret in ("+15550001234", "pat-e2e", "tension_intensity", DEMO_SECRET):
        assert secret not in logs, f"{secret!r} leaked into the logs"
