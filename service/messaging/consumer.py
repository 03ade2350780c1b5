"""The queue consumer: decode the job id, run the job, then ack (at-least-once delivery)."""

from __future__ import annotations

import structlog
from kombu import Connection
from kombu.mixins import ConsumerMixin

from service.messaging.topology import work_queues

log = structlog.get_logger(__name__)


class JobConsumer(ConsumerMixin):
    def __init__(self, connection: Connection, run_job, queues=None, prefetch: int = 8):
        self.connection = connection
        self.run_job = run_job
        self.queues = queues or work_queues()
        self.prefetch = prefetch

    def get_consumers(self, Consumer, channel):
        return [Consumer(queues=self.queues, on_message=self.on_message,
                         accept=["json"], prefetch_count=self.prefetch)]

    def on_message(self, message) -> None:
        try:
            body = message.decode()
            job_id = body["job_id"]
            if not isinstance(job_id, str):
                raise TypeError("job_id is not a string")
        except Exception as error:
            # Not ours or corrupt: park it in the dead-letter queue rather than loop on it.
            log.error("undecodable message rejected", error=type(error).__name__)
            message.reject(requeue=False)
            return
        # run_job records its own outcome (done, retry later, dead letter) in the outbox;
        # if it raises, the message is not acked and the broker (or the relay) redelivers it.
        self.run_job(job_id)
        message.ack()

    def on_decode_error(self, message, exc):
        log.error("undecodable message rejected", error=type(exc).__name__)
        message.reject(requeue=False)
