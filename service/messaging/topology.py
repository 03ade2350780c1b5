"""Exchanges and queues. Messages carry only a job id: the job itself lives in the outbox table,
so no personal data passes through the broker."""

from __future__ import annotations

from kombu import Exchange, Queue

EXCHANGE = Exchange("alliance", type="direct", durable=True)
DEAD_EXCHANGE = Exchange("alliance.dead", type="fanout", durable=True)

# One queue per kind of work, so a slow EHR never holds up survey delivery.
QUEUE_NAMES = ("alliance.intake", "alliance.delivery", "alliance.writeback")
ROUTES = {
    "event.process": "alliance.intake",
    "ehr.poll": "alliance.intake",
    "survey.send": "alliance.delivery",
    "survey.remind": "alliance.delivery",
    "survey.expire": "alliance.delivery",
    "response.writeback": "alliance.writeback",
    "survey.missed": "alliance.writeback",
}


def work_queues() -> list[Queue]:
    """Durable queues whose rejected (undecodable) messages go to the dead-letter exchange."""
    return [
        Queue(name, EXCHANGE, routing_key=name, durable=True,
              queue_arguments={"x-dead-letter-exchange": DEAD_EXCHANGE.name})
        for name in QUEUE_NAMES
    ]


DEAD_QUEUE = Queue("alliance.dead", DEAD_EXCHANGE, durable=True)


def route(kind: str) -> str:
    return ROUTES[kind]
