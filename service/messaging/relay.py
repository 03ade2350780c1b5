"""The outbox relay: publishes due jobs (new, scheduled, retried or stalled) to the broker."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from kombu import Connection
from sqlalchemy import Engine

from service.messaging.broker import describe_broker, what_to_do
from service.messaging.topology import EXCHANGE, all_queues, route
from service.persistence import outbox

log = structlog.get_logger(__name__)

RETRY_POLICY = {"interval_start": 0, "interval_step": 1, "interval_max": 5, "max_retries": 3}
# A relay that keeps failing says so once, then again at most this often (not every round).
REPEAT_WARNING_SECONDS = 60.0


@dataclass
class RelayHealth:
    """How the last publishing round of this process's relay went, for /readyz.

    Without it a relay that cannot publish (a missing queue folder, RabbitMQ down) looks ready:
    webhooks are accepted and stored, but no survey ever goes out.
    """

    problem: str | None = None   # None: the last round published (or had nothing to publish)
    failed_rounds: int = 0
    _last_warning: float = float("-inf")

    def succeeded(self) -> None:
        if self.problem is not None:
            log.info("relay publishing again", after_failed_rounds=self.failed_rounds)
        self.problem, self.failed_rounds = None, 0

    def failed(self, broker_url: str, error: Exception) -> None:
        self.failed_rounds += 1
        self.problem = (f"the outbox relay cannot publish to {describe_broker(broker_url)} "
                        f"({type(error).__name__}): {what_to_do(broker_url)}")
        now = time.monotonic()
        if now - self._last_warning >= REPEAT_WARNING_SECONDS:
            self._last_warning = now
            log.warning("relay publish failed", problem=self.problem,
                        failed_rounds=self.failed_rounds)


class Relay:
    def __init__(self, engine: Engine, connection: Connection, clock: Callable, *,
                 redeliver_after: float, batch: int = 200, health: RelayHealth | None = None,
                 queue_type: str = "classic"):
        self.engine = engine
        self.queues = all_queues(queue_type)
        self.connection = connection
        self.clock = clock
        self.redeliver_after = redeliver_after
        self.batch = batch
        self.health = health or RelayHealth()
        self._declared = False

    def publish_due(self) -> int:
        """Claim and publish one batch; returns how many jobs went out."""
        with self.engine.begin() as conn:
            jobs = outbox.claim_due(conn, now=self.clock(), redeliver_after=self.redeliver_after,
                                    limit=self.batch)
        if not jobs:
            return 0
        sent: list[str] = []
        try:
            producer = self.connection.Producer(serializer="json")
            if not self._declared:
                for queue in self.queues:
                    queue(self.connection.default_channel).declare()
                self._declared = True
            for job in jobs:
                producer.publish(
                    {"job_id": job.id, "kind": job.kind}, exchange=EXCHANGE,
                    routing_key=route(job.kind), delivery_mode=2, retry=True,
                    retry_policy=RETRY_POLICY,
                )
                sent.append(job.id)
        except Exception as error:  # broker down: put the rest back and try again next round
            unsent = [job.id for job in jobs if job.id not in sent]
            with self.engine.begin() as conn:
                outbox.release(conn, unsent)
            self._declared = False
            self.health.failed(self.connection.as_uri(), error)
            broken, self.connection = self.connection, self.connection.clone()
            with contextlib.suppress(Exception):
                broken.release()
            raise
        self.health.succeeded()
        return len(sent)

    def run(self, stop: threading.Event, interval: float,
            housekeeping: Callable[[], object] | None = None,
            housekeeping_every: float = 60.0,
            checks: Callable[[], object] | None = None, checks_every: float = 2.0) -> None:
        """Publish until `stop` is set; a broker outage only slows the loop down. `checks`
        (the scheduler's: jobs that fall due on a state, not a time) run every `checks_every`
        seconds, before the round that publishes what they queued."""
        backoff = interval
        next_housekeeping = time.monotonic() + housekeeping_every
        next_checks = time.monotonic()
        while not stop.is_set():
            if housekeeping and time.monotonic() >= next_housekeeping:
                next_housekeeping = time.monotonic() + housekeeping_every
                with contextlib.suppress(Exception):
                    housekeeping()
            if checks and time.monotonic() >= next_checks:
                next_checks = time.monotonic() + checks_every
                try:
                    checks()
                except Exception as error:  # the database is down: publishing says so too
                    log.warning("scheduler check failed", error=type(error).__name__)
            try:
                published = self.publish_due()
                backoff = interval
            except Exception:
                published = 0
                backoff = min(backoff * 2, 10.0)
            if published < self.batch:
                stop.wait(backoff)
