"""Helpers shared by the tests (importable as `support`)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
# Real payloads and test vectors, copied into the repository (provenance: fixtures/README.md).
PAYLOADS = ROOT / "tests" / "fixtures"
POSTGRES_ADMIN_URL = os.environ.get("ALLIANCE_TEST_POSTGRES_URL",
                                    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("ALLIANCE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
REQUIRE_SERVICES = os.environ.get("ALLIANCE_TEST_REQUIRE_SERVICES") == "1"


def isolate_rabbitmq() -> str | None:
    """Point AMQP_URL at a new vhost of this run, so runs in parallel (or a benchmark) neither
    eat nor purge each other's messages; returns the vhost, or None where rabbitmqctl cannot
    make one (a remote broker: the URL is used as given)."""
    global AMQP_URL
    if not AMQP_URL.endswith("//"):
        return None
    vhost = f"alliance-test-{uuid.uuid4().hex[:10]}"
    try:
        made = subprocess.run(["rabbitmqctl", "add_vhost", vhost], capture_output=True, timeout=60)
        if made.returncode != 0:
            return None
        subprocess.run(["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                       capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    AMQP_URL = AMQP_URL[:-1] + vhost
    return vhost


def drop_rabbitmq_vhost(vhost: str) -> None:
    try:
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        pass


@contextmanager
def own_rabbitmq_vhost():
    """A RabbitMQ vhost for one test (queues of another type than the run's), deleted after;
    yields its AMQP URL and name. Skips (or fails in CI) without rabbitmqctl."""
    require("rabbitmq")
    vhost = f"alliance-test-{uuid.uuid4().hex[:10]}"
    try:
        subprocess.run(["rabbitmqctl", "add_vhost", vhost], capture_output=True, timeout=60,
                       check=True)
        subprocess.run(["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                       capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        if REQUIRE_SERVICES:
            pytest.fail(f"rabbitmqctl cannot make a vhost: {error}")
        pytest.skip("rabbitmqctl cannot make a vhost here")
    base = os.environ.get("ALLIANCE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
    try:
        yield base.rsplit("/", 1)[0].rstrip("/") + "/" + vhost, vhost
    finally:
        drop_rabbitmq_vhost(vhost)


def rabbitmq_queues(vhost: str) -> dict[str, dict]:
    """name → {type, arguments} of every queue of a vhost, as `rabbitmqctl list_queues` sees it."""
    listed = subprocess.run(["rabbitmqctl", "list_queues", "-q", "-p", vhost, "name", "type",
                             "arguments", "--formatter", "json"],
                            capture_output=True, text=True, timeout=60, check=True)
    return {row["name"]: row for row in json.loads(listed.stdout)}


def _service_available(kind: str) -> bool:
    try:
        if kind == "postgres":
            with create_engine(POSTGRES_ADMIN_URL).connect() as conn:
                conn.execute(text("SELECT 1"))
        else:
            from kombu import Connection

            with Connection(AMQP_URL, connect_timeout=3) as connection:
                connection.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


def require(kind: str) -> None:
    """Skip when a server is absent on a developer machine; fail in CI, where it must be up."""
    if not _service_available(kind):
        if REQUIRE_SERVICES:
            pytest.fail(f"{kind} is required (ALLIANCE_TEST_REQUIRE_SERVICES=1) but not reachable")
        pytest.skip(f"{kind} not reachable")


def truncate_all(engine) -> None:
    """Empty every table of a migrated database (the PostgreSQL database is shared by the run)."""
    from service.persistence.tables import metadata

    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} CASCADE"))


DEMO_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TEST_NETWORK = {"allow_private": True, "reason": "the tests' servers listen on loopback"}


def own_inbound_secrets(practice_id: str) -> dict:
    """Inbound secrets of a practice other than northside: `alliance practice apply` refuses
    a secret that another practice already uses."""
    import base64
    import hashlib

    seed = hashlib.sha256(practice_id.encode()).digest()
    return {"webhook_secrets": ["whsec_" + base64.b64encode(seed).decode()],
            "fhir_notifications": {"channel_token": f"channel-token-{seed.hex()[:16]}",
                                   "hub_secret": f"hub-secret-{seed.hex()[16:32]}"}}


def loopback_network():
    """The network settings of a practice whose peers are the tests' loopback servers."""
    from integrations.settings import NetworkSettings

    return NetworkSettings.from_document(TEST_NETWORK)
# A fixed random service key for tests (weak or placeholder keys are refused at start-up).
TEST_SECRET_KEY = "Qm3v9TzKx7LpW2dHr8YfN4cJs6BgUa1E-tRkVo5XiZy0"


class FakeClock:
    """A clock the test moves by hand: reminders and expiry without sleeping."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


def due_jobs_runner(services):
    """A function that runs every job due now, the way the relay and a worker would, without
    a broker, and returns (kind, outcome) per job run; it fails when jobs keep falling due."""
    from service.handlers.registry import JOB_HANDLERS
    from service.handlers.runner import JobRunner
    from service.persistence import outbox

    runner = JobRunner(services, JOB_HANDLERS)

    def run(max_rounds: int = 50) -> list[tuple[str, str]]:
        outcomes = []
        for _ in range(max_rounds):
            with services.engine.begin() as conn:
                jobs = outbox.claim_due(conn, now=services.clock(),
                                        redeliver_after=services.settings.redeliver_after)
            if not jobs:
                return outcomes
            outcomes += [(job.kind, runner(job.id)) for job in jobs]
        raise AssertionError("jobs kept falling due")

    return run


def practice_document(**overrides) -> dict:
    document = {
        "id": "northside",
        "name": "Northside Counseling",
        "timezone": "America/Chicago",
        "webhook_secrets": [DEMO_SECRET],
        "ehr": {"type": "fhir-r4", "base_url": "https://ehr.test/fhir", "auth": {"type": "none"}},
        "delivery": {"channels": ["sms", "email"],
                     "sms": {"account_sid": "AC123", "auth_token": "tok", "from": "+15550001111"},
                     "email": {"smtp_host": "localhost", "smtp_port": 25, "from": "surveys@northside.example"}},
        "fhir_notifications": {"channel_token": "channel-token-0123456789", "hub_secret": "hub-secret-xyz"},
        "survey": {"instrument": "brief-alliance-check", "send_delay_minutes": 0,
                   "reminder_after_hours": 24, "expire_after_hours": 72},
        # The tests' peers (pytest-httpserver, aiosmtpd) listen on loopback.
        "network": TEST_NETWORK,
    }
    document.update(overrides)
    return document




def answer_one_survey(services, channels, run_due, answers: dict, *, session_id: str = "enc-7",
                      patient_id: str = "pat-17") -> None:
    """A signed session.completed, its SMS, and the client's answers; the write-back is left due."""
    from service.demo import session_completed, signed_event
    from service.web import create_app

    client = create_app(services=services).test_client()
    body, headers = signed_event(DEMO_SECRET, session_completed(session_id, patient_id, phone="+15551234567"),
                                 when=datetime.now(timezone.utc))
    assert client.post("/webhooks/northside/events", data=body, headers=headers).status_code == 202
    run_due()
    token = channels["sms"].sent[-1].link.rsplit("/s/", 1)[1]
    assert client.post(f"/api/v1/surveys/{token}/response", json={"answers": answers}).status_code == 201
