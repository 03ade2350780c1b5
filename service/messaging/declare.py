"""Declaring the queues at start-up, and moving them to another queue type.

RabbitMQ refuses to redeclare an existing queue with other arguments (PRECONDITION_FAILED), and
a classic queue cannot become a quorum queue in place. `ensure_topology` turns that refusal into
an error that names the queue and what to do; `migrate_queues` (`alliance broker
migrate-queues`) moves the waiting messages aside, redeclares the queue and moves them back.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from amqp.exceptions import NotFound, PreconditionFailed
from kombu import Connection, Queue

from service.messaging.topology import all_queues

HOLDING_SUFFIX = ".migrating"
INEQUIVALENT = re.compile(r"inequivalent arg '([^']+)'.*?(received .*)$")


class QueueMismatch(Exception):
    """Queues exist on the broker with other arguments than this process declares."""

    def __init__(self, queue_type: str, mismatches: list[tuple[str, str]]):
        self.mismatches = mismatches
        lines = [f"RabbitMQ already has these queues with other arguments than "
                 f"ALLIANCE_RABBITMQ_QUEUE_TYPE={queue_type} declares:"]
        lines += [f"  - {name}: {detail}" for name, detail in mismatches]
        lines += ["A queue cannot change its type in place. Stop every `alliance worker`, then run "
                  "`alliance broker migrate-queues` (it moves the waiting messages aside, "
                  "redeclares the queues and moves the messages back), or set "
                  "ALLIANCE_RABBITMQ_QUEUE_TYPE back to what the queues are."]
        super().__init__("\n".join(lines))


class MigrationRefused(Exception):
    """The queues cannot be migrated safely now; the message says why."""


@dataclass(frozen=True)
class Migrated:
    queue: str
    redeclared: bool
    messages_moved: int


def _explain(error: PreconditionFailed) -> str:
    """'x-queue-type: received … but current is …' from the broker's reply text."""
    found = INEQUIVALENT.search(str(error))
    return f"{found.group(1)}: {found.group(2)}" if found else str(error)


def _mismatch(connection: Connection, queue: Queue) -> str | None:
    """Declare one queue on a channel of its own; the broker's objection, or None."""
    channel = connection.channel()
    try:
        queue(channel).declare()
        return None
    except PreconditionFailed as error:
        return _explain(error)
    finally:
        with contextlib.suppress(Exception):
            channel.close()


def ensure_topology(connection: Connection, queue_type: str) -> None:
    """Declare exchanges and queues; QueueMismatch names every queue the broker refused."""
    mismatches = [(queue.name, problem) for queue in all_queues(queue_type)
                  if (problem := _mismatch(connection, queue))]
    if mismatches:
        raise QueueMismatch(queue_type, mismatches)


def migrate_queues(connection: Connection, queue_type: str) -> list[Migrated]:
    """Redeclare every queue whose arguments differ, keeping its messages; safe to run again."""
    done = []
    for queue in all_queues(queue_type):
        holding = queue.name + HOLDING_SUFFIX
        redeclared = bool(_mismatch(connection, queue))
        if redeclared:
            _refuse_if_consumed(connection, queue.name)
            _drain_into_holding(connection, queue.name, holding)
            if problem := _mismatch(connection, queue):
                raise MigrationRefused(f"{queue.name} could not be redeclared: {problem}")
        moved = 0
        if _exists(connection, holding):  # this run's, or one interrupted before
            moved = _move(connection, holding, queue.name)
            _delete(connection, holding, if_empty=True)
        done.append(Migrated(queue.name, redeclared, moved))
    return done


def _refuse_if_consumed(connection: Connection, name: str) -> None:
    with _channel(connection) as channel:
        _, _, consumers = channel.queue_declare(name, passive=True)
    if consumers:
        raise MigrationRefused(f"{name} has {consumers} consumer(s): stop every `alliance worker` "
                               "(and `alliance serve` with workers) first, then run this again")


def _drain_into_holding(connection: Connection, name: str, holding: str) -> None:
    with _channel(connection) as channel:
        channel.queue_declare(holding, durable=True, auto_delete=False)
    _move(connection, name, holding)
    try:
        _delete(connection, name, if_empty=True)
    except PreconditionFailed:
        raise MigrationRefused(f"messages keep arriving in {name}: stop every `alliance worker` "
                               "(the outbox relays publish into it) and run this again") from None


def _move(connection: Connection, source: str, target: str) -> int:
    """Every message from one queue to another: published (confirmed) before it is acked."""
    moved = 0
    with _channel(connection) as channel:
        producer = connection.Producer(channel)
        while (message := Queue(source, no_declare=True)(channel).get(no_ack=False)) is not None:
            producer.publish(message.body, exchange="", routing_key=target,
                             content_type=message.content_type,
                             content_encoding=message.content_encoding,
                             headers=message.headers, delivery_mode=2)
            message.ack()
            moved += 1
    return moved


def _exists(connection: Connection, name: str) -> bool:
    try:
        with _channel(connection) as channel:
            channel.queue_declare(name, passive=True)
        return True
    except NotFound:
        return False


def _delete(connection: Connection, name: str, *, if_empty: bool) -> None:
    with _channel(connection) as channel:
        channel.queue_delete(name, if_empty=if_empty)


@contextlib.contextmanager
def _channel(connection: Connection):
    channel = connection.channel()
    try:
        yield channel
    finally:
        with contextlib.suppress(Exception):
            channel.close()
