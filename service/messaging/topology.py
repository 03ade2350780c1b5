"""Exchanges and queues. Messages carry only a job id: the job itself lives in the outbox table,
so no personal data passes through the broker.

Queues are classic durable queues by default, or quorum queues (ALLIANCE_RABBITMQ_QUEUE_TYPE)
on a RabbitMQ cluster: replicated through Raft, they keep every confirmed message while a
majority of the nodes runs.
"""

from __future__ import annotations

from kombu import Exchange, Queue

EXCHANGE = Exchange("alliance", type="direct", durable=True)
DEAD_EXCHANGE = Exchange("alliance.dead", type="fanout", durable=True)

QUEUE_TYPES = ("classic", "quorum")

# One queue per kind of work, so a slow EHR never holds up survey delivery.
QUEUE_NAMES = ("alliance.intake", "alliance.delivery", "alliance.writeback")
DEAD_QUEUE_NAME = "alliance.dead"
ROUTES = {
    "event.process": "alliance.intake",
    "ehr.poll": "alliance.intake",
    "retention.run": "alliance.intake",
    "survey.send": "alliance.delivery",
    "survey.remind": "alliance.delivery",
    "survey.expire": "alliance.delivery",
    "response.writeback": "alliance.writeback",
    "survey.missed": "alliance.writeback",
    "escalation.due": "alliance.writeback",
    "escalation.complete": "alliance.writeback",
    "escalation.email": "alliance.delivery",
}

# Quorum queues count deliveries: a message handed out this many times without an ack (a job
# that kills its worker every time) goes to the dead-letter queue instead of looping forever.
# The outbox stays the record of the job: it is published again after ALLIANCE_REDELIVER_AFTER
# and dead-lettered in the database after ALLIANCE_MAX_ATTEMPTS failures. High enough that a
# worker restarting every 2 s through a short database outage does not reach it in a minute.
DELIVERY_LIMIT = 50


def _type_arguments(queue_type: str) -> dict:
    if queue_type not in QUEUE_TYPES:
        raise ValueError(f"queue type must be one of {', '.join(QUEUE_TYPES)}, got {queue_type!r}")
    if queue_type == "quorum":
        return {"x-queue-type": "quorum"}
    return {}


def work_queues(queue_type: str = "classic") -> list[Queue]:
    """Durable queues whose rejected (undecodable) messages go to the dead-letter exchange."""
    arguments = {**_type_arguments(queue_type), "x-dead-letter-exchange": DEAD_EXCHANGE.name}
    if queue_type == "quorum":
        arguments["x-delivery-limit"] = DELIVERY_LIMIT
    return [Queue(name, EXCHANGE, routing_key=name, durable=True, queue_arguments=arguments)
            for name in QUEUE_NAMES]


def dead_queue(queue_type: str = "classic") -> Queue:
    """Where rejected messages are parked (nothing consumes it; `alliance dlq` reads the outbox)."""
    return Queue(DEAD_QUEUE_NAME, DEAD_EXCHANGE, durable=True,
                 queue_arguments=_type_arguments(queue_type) or None)


def all_queues(queue_type: str = "classic") -> list[Queue]:
    return [*work_queues(queue_type), dead_queue(queue_type)]


DEAD_QUEUE = dead_queue()


def route(kind: str) -> str:
    return ROUTES[kind]
