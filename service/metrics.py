"""Prometheus metrics (exposed at GET /metrics). Labels are kinds and outcomes, never ids.

Under gunicorn with several workers, set PROMETHEUS_MULTIPROC_DIR to an empty folder so the
workers' figures are added up (prometheus-client's multiprocess mode)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS = Counter("alliance_events_total", "Webhook events recorded, by source and outcome",
                 ["source", "outcome"])
JOBS = Counter("alliance_jobs_total", "Outbox jobs run, by kind and outcome", ["kind", "outcome"])
JOB_SECONDS = Histogram("alliance_job_seconds", "Time to run one outbox job", ["kind"],
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
CDS_REQUESTS = Counter("alliance_cds_requests_total",
                       "CDS Hooks requests by endpoint and outcome (ok, status, failed check)",
                       ["endpoint", "outcome"])
