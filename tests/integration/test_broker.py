"""The relay and the consumer over a real broker: RabbitMQ, and the embedded SQLite queue."""

from __future__ import annotations

import threading
import time

import pytest
from kombu import Connection

from service.handlers.runner import JobRunner
from service.messaging.broker import connect
from service.messaging.consumer import JobConsumer
from service.messaging.relay import Relay
from service.messaging.topology import DEAD_QUEUE, EXCHANGE, work_queues
from service.persistence import outbox
from support import AMQP_URL, require


@pytest.fixture(params=["embedded", "rabbitmq"])
def broker_url(request, tmp_path):
    if request.param == "rabbitmq":
        require("rabbitmq")
        with Connection(AMQP_URL) as connection:  # start from empty queues
            for queue in [*work_queues(), DEAD_QUEUE]:
                queue(connection.default_channel).declare()
                queue(connection.default_channel).purge()
        return AMQP_URL
    return f"sqla+sqlite:///{tmp_path / 'queue.db'}"


def run_consumer_until(connection_url, runner, done, timeout=15.0):
    consumer = JobConsumer(connect(connection_url), runner)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)
    consumer.should_stop = True
    thread.join(5)
    consumer.connection.release()


def test_relay_publishes_and_consumer_runs_each_job_once(services, broker_url):
    ran: list[str] = []

    def record(ctx):
        ran.append(ctx.job.payload["n"])

    runner = JobRunner(services, {"survey.send": record, "response.writeback": record})
    with services.engine.begin() as conn:
        for n in range(20):
            kind = "survey.send" if n % 2 else "response.writeback"
            outbox.enqueue(conn, kind, {"n": n}, now=services.clock())
    relay = Relay(services.engine, connect(broker_url), services.clock, redeliver_after=120)
    assert relay.publish_due() == 20
    assert relay.publish_due() == 0  # claimed jobs are not published twice
    run_consumer_until(broker_url, runner, lambda: len(ran) >= 20)
    assert sorted(ran) == list(range(20))
    with services.engine.begin() as conn:
        assert {outbox.load(conn, j).status for j in _ids(conn)} == {"done"}


def test_a_lost_message_is_published_again_and_run_once(services, broker_url, clock):
    ran: list[str] = []
    runner = JobRunner(services, {"survey.send": lambda ctx: ran.append(ctx.job.id)})
    with services.engine.begin() as conn:
        job_id = outbox.enqueue(conn, "survey.send", {}, now=clock())
    relay = Relay(services.engine, connect(broker_url), services.clock, redeliver_after=120)
    relay.publish_due()
    # The broker loses the message (a crash of the embedded queue, a purged queue).
    with connect(broker_url) as connection:
        for queue in work_queues():
            queue(connection.default_channel).purge()
    assert relay.publish_due() == 0
    clock.advance(seconds=121)
    assert relay.publish_due() == 1
    # The redelivered message and a stray duplicate both arrive: the job still runs once.
    relay.publish_due()
    clock.advance(seconds=121)
    relay.publish_due()
    run_consumer_until(broker_url, runner, lambda: len(ran) >= 1, timeout=5)
    assert ran == [job_id]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_an_undecodable_message_goes_to_the_dead_letter_queue(services):
    """RabbitMQ only: the embedded queue has no dead-letter exchange (the outbox is its record)."""
    require("rabbitmq")
    broker_url = AMQP_URL
    with Connection(broker_url) as connection:
        DEAD_QUEUE(connection.default_channel).declare()
        DEAD_QUEUE(connection.default_channel).purge()
    with Connection(broker_url) as connection:
        producer = connection.Producer()
        producer.publish("not a job", exchange=EXCHANGE, routing_key="alliance.intake",
                         declare=work_queues(), serializer="json")
    runner = JobRunner(services, {})
    consumer = JobConsumer(connect(broker_url), runner)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    got = []
    with Connection(broker_url) as connection:
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            message = DEAD_QUEUE(connection.default_channel).get(no_ack=True)
            if message:
                got.append(message.body)
            time.sleep(0.1)
    consumer.should_stop = True
    thread.join(5)
    assert got, "the rejected message should be in alliance.dead"


def _ids(conn):
    from sqlalchemy import select

    from service.persistence.tables import outbox as table

    return [row[0] for row in conn.execute(select(table.c.id))]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_the_embedded_queue_forgets_delivered_messages_but_keeps_waiting_ones(services, tmp_path):
    from service.messaging.broker import purge_delivered

    url = f"sqla+sqlite:///{tmp_path / 'queue.db'}"
    ran: list[str] = []
    runner = JobRunner(services, {"survey.send": lambda ctx: ran.append(ctx.job.id)})
    with services.engine.begin() as conn:
        for _ in range(3):
            outbox.enqueue(conn, "survey.send", {}, now=services.clock())
    relay = Relay(services.engine, connect(url), services.clock, redeliver_after=120)
    relay.publish_due()
    run_consumer_until(url, runner, lambda: len(ran) >= 3)
    with services.engine.begin() as conn:
        outbox.enqueue(conn, "survey.send", {}, now=services.clock())
    relay.publish_due()  # one message waits in the queue, nobody consumes it
    assert purge_delivered(tmp_path / "queue.db") == 3
    assert purge_delivered(tmp_path / "queue.db") == 0
    with connect(url) as connection:
        waiting = [q(connection.default_channel).queue_declare(passive=True).message_count
                   for q in work_queues()]
    assert sum(waiting) == 1
