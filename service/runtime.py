"""Long-running loops: the outbox relay and the queue consumer, in threads or in
`alliance worker`."""

from __future__ import annotations

import functools
import os
import signal
import threading
import time

import structlog

from service.bootstrap import Services
from service.handlers.escalation import COMPLETION_CHECK_SECONDS, schedule_completions
from service.handlers.registry import JOB_HANDLERS
from service.handlers.retention import schedule_retention
from service.handlers.runner import JobRunner
from service.messaging.broker import connect, purge_delivered
from service.messaging.consumer import JobConsumer
from service.messaging.declare import ensure_topology
from service.messaging.relay import Relay, RelayHealth
from service.messaging.topology import work_queues

log = structlog.get_logger(__name__)


# A consumer spends most of a job waiting (on PostgreSQL commits, the EHR, the SMS provider),
# not computing: more consumers than cores keep the cores busy (docs/scaling.md has the curve).
# Each running job holds one database connection; a process's pool has 20 (10 + 10 overflow),
# and the relay needs one too, so 16 leaves room.
CONSUMERS_PER_CPU = 4
MAX_DEFAULT_CONSUMERS = 16


def default_consumers(cpus: int | None = None) -> int:
    """`alliance worker`'s consumer threads when --consumers is not given."""
    cpus = cpus or os.cpu_count() or 1
    return max(2, min(CONSUMERS_PER_CPU * cpus, MAX_DEFAULT_CONSUMERS))


class Workers:
    """The relay and the consumer, each in its own thread with its own broker connection."""

    def __init__(self, services: Services, *, relay: bool = True, consumers: int = 1):
        self.services = services
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self._consumers: list[JobConsumer] = []
        self.relay = relay
        self.consumer_count = consumers

    def start(self) -> Workers:
        if self.relay:
            # /readyz of this process reports a relay that cannot publish.
            self.services.relay_health = RelayHealth()
            self._schedule_retention()
            self._spawn("relay", self._run_relay)
        for index in range(self.consumer_count):
            self._spawn(f"consumer-{index}", self._run_consumer)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for consumer in self._consumers:
            consumer.should_stop = True
        for thread in self.threads:
            thread.join(timeout)

    def _schedule_retention(self) -> None:
        """Queue the daily retention run (each run queues the next; this starts the chain, and
        every worker doing so still makes one run a day)."""
        try:
            with self.services.engine.begin() as conn:
                schedule_retention(conn, self.services.clock())
        except Exception as error:  # the database is down: the relay will say so too
            log.warning("retention run not scheduled", error=type(error).__name__)

    def _spawn(self, name: str, target) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _run_relay(self) -> None:
        settings = self.services.settings
        relay = Relay(self.services.engine, connect(settings.kombu_url), self.services.clock,
                      redeliver_after=settings.redeliver_after,
                      health=self.services.relay_health,
                      queue_type=settings.rabbitmq_queue_type)
        housekeeping = None
        if settings.embedded_broker:
            housekeeping = functools.partial(purge_delivered, settings.embedded_queue_file)
        # Escalation Tasks whose rupture was acknowledged or repaired are completed from here.
        relay.run(self.stop_event, settings.relay_interval, housekeeping,
                  checks=functools.partial(schedule_completions, self.services),
                  checks_every=COMPLETION_CHECK_SECONDS)

    def _run_consumer(self) -> None:
        runner = JobRunner(self.services, JOB_HANDLERS)
        settings = self.services.settings
        queues = work_queues(settings.rabbitmq_queue_type)
        while not self.stop_event.is_set():
            consumer = JobConsumer(connect(settings.kombu_url), runner, queues)
            self._consumers.append(consumer)
            try:
                consumer.run()
            except Exception as error:
                # A database outage mid-job lands here: the message was not acked, so the
                # broker (or the relay's redelivery) hands it out again after we reconnect.
                log.error("consumer stopped; restarting", error=type(error).__name__)
                self.stop_event.wait(2.0)
            finally:
                self._consumers.remove(consumer)
                consumer.connection.release()


def declare_queues(settings) -> None:
    """At start-up, declare the exchanges and queues: a broker whose queues were declared with
    another type raises QueueMismatch now, not in every consumer thread later. A broker that is
    down is no reason not to start (the relay and the consumers keep trying)."""
    with connect(settings.kombu_url) as connection:
        try:
            connection.ensure_connection(max_retries=2, timeout=10)
        except Exception as error:
            log.warning("broker not reachable at start-up", error=type(error).__name__)
            return
        ensure_topology(connection, settings.rabbitmq_queue_type)


def run_forever(services: Services, *, relay: bool = True, consumers: int = 1) -> None:
    """`alliance worker`: run until SIGTERM or SIGINT, then finish the current job and exit."""
    workers = Workers(services, relay=relay, consumers=consumers).start()
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    log.info("worker started", relay=relay, consumers=consumers)
    while not stopping.is_set():
        time.sleep(0.2)
    workers.stop()
    log.info("worker stopped")
