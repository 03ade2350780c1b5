"""Runs one outbox job with at-least-once semantics and records its outcome.

A handler reads what it needs, makes its external calls outside any transaction, then writes
its effects in one transaction that also marks the job done (`JobContext.complete`). If another
worker finished the same job first, that transaction is rolled back, so effects happen once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import structlog
from sqlalchemy import Connection

from integrations.ehr.errors import EhrConflict, EhrPermanentError, EhrTransientError
from service.handlers.ports import Ports
from service.metrics import JOB_SECONDS, JOBS
from service.persistence import outbox
from service.persistence.outbox import Job

log = structlog.get_logger(__name__)


T = TypeVar("T")


class RetryLater(Exception):
    """A transient failure: try the job again after `delay` seconds (None: exponential backoff)."""

    def __init__(self, reason: str, delay: float | None = None, details: dict | None = None):
        super().__init__(reason)
        self.delay = delay
        self.details = details or {}


class PermanentFailure(Exception):
    """The job can never succeed as it is: it goes to the dead-letter store with `details`."""

    def __init__(self, reason: str, details: dict | None = None):
        super().__init__(reason)
        self.details = details or {}


def ehr_call(call: Callable[[], T], what: str, where: dict) -> T:
    """An EHR write, its answer mapped to what the job does next: a conflict still there after
    the writer's re-reads, or an EHR that is unavailable, is retried later; a refusal goes to the
    dead-letter store with the EHR's OperationOutcome (`alliance dlq show`)."""
    try:
        return call()
    except EhrConflict as error:
        raise RetryLater(f"EHR {what} changed while we wrote it", None, {
            **where, "http_status": error.status, "operation_outcome": error.operation_outcome,
        }) from None
    except EhrTransientError as error:
        raise RetryLater(f"EHR unavailable while writing {what}", error.retry_after,
                         where) from None
    except EhrPermanentError as error:
        raise PermanentFailure(f"EHR refused {what}", {
            **where, "http_status": error.status, "operation_outcome": error.operation_outcome,
        }) from None


class AlreadyFinished(Exception):
    """Another worker completed this job first; the current transaction must roll back."""


@dataclass
class JobContext:
    services: Ports
    job: Job
    completed: bool = False

    def complete(self, conn: Connection) -> None:
        """Mark the job done inside the caller's transaction (with the job's effects)."""
        if not outbox.finish(conn, self.job.id, now=self.services.clock()):
            raise AlreadyFinished(self.job.id)
        self.completed = True

    def enqueue(self, conn: Connection, kind: str, payload: dict, **kwargs) -> str | None:
        kwargs.setdefault("practice_id", self.job.practice_id)
        return outbox.enqueue(conn, kind, payload, now=self.services.clock(), **kwargs)


Handler = Callable[[JobContext], None]


def backoff_seconds(attempts: int, base: float = 2.0, cap: float = 900.0) -> float:
    """Exponential backoff with full jitter: 2 s, 4 s, 8 s … up to 15 minutes."""
    return random.uniform(0.5, 1.0) * min(cap, base * (2 ** attempts))


class JobRunner:
    def __init__(self, services: Ports, handlers: dict[str, Handler]):
        self.services = services
        self.handlers = handlers

    def __call__(self, job_id: str) -> str:
        """Run a job by id; returns what happened (for logs and tests)."""
        with self.services.engine.begin() as conn:
            job = outbox.load(conn, job_id)
        if job is None or job.status not in (outbox.PENDING, outbox.PUBLISHED):
            return "skipped"
        structlog.contextvars.bind_contextvars(job_id=job.id, job_kind=job.kind,
                                               attempt=job.attempts + 1)
        started = time.perf_counter()
        outcome = "error"
        try:
            outcome = self._run(job)
            return outcome
        finally:
            elapsed = time.perf_counter() - started
            JOBS.labels(job.kind, outcome).inc()
            JOB_SECONDS.labels(job.kind).observe(elapsed)
            log.info("job finished", outcome=outcome, duration_ms=round(elapsed * 1000, 1))
            structlog.contextvars.unbind_contextvars("job_id", "job_kind", "attempt")

    def _run(self, job: Job) -> str:
        handler = self.handlers.get(job.kind)
        if handler is None:
            return self._dead(job, {"reason": f"no handler for job kind {job.kind}"})
        context = JobContext(self.services, job)
        try:
            handler(context)
        except AlreadyFinished:
            return "duplicate"
        except RetryLater as error:
            return self._retry(job, error.delay, {"reason": str(error), **error.details})
        except PermanentFailure as error:
            return self._dead(job, {"reason": str(error), **error.details})
        except Exception as error:  # a bug or an outage we did not foresee: retry, bounded
            log.exception("job failed unexpectedly")
            return self._retry(job, None, {"reason": f"unexpected {type(error).__name__}"})
        if not context.completed:
            with self.services.engine.begin() as conn:
                outbox.finish(conn, job.id, now=self.services.clock())
        return "done"

    def _retry(self, job: Job, delay: float | None, error: dict) -> str:
        now = self.services.clock()
        settings = self.services.settings
        too_old = now - job.created_at > timedelta(hours=settings.max_job_age_hours)
        if job.attempts + 1 >= settings.max_attempts or too_old:
            error = {**error, "gave_up": f"after {job.attempts + 1} attempts"}
            return self._dead(job, error)
        wait = delay if delay is not None else backoff_seconds(job.attempts)
        with self.services.engine.begin() as conn:
            outbox.retry_later(conn, job.id, now=now, delay=wait, error=error)
        log.warning("job will be retried", reason=error.get("reason"), delay_s=round(wait, 1))
        return "retry"

    def _dead(self, job: Job, error: dict) -> str:
        with self.services.engine.begin() as conn:
            outbox.dead_letter(conn, job.id, now=self.services.clock(), error=error)
        log.error("job dead-lettered", reason=error.get("reason"), status=error.get("http_status"))
        return "dead"
