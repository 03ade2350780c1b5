"""Retention (CONTRACT §11): deleting what is kept no longer, from `alliance retention run` and
daily from the worker, as the recurring outbox job `retention.run`.

The schedule lives in the outbox, as FHIR polling's does: each run is a job due at
RUN_AT_HOUR_UTC, keyed by its day, so however many workers start (each queues the next run)
and however often a run is retried, there is one run a day. Every step is idempotent (a
delete, or taking out what is still there), so a run cut short by a killed worker is simply
run again; each step commits on its own, so a long first run holds no lock for long.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta, timezone

import structlog
from sqlalchemy import Connection

from service import practices
from service.clinician import clinician_state
from service.handlers.ports import Ports
from service.handlers.runner import JobContext
from service.persistence import outbox
from service.persistence.queries import clients, events, retention, smart_sessions
from service.practices import Practice

log = structlog.get_logger(__name__)

JOB_KIND = "retention.run"
RUN_AT_HOUR_UTC = 3
BATCH = 500
# The order `alliance retention run` prints them in, each "what: count".
REPORTED = {
    "jobs": "finished jobs deleted",
    "smart_sessions": "expired SMART launches and sessions deleted",
    "contacts": "clients whose contact details were deleted",
    "event_contacts": "event payloads whose contact details were deleted",
    "responses": "responses deleted",
    "surveys": "surveys deleted",
    "assessments": "assessments deleted",
    "episodes": "closed rupture episodes deleted",
    "alert_actions": "actions on those episodes deleted",
    "episode_tasks": "records of the Tasks written for those episodes deleted",
    "cds_feedback": "CDS Hooks feedback deleted",
    "events": "events deleted",
    "kept_for_open_rupture": "clients whose old history was kept for an open rupture",
}


def run_retention(ports: Ports) -> Counter:
    """Apply every retention rule once; the counts by REPORTED key."""
    now, counts = ports.clock(), Counter({name: 0 for name in REPORTED})
    with ports.engine.begin() as conn:
        job_cutoff = now - timedelta(days=ports.settings.job_retention_days)
        counts["jobs"] += outbox.delete_finished(conn, before=job_cutoff)
        counts["smart_sessions"] += smart_sessions.sweep_expired(conn, now)
        found = practices.load_all(conn, ports.box)
    for practice in found:
        counts.update(_practice(ports, practice, now))
    return counts


def _practice(ports: Ports, practice: Practice, now: datetime) -> Counter:
    keep = practice.retention
    contact_cutoff = now - timedelta(days=keep.contact_days)
    history_cutoff = now - timedelta(days=keep.responses_days)
    counts: Counter = Counter()
    with ports.engine.begin() as conn:
        counts["contacts"] += clients.forget_stale_contacts(conn, practice.id, contact_cutoff)
    while True:  # in batches: a first run may find years of payloads to re-seal
        with ports.engine.begin() as conn:
            stripped = events.forget_contact(conn, ports.vault, practice.id,
                                             before=contact_cutoff, limit=BATCH)
        counts["event_contacts"] += stripped
        if stripped < BATCH:
            break
    with ports.engine.begin() as conn:
        deleted, changed = retention.delete_old_history(conn, practice.id, history_cutoff)
        counts.update(deleted)
        for patient_id in sorted(changed):  # the CDS cards follow the history that is left
            clinician_state.refresh(conn, practice.id, patient_id, now)
        counts["events"] += retention.delete_old_events(conn, practice.id, history_cutoff)
        counts["cds_feedback"] += retention.delete_old_feedback(conn, practice.id, history_cutoff)
    return counts


def retention_job(ctx: JobContext) -> None:
    """Job `retention.run`: queue tomorrow's run first (a failing run must not end the chain),
    then apply the rules."""
    with ctx.services.engine.begin() as conn:
        schedule_retention(conn, ctx.services.clock())
    counts = run_retention(ctx.services)
    with ctx.services.engine.begin() as conn:
        ctx.complete(conn)
    log.info("retention run", **{name: counts[name] for name in REPORTED})


def schedule_retention(conn: Connection, now: datetime) -> None:
    """Queue the next daily run (a run already queued for that day makes this a no-op)."""
    due = next_run(now)
    outbox.enqueue(conn, JOB_KIND, {}, now=now, available_at=due,
                   dedupe_key=f"retention:{due.date().isoformat()}")


def next_run(now: datetime) -> datetime:
    """The next RUN_AT_HOUR_UTC after `now`."""
    today = datetime.combine(now.astimezone(timezone.utc).date(),
                             time(RUN_AT_HOUR_UTC, tzinfo=timezone.utc))
    return today if today > now else today + timedelta(days=1)
