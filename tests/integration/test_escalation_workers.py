"""Escalation with the real outbox relay and queue consumer (`service.runtime.Workers`, as in
`alliance worker` and `alliance serve`), on PostgreSQL + RabbitMQ and on the embedded default
(SQLite + the embedded queue), the clock moved by hand: once due, the Task is in the EHR
within 10 s; once acknowledged, it is completed within 10 s."""

from __future__ import annotations

import time
import uuid

import pytest
from fhir_http_support import FhirHttpServer
from kombu import Connection
from sqlalchemy import select

import support
from integrations.ehr.fake import InMemoryEhr
from service import practices
from service.bootstrap import bootstrap
from service.messaging.topology import DEAD_QUEUE, work_queues
from service.persistence.queries import alert_actions as alert_actions_queries
from service.persistence.tables import rupture_episodes
from service.runtime import Workers
from support import answer_one_survey, practice_document

LOW = {"bond": 2, "goals": 1, "approach": 2, "overall": 1, "tension": True, "tension_intensity": 5}
WITHIN_SECONDS = 10.0


@pytest.fixture
def ehr_store(clock):
    return InMemoryEhr(clock)


@pytest.fixture
def services(database, settings_for, clock, channels, httpserver, ehr_store):
    url, engine = database
    if url.startswith("sqlite"):
        broker = "embedded"
    else:
        support.require("rabbitmq")
        broker = support.AMQP_URL
        with Connection(broker) as connection:  # start from empty queues
            for queue in [*work_queues(), DEAD_QUEUE]:
                queue(connection.default_channel).declare()
                queue(connection.default_channel).purge()
    wired = bootstrap(settings_for(url, broker_url=broker), engine=engine, clock=clock,
                      channel_for=lambda name, _settings: channels[name])
    ehr = FhirHttpServer(httpserver, ehr_store)
    document = practices.validate_document(practice_document(
        ehr={"type": "fhir-r4", "base_url": ehr.base_url, "auth": {"type": "none"}},
        alerts={"escalate_after_hours": 0.02, "escalate_to": "Practitioner/sup-1"}))
    with engine.begin() as conn:
        practices.save(conn, wired.box, document, now=clock())
    return wired


def wait_for(check, timeout: float = WITHIN_SECONDS) -> float:
    """Seconds until `check()` held (fails after `timeout`)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "not done in time"
        time.sleep(0.05)
    return time.monotonic() - started


def test_the_running_worker_escalates_when_due_and_completes_on_acknowledgment(
        services, channels, run_due, clock, ehr_store):
    for number in range(4):
        answer_one_survey(services, channels, run_due, LOW, session_id=f"enc-{number}")
        run_due()
    with services.engine.begin() as conn:
        episode_id = conn.execute(select(rupture_episodes.c.id)).scalar_one()
    workers = Workers(services, consumers=1).start()
    try:
        time.sleep(1.0)
        assert ehr_store.resources("Task") == []  # 0.02 h = 72 s: not due yet
        clock.advance(seconds=73)
        escalated = wait_for(lambda: len(ehr_store.resources("Task")) == 1)
        with services.engine.begin() as conn:
            alert_actions_queries.add(conn, {
                "id": str(uuid.uuid4()), "practice_id": "northside", "episode_id": episode_id,
                "action": "acknowledge", "actor": "Practitioner/clin-9", "source": "smart-view",
                "note": None, "at": clock(), "dedupe_key": None})
        completed = wait_for(lambda: ehr_store.resources("Task")[0]["status"] == "completed")
    finally:
        workers.stop()
    print(f"escalated {escalated:.2f} s after due, completed {completed:.2f} s after the "
          f"acknowledgment ({services.settings.broker_url})")
