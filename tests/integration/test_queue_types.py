"""ALLIANCE_RABBITMQ_QUEUE_TYPE against the real RabbitMQ, each test in a vhost of its own:
quorum queues with a delivery limit and dead-lettering, the start-up error when the broker's
queues have the other type, `alliance broker migrate-queues`, and failover over node URLs."""

from __future__ import annotations

import threading
import time

import pytest
from click.testing import CliRunner
from kombu import Connection

from service.cli import main
from service.handlers.runner import JobRunner
from service.messaging.broker import connect
from service.messaging.consumer import JobConsumer
from service.messaging.declare import QueueMismatch, ensure_topology
from service.messaging.relay import Relay
from service.messaging.topology import DELIVERY_LIMIT, EXCHANGE, dead_queue, work_queues
from service.persistence import outbox
from support import own_rabbitmq_vhost, rabbitmq_queues

pytestmark = pytest.mark.rabbitmq

SERVICE_QUEUES = {"alliance.intake", "alliance.delivery", "alliance.writeback", "alliance.dead"}


@pytest.fixture
def vhost():
    with own_rabbitmq_vhost() as made:
        yield made


def _arguments(row: dict) -> dict:
    return {name: value for name, _type, value in row["arguments"]}


def _cli(url: str, queue_type: str, *args: str, tmp_path):
    env = {"ALLIANCE_BROKER_URL": url, "ALLIANCE_RABBITMQ_QUEUE_TYPE": queue_type,
           "ALLIANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'alliance.db'}",
           "ALLIANCE_VAR_DIR": str(tmp_path / "var")}
    return CliRunner().invoke(main, list(args), env=env)


