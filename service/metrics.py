"""Prometheus metrics (exposed at GET /metrics). Labels are kinds and outcomes, never ids.

Under gunicorn with several workers, set PROMETHEUS_MULTIPROC_DIR to an empty folder so the
workers' figures are added up (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import structlog
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

log = structlog.get_logger(__name__)

EVENTS = Counter("alliance_events_total", "Webhook events recorded, by source and outcome",
                 ["source", "outcome"])
JOBS = Counter("alliance_jobs_total", "Outbox jobs run, by kind and outcome", ["kind", "outcome"])
JOB_SECONDS = Histogram("alliance_job_seconds", "Time to run one outbox job", ["kind"],
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
CDS_REQUESTS = Counter("alliance_cds_requests_total",
                       "CDS Hooks requests by endpoint and outcome (ok, status, failed check)",
                       ["endpoint", "outcome"])


class AlertCounts:
    """`alliance_ruptures{practice,state}` and `alliance_alert_actions{practice,action,source}`:
    gauges read from the database at scrape time, so every process (web workers, the worker)
    reports the same figures and nothing is lost when one restarts. Labels are practice ids,
    states, actions and sources (our own words), never a client's id.

    `counts` runs one grouped statement (queries/governance.alert_counts) bounded to LIMIT rows;
    when the database cannot answer, these two families are left out of the scrape (the
    process metrics still go out) and the scrape says so in `alliance_alert_counts_up`.
    """

    LIMIT = 10_000
    STATES = {"open": "open", "resolved": "repaired"}

    def __init__(self, counts):
        self.counts = counts  # () -> [(kind, practice_id, name, source, count)]

    def describe(self):
        return [*self._families(), self._up(None)]

    def collect(self):
        ruptures, actions = self._families()
        try:
            rows = self.counts(self.LIMIT)
        except Exception as error:  # the database is down: the rest of the scrape still matters
            log.warning("alert counts not read for /metrics", error=type(error).__name__)
            return [self._up(0)]
        for kind, practice, name, source, count in rows:
            if kind == "ruptures":
                ruptures.add_metric([practice, self.STATES.get(name, name)], count)
            else:
                actions.add_metric([practice, name, source], count)
        return [ruptures, actions, self._up(1)]

    @staticmethod
    def _families():
        return [GaugeMetricFamily("alliance_ruptures", "Rupture episodes stored, by practice "
                                  "and state (open, repaired)", labels=["practice", "state"]),
                GaugeMetricFamily("alliance_alert_actions", "Actions taken on alerts, by "
                                  "practice, action (acknowledge, snooze, escalate, "
                                  "complete-escalation) and source",
                                  labels=["practice", "action", "source"])]

    @staticmethod
    def _up(value):
        family = GaugeMetricFamily("alliance_alert_counts_up", "1 when the alert counts above "
                                   "were read from the database in this scrape, 0 when not")
        if value is not None:
            family.add_metric([], value)
        return family
