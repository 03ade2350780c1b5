"""The outbox relay: publishes due jobs (new, scheduled, retried or stalled) to the broker."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable

import structlog
from kombu import Connection
from sqlalchemy import Engine

from service.messaging.topology import DEAD_QUEUE, EXCHANGE, route, work_queues
from service.persistence import outbox

log = structlog.get_logger(__name__)

RETRY_POLICY = {"interval_start": 0, "interval_step": 1, "interval_max": 5, "max_retries": 3}


class Relay:
    def __init__(self, engine: Engine, connection: Connection, clock: Callable, *,
                 redeliver_after: float, batch: int = 200):
        self.engine = engine
        self.connection = connection
        self.clock = clock
        self.redeliver_after = redeliver_after
        self.batch = batch
        self._declared = False

    def publish_due(self) -> int:
        """Claim and publish one batch; returns how many jobs went out."""
        with self.engine.begin() as conn:
            jobs = outbox.claim_due(conn, now=self.clock(), redeliver_after=self.redeliver_after,
                                    limit=self.batch)
        if not jobs:
            return 0
        sent = []
        try:
            producer = self.connection.Producer(serializer="json")
            if not self._declared:
                for queue in [*work_queues(), DEAD_QUEUE]:
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
            log.warning("relay publish failed", error=type(error).__name__, unsent=len(unsent))
            broken, self.connection = self.connection, self.connection.clone()
            with contextlib.suppress(Exception):
                broken.release()
            raise
        return len(sent)

    def run(self, stop: threading.Event, interval: float,
            housekeeping: Callable[[], object] | None = None, housekeeping_every: float = 60.0) -> None:
        """Publish until `stop` is set; a broker outage only slows the loop down."""
        backoff = interval
        next_housekeeping = time.monotonic() + housekeeping_every
        while not stop.is_set():
            if housekeeping and time.monotonic() >= next_housekeeping:
                next_housekeeping = time.monotonic() + housekeeping_every
                with contextlib.suppress(Exception):
                    housekeeping()
            try:
                published = self.publish_due()
                backoff = interval
            except Exception:
                published = 0
                backoff = min(backoff * 2, 10.0)
            if published < self.batch:
                stop.wait(backoff)