def test_quorum_setting_declares_every_queue_as_a_quorum_queue(vhost, tmp_path):
    url, name = vhost
    result = _cli(url, "quorum", "broker", "check-queues", tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    queues = rabbitmq_queues(name)
    assert set(queues) == SERVICE_QUEUES
    assert {row["type"] for row in queues.values()} == {"quorum"}
    for work in ("alliance.intake", "alliance.delivery", "alliance.writeback"):
        assert _arguments(queues[work]) == {"x-queue-type": "quorum",
                                            "x-dead-letter-exchange": "alliance.dead",
                                            "x-delivery-limit": DELIVERY_LIMIT}


def test_the_default_stays_classic(vhost, tmp_path):
    url, name = vhost
    assert _cli(url, "", "broker", "check-queues", tmp_path=tmp_path).exit_code == 0
    assert {row["type"] for row in rabbitmq_queues(name).values()} == {"classic"}


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_jobs_flow_through_quorum_queues(services, vhost):
    url, _ = vhost
    ran: list[int] = []
    runner = JobRunner(services, {"survey.send": lambda ctx: ran.append(ctx.job.payload["n"])})
    with services.engine.begin() as conn:
        for n in range(10):
            outbox.enqueue(conn, "survey.send", {"n": n}, now=services.clock())
    relay = Relay(services.engine, connect(url), services.clock, redeliver_after=120,
                  queue_type="quorum")
    assert relay.publish_due() == 10
    consumer = JobConsumer(connect(url), runner, work_queues("quorum"))
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while len(ran) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    consumer.should_stop = True
    thread.join(5)
    assert sorted(ran) == list(range(10))


def test_a_message_delivered_too_often_is_dead_lettered(vhost):
    """The second guard against a poison message: after DELIVERY_LIMIT returns it is parked."""
    url, _ = vhost
    with connect(url) as connection:  # publishes wait for the broker's confirm
        ensure_topology(connection, "quorum")
        connection.Producer().publish({"job_id": "poison"}, exchange=EXCHANGE,
                                      routing_key="alliance.intake", delivery_mode=2)
        channel = connection.channel()
        queue = work_queues("quorum")[0](channel)
        returned = 0
        while returned <= DELIVERY_LIMIT + 5:
            message = _get_eventually(queue, timeout=2 if returned else 10, no_ack=False)
            if message is None:
                break
            message.requeue()  # as a worker that dies holding it would hand it back
            returned += 1
        parked = _get_eventually(dead_queue("quorum")(channel))
    assert returned == DELIVERY_LIMIT + 1
    assert parked is not None and parked.payload == {"job_id": "poison"}


def _get_eventually(queue, timeout: float = 10.0, no_ack: bool = True):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = queue.get(no_ack=no_ack)
        if message is not None:
            return message
        time.sleep(0.1)
    return None


def test_a_worker_refuses_to_start_on_queues_of_the_other_type(vhost, tmp_path):
    url, name = vhost
    assert _cli(url, "classic", "broker", "check-queues", tmp_path=tmp_path).exit_code == 0
    result = _cli(url, "quorum", "worker", tmp_path=tmp_path)
    assert result.exit_code == 1
    assert "alliance.intake: x-queue-type" in result.output
    assert "alliance broker migrate-queues" in result.output
    assert {row["type"] for row in rabbitmq_queues(name).values()} == {"classic"}


def test_ensure_topology_names_every_queue_that_differs(vhost):
    url, _ = vhost
    with Connection(url) as connection:
        ensure_topology(connection, "quorum")
        with pytest.raises(QueueMismatch) as raised:
            ensure_topology(connection, "classic")
    assert [name for name, _ in raised.value.mismatches] == [
        "alliance.intake", "alliance.delivery", "alliance.writeback", "alliance.dead"]


def test_migrate_queues_redeclares_and_keeps_waiting_messages(vhost, tmp_path):
    url, name = vhost
    with connect(url) as connection:
        ensure_topology(connection, "classic")
        for n in range(7):
            connection.Producer().publish({"job_id": f"job-{n}"}, exchange=EXCHANGE,
                                          routing_key="alliance.delivery", delivery_mode=2)
    result = _cli(url, "quorum", "broker", "migrate-queues", tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    assert "alliance.delivery: redeclared as quorum, 7 message(s) moved back" in result.output
    assert {row["type"] for row in rabbitmq_queues(name).values()} == {"quorum"}
    with Connection(url) as connection:
        queue = work_queues("quorum")[1](connection.channel())
        got = sorted(message.payload["job_id"] for message in iter(
            lambda: queue.get(no_ack=True), None))
    assert got == [f"job-{n}" for n in range(7)]
    again = _cli(url, "quorum", "broker", "migrate-queues", tmp_path=tmp_path)
    assert "alliance.delivery: already quorum, 0 message(s) moved back" in again.output


def test_migrate_queues_refuses_while_a_worker_consumes(vhost, tmp_path):
    url, name = vhost
    with Connection(url) as connection:
        ensure_topology(connection, "classic")
        consumer = connection.Consumer(work_queues("classic"), callbacks=[lambda *_: None])
        consumer.consume()
        result = _cli(url, "quorum", "broker", "migrate-queues", tmp_path=tmp_path)
        consumer.cancel()
    assert result.exit_code == 1
    assert "has 1 consumer(s): stop every `alliance worker`" in result.output
    assert {row["type"] for row in rabbitmq_queues(name).values()} == {"classic"}


def test_a_list_of_node_urls_fails_over_to_a_node_that_answers(vhost, tmp_path):
    """The first node is down (nothing listens on its port): connections go to the next."""
    url, name = vhost
    dead_node = "amqp://guest:guest@127.0.0.1:1/" + name
    nodes = f"{dead_node};{url}"
    result = _cli(nodes, "quorum", "broker", "check-queues", tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    assert {row["type"] for row in rabbitmq_queues(name).values()} == {"quorum"}
    for _ in range(4):  # whichever node a connection starts at
        with connect(nodes) as connection:
            connection.ensure_connection(max_retries=2)
            assert connection.as_uri() != Connection(dead_node).as_uri()
