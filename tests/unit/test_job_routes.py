"""Every kind of job a handler runs has a queue: the relay publishes by kind, and a kind without
a route would stop it publishing anything (the batch is put back and claimed again)."""

from __future__ import annotations

from service.handlers.registry import JOB_HANDLERS
from service.messaging.topology import QUEUE_NAMES, ROUTES, route


def test_every_job_kind_is_routed_to_a_work_queue():
    assert set(JOB_HANDLERS) <= set(ROUTES)
    assert {route(kind) for kind in JOB_HANDLERS} <= set(QUEUE_NAMES)
